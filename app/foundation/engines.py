"""Engines on a StarPunk file whose transactions include DDL and take the write lock first."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from .locations import DEFAULT_BUSY_TIMEOUT, database_file, sqlite_uri

# An execution option: this connection only reads, so it begins with a plain BEGIN.
READ_ONLY = "starpunk_read_only"
# Waiting for the write lock (another worker migrating) happens in slices this long, so that
# Ctrl-C and SIGTERM are answered while waiting.
WRITER_POLL = 0.25
# Once the write lock is held, SQLite waits only for readers (at commit, or when spilling
# pages): each wait is this short, because meanwhile no new reader can start (the site is
# down). When readers do not let go the transaction is rolled back, releasing everything,
# and run again after READER_PAUSE, for at most READER_PATIENCE (or the busy timeout).
READER_WAIT = 2.0
READER_PAUSE = 1.0
READER_PATIENCE = 30.0


def create_engine(database_url: str, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Engine:
    """An engine whose SQLite transactions include DDL and take the write lock up front.

    Foreign keys stay off on these connections: a table rebuild (drop, then rename a copy)
    would otherwise delete every ON DELETE CASCADE child row. `PRAGMA foreign_key_check`
    runs before commit instead. The write lock is waited for up to `busy_timeout` (another
    worker migrating); once held, waits for readers are short (READER_WAIT).
    """
    url = sqlalchemy.make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return sqlalchemy.create_engine(url, poolclass=NullPool)
    path = database_file(database_url)
    if path is not None and "?" not in database_url:
        # The file is opened by the bytes of its name (locations.sqlite_uri): SQLAlchemy's own
        # reading of the URL decodes it as UTF-8, which a Latin-1 host's names, or names that
        # are not UTF-8 at all, are not.
        uri = sqlite_uri(path)
        engine = sqlalchemy.create_engine(
            "sqlite://", poolclass=NullPool, creator=lambda: sqlite3.connect(uri, uri=True, timeout=busy_timeout)
        )
    else:  # options in the URL: SQLAlchemy's to read
        engine = sqlalchemy.create_engine(url, poolclass=NullPool, connect_args={"timeout": busy_timeout})

    @event.listens_for(engine, "connect")
    def _take_over_transactions(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA foreign_keys = OFF")

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY, False):
            connection.exec_driver_sql("BEGIN")
        else:
            take_write_lock(connection.connection.dbapi_connection, busy_timeout)

    return engine


def take_write_lock(dbapi_connection: Any, busy_timeout: float) -> None:
    """BEGIN IMMEDIATE, waiting up to `busy_timeout` for another writer; then short waits."""
    deadline = time.monotonic() + busy_timeout
    while True:
        remaining = max(0.0, deadline - time.monotonic())
        dbapi_connection.execute(f"PRAGMA busy_timeout = {int(min(remaining, WRITER_POLL) * 1000)}")
        try:
            dbapi_connection.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError as error:
            if not getattr(error, "sqlite_errorname", "").startswith("SQLITE_BUSY") or remaining <= 0:
                raise
    dbapi_connection.execute(f"PRAGMA busy_timeout = {int(min(READER_WAIT, busy_timeout) * 1000)}")
