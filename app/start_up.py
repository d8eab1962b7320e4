"""What an application calls at start-up: `ensure_schema`.

Every StarPunk worker calls `ensure_schema` on every start, almost always on a database
that is already at head. That case is answered with the standard library alone (one
read-only connection, one SELECT); Alembic is imported only when there is work to do.
The head revision is read from the revision files themselves, so it cannot go stale.
"""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import stat
from pathlib import Path

from .foundation import interrupts
from .foundation.advice import STARPUNK_DB, advising_as, named_for_advice
from .foundation.errors import UpgradeRefused
from .foundation.locations import DEFAULT_BUSY_TIMEOUT, as_database_url, database_file, resolve_database_url, sqlite_uri
from .foundation.scripts import head_revision
from .start_up_log import progress_in_the_host_log

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=64)
def _read_only_uri(path: Path) -> str:
    return sqlite_uri(path, mode="ro")


def current_revision_if_head(database_url: str, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> str | None:
    """The head revision if the database is a SQLite file already at head, else None.

    Never writes and never raises: anything unusual (no file, no table, not a database)
    is left to the full path, which explains it properly.
    """
    path = database_file(database_url)
    if path is None or "?" in database_url:  # options in the URL: leave them to SQLAlchemy
        return None
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None  # a pipe would block the open forever; the full path refuses it
        connection = sqlite3.connect(_read_only_uri(path), uri=True, timeout=busy_timeout)
    except (sqlite3.Error, OSError, ValueError):  # ValueError: an undecodable name or message (UnicodeError)
        return None
    try:
        rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    except (sqlite3.Error, ValueError):
        return None
    finally:
        connection.close()
    head = head_revision()
    return head if rows == [(head,)] else None


def ensure_schema(
    database: str | os.PathLike[str] | None = None,
    *,
    backup: bool = True,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
) -> str:
    """Bring the database to the head revision and return the revision it is at.

    `database` is the SQLite file's path (any characters), or a `sqlite:///` URL; by default
    DATABASE_URL, else DATABASE_PATH, else data/starpunk.db.

    A StarPunk file Alembic has never seen is recognised and stamped first; an existing
    file gets a backup next to it before its first change (unless `backup=False`). Several
    processes may call this at once: one migrates, the others wait and find nothing to do.
    Raises `UpgradeRefused`, with the file untouched, when it cannot be done safely; the
    commands its sentence suggests are `starpunk-db` commands naming this database.

    What it changes (the state detected, repairs, the backup's path, each revision) is logged
    by `starpunk_migrations` at INFO, to stderr when the host configured no logging; a file
    already at head logs nothing.
    """
    url = as_database_url(database) if database else resolve_database_url()
    revision = current_revision_if_head(url, busy_timeout)
    if revision is not None:
        return revision
    with interrupts.interrupts_as_exceptions():  # in place before the heavy imports
        try:
            from .commands.upgrade import upgrade_database  # SQLAlchemy and Alembic: a few tenths of a second
        except KeyboardInterrupt:
            raise UpgradeRefused(interrupts.INTERRUPTED) from None
        shown = named_for_advice(url)
        # A refusal reaches whoever reads the application's log, in whatever folder and
        # environment: the commands it suggests are starpunk-db's, naming this database.
        with progress_in_the_host_log(), advising_as(STARPUNK_DB, shown):
            report = upgrade_database(url, "head", backup=backup, busy_timeout=busy_timeout)
            if report.applied or (report.state is not None and report.state.needs_stamp):
                log.info("%s is at revision %s: %d revision(s) applied", shown, report.revision, len(report.applied))
    assert report.revision is not None  # the upgrade went to head, which is a revision
    return report.revision
