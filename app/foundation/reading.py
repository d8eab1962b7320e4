"""Reading a database for read-only commands without writing a byte or creating a file.

`starpunk-db status`, `upgrade --dry-run`/`--sql` and `alembic current`/`check`/`history`
read through `read_only_engine`. SQLite's `mode=ro` is enough for an ordinary file, but not
for two normal states: after a crash the file has a hot `-journal` that SQLite must roll
back before reading (read-only, it refuses), and a WAL file nobody has open has no `-shm`
(which even a read-only open creates) or a crashed process's (which the open rebuilds in
place). In those cases a private copy of the file (and its journal or log) is read in a
temporary folder: it shows the state the file holds once recovered, and the real file is
never touched. A symlink is read at its real path, where SQLite keeps the journal and log.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
import struct
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from .locations import sqlite_uri

WAL_FORMAT = 2  # byte 18 of the header: the file format version, 2 for write-ahead logging


def _journal(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def needs_recovery(path: Path, busy_timeout: float = 5.0) -> bool:
    """Whether a read-only open would have to write: a hot journal, or a WAL file whose -shm
    is missing or a crashed process's (SQLite would create it, or rebuild it in place)."""
    with path.open("rb") as file:
        header = file.read(20)
    if len(header) >= 20 and header[18] == WAL_FORMAT and not _log_index_in_use(_journal(path, "-shm")):
        return True
    if not _journal(path, "-journal").exists():
        return False
    try:
        probe = sqlite3.connect(sqlite_uri(path, mode="ro"), uri=True, timeout=busy_timeout)
    except sqlite3.Error:
        return False  # the caller's own open says what is wrong
    try:
        probe.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.Error as error:
        return getattr(error, "sqlite_errorname", "") == "SQLITE_READONLY_ROLLBACK"
    finally:
        probe.close()
    return False


# Every connection to a WAL file holds a shared lock on this byte of its -shm for as long as
# it is open (SQLite's unix VFS: UNIX_SHM_DMS); the first to open the file rebuilds the -shm.
_SHM_IN_USE_BYTE = 128


def _log_index_in_use(shm: Path) -> bool:
    """Whether a running process has the -shm open (a live StarPunk), rather than none (a crash).

    Asked with F_GETLK, which takes no lock. On systems where the lock's layout is not
    known here, the index is taken to be in use: SQLite then reads as it always does."""
    if not shm.exists():
        return False
    if not sys.platform.startswith("linux"):
        return True
    query = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, _SHM_IN_USE_BYTE, 1, 0)
    try:
        descriptor = os.open(shm, os.O_RDONLY)
    except OSError:
        return True  # unreadable: leave it to SQLite, which says what is wrong
    try:
        answer = fcntl.fcntl(descriptor, fcntl.F_GETLK, query)
    except OSError:
        return True
    finally:
        os.close(descriptor)
    lock_found: int = struct.unpack("hhqqi4x", answer)[0]  # F_UNLCK: no process holds it
    return lock_found != fcntl.F_UNLCK


def _engine(uri: str, busy_timeout: float) -> Engine:
    engine = sqlalchemy.create_engine(
        "sqlite://",
        creator=lambda: sqlite3.connect(uri, uri=True, timeout=busy_timeout, isolation_level=None),
        poolclass=NullPool,
    )

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine


@contextlib.contextmanager
def backup_engine(path: Path) -> Iterator[Engine]:
    """An engine reading a backup exactly as it lies (SQLite's `immutable`): a backup is never
    written, and nothing (no -wal, no -shm) is created beside it."""
    engine = _engine(immutable_uri(path), busy_timeout=0)
    try:
        yield engine
    finally:
        engine.dispose()


@contextlib.contextmanager
def committed_content_engine(path: Path, *, write_ahead_log: bool) -> Iterator[Engine]:
    """An engine reading what `path` holds as committed, for a process whose other connection
    holds the file's write lock and has written nothing to the file yet (restore's copy,
    before its first page lands).

    In WAL mode readers go on beside the writer: a plain read-only connection. In rollback
    mode the writer's lock keeps every reader out, but the file's bytes are exactly its
    committed content, read as they lie (SQLite's `immutable`). Only SQLite opens the file
    here: closing a descriptor of our own would drop the locks SQLite holds on it, since POSIX
    locks belong to the process, whereas SQLite keeps its descriptors open while another of
    its connections holds a lock.
    """
    uri = sqlite_uri(path, mode="ro") if write_ahead_log else immutable_uri(path)
    engine = _engine(uri, busy_timeout=0)
    try:
        yield engine
    finally:
        engine.dispose()


def immutable_uri(path: Path) -> str:
    return sqlite_uri(path, mode="ro", immutable="1")


@contextlib.contextmanager
def read_only_engine(path: Path | None, busy_timeout: float = 5.0) -> Iterator[Engine]:
    """An engine reading `path` as it stands once recovered, never writing to it or beside it.

    A missing or empty file reads as an empty database (nothing is created).
    """
    if path is None or not path.exists() or path.stat().st_size == 0:
        engine = sqlalchemy.create_engine("sqlite://", poolclass=NullPool)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    # SQLite keeps a symlinked file's journal and log next to the real file: look there.
    path = path.resolve()
    if not needs_recovery(path, busy_timeout):
        engine = _engine(sqlite_uri(path, mode="ro"), busy_timeout)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    with tempfile.TemporaryDirectory(prefix="starpunk-db-") as folder:
        copy = Path(folder) / "copy.db"
        shutil.copyfile(path, copy)
        for suffix in ("-journal", "-wal"):  # not -shm: SQLite rebuilds the copy's own from the log
            if _journal(path, suffix).exists():
                shutil.copyfile(_journal(path, suffix), _journal(copy, suffix))
        engine = _engine(sqlite_uri(copy), busy_timeout)
        try:
            yield engine
        finally:
            engine.dispose()
