"""Checks of a database file before SQLite touches it, and what a failed write leaves.

What SQLite would misread or damage (a folder, a file that is not a database, a truncated
file, another kind of database, a read-only file or folder) is refused in one sentence
before any connection is opened.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from pathlib import Path

import sqlalchemy

from .errors import UpgradeRefused
from .locations import database_file, sqlite_uri
from .printable import printable

log = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"

# The first bytes of a rollback journal's header, and of a write-ahead log's (its two byte orders).
JOURNAL_HEADER = bytes.fromhex("d9d505f920a163d7")
JOURNAL_HEADER_SIZE = 28
WAL_HEADERS = (bytes.fromhex("377f0682"), bytes.fromhex("377f0683"))
WAL_HEADER_SIZE = 32


def check_database_file(path: Path) -> None:
    """Refuse what SQLite would misread or damage: a folder, a non-database, a truncated file."""
    if path.is_dir():
        raise UpgradeRefused(
            f"{path} is a folder, not a database file; give the path of StarPunk's database file (usually data/starpunk.db)."
        )
    if not path.exists():
        if not path.parent.is_dir():
            raise UpgradeRefused(f"The folder {path.parent} does not exist; create it or check DATABASE_URL / DATABASE_PATH.")
        return
    check_regular_file(path)
    size = path.stat().st_size
    if size == 0:
        return
    if recovered_on_open(path):
        # After a crash the file's bytes are not its content: SQLite rolls the journal back
        # (or replays the log) first, and the writing commands check every page afterwards
        # (foundation.integrity).
        return
    with path.open("rb") as file:
        header = file.read(100)
    if not header.startswith(SQLITE_HEADER):
        raise UpgradeRefused(f"{path} is not a SQLite database; check the path, or restore the file from a backup.")
    if len(header) < 100:
        raise UpgradeRefused(f"{path} is truncated (only {size} bytes); restore it from a backup.")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    page_count = int.from_bytes(header[28:32], "big")
    # The page count in the header is valid only when its "version valid for" matches
    # the change counter (SQLite >= 3.7.0 writes both).
    if header[92:96] == header[24:28] and size < page_count * page_size:
        raise UpgradeRefused(
            f"{path} is truncated ({size} bytes, but its header says {page_count * page_size}); restore it from a backup."
        )


def recovered_on_open(path: Path) -> bool:
    """Whether SQLite changes what the file holds as it opens it: a hot journal to roll back,
    or a write-ahead log holding frames to replay.

    A journal is hot only with its header in place: journal modes TRUNCATE and PERSIST
    leave an empty or zeroed one after every commit, which SQLite ignores, and so does this.
    """
    journal, log_file = path.with_name(path.name + "-journal"), path.with_name(path.name + "-wal")
    return _starts_with(journal, (JOURNAL_HEADER,), JOURNAL_HEADER_SIZE + 1) or _starts_with(
        log_file, WAL_HEADERS, WAL_HEADER_SIZE + 1
    )


def _starts_with(path: Path, headers: tuple[bytes, ...], minimum_size: int) -> bool:
    """Whether `path` is at least `minimum_size` bytes long (a header and something after it)
    and begins with one of `headers`."""
    try:
        with path.open("rb") as file:
            start = file.read(minimum_size)
    except OSError:
        return False
    return len(start) >= minimum_size and start.startswith(headers)


_KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def check_regular_file(path: Path) -> None:
    """Refuse a named pipe, a device or a socket before anything opens it: SQLite would wait
    forever for a pipe's writer, and take /dev/null for an empty database it can write to."""
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "not a file")
        raise UpgradeRefused(
            f"{path} is not a regular file (it is {kind}); give the path of StarPunk's database file (usually data/starpunk.db)."
        )


def check_writable(path: Path) -> None:
    if path.exists() and not os.access(path, os.W_OK):
        raise UpgradeRefused(f"{path} is read-only; make it writable by the user running StarPunk and try again.")
    if not os.access(path.parent, os.W_OK):
        raise UpgradeRefused(
            f"The folder {path.parent} is read-only, and SQLite must write its journal (and the backup) there; "
            "make it writable by the user running StarPunk and try again."
        )


def require_database_file(database_url: str) -> Path:
    """StarPunk's database is a SQLite file: anything else is refused before it is touched."""
    path = database_file(database_url)
    if path is not None:
        check_file_name(path)
        return path
    try:
        backend = sqlalchemy.make_url(database_url).get_backend_name()
    except Exception:
        raise UpgradeRefused(
            f"{database_url!r} is neither a file path nor a database URL; give the path of StarPunk's database file."
        ) from None
    if backend == "sqlite":
        raise UpgradeRefused(
            f"{database_url} is an in-memory database, gone when the command ends; give the path of StarPunk's database file."
        )
    raise UpgradeRefused(
        f"{sqlalchemy.make_url(database_url).render_as_string(hide_password=True)} is not a SQLite file, and StarPunk's "
        "database is one; set DATABASE_PATH (or DATABASE_URL=sqlite:///PATH) to StarPunk's database file."
    )


def check_file_name(path: Path) -> None:
    """Refuse a name no file can have: one holding a NUL (SQLite would open the name cut short)."""
    if "\x00" in str(path):
        raise UpgradeRefused(f"The path {printable(path)} holds a NUL character, which no file name can; check the path.")


def roll_back_left_journal(path: Path | None) -> None:
    """After a failed write (disk full, file-size limit) SQLite leaves its journal for the
    next opener to roll back; be that opener now, so that the file is as it was, byte for byte."""
    if path is None or not path.with_name(path.name + "-journal").exists():
        return
    try:
        database = sqlite3.connect(sqlite_uri(path), uri=True, timeout=1)
        try:
            database.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        finally:
            database.close()
    except sqlite3.Error:
        log.debug("could not roll back the journal of %s", path, exc_info=True)
