"""Going back to a backup, while StarPunk may still be running.

The backup is checked first (SQLite's integrity check, and a state detection recognises).
The backup's pages are then copied into the live file through SQLite's backup API, on a
connection to that file: it stays the same file (inode, owner, permissions), keeps its
journal mode, and the copy is one write transaction, so other connections see the old
content or the new, never a mix.

A first look at the live file, under its write lock, refuses early what cannot be copied in
place. But the lock is released before the copy takes its own, and another program may write
meanwhile (StarPunk, an upgrade, another restore), so everything the copy depends on is
decided again under the copy's own write lock, before its first page reaches the file: what
the live file holds (the undo backup's name and state), whether SQLite can copy into it (page
size, text encoding), the undo backup's reservation and the backup itself. So the restore can
be undone, no write made before it is lost, and no two commands share an undo backup.

Once the copy has committed, what follows (keeping the live file's journal mode) can no longer
undo it: a failure there is reported with the restore, never as "nothing was changed".
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Connection

from ..adoption import detection
from ..foundation import interrupts, reading
from ..foundation.advice import command
from ..foundation.backup import discard_backup, remove_leftovers, require_room, reserve_backup, write_backup
from ..foundation.database_files import check_database_file, check_writable
from ..foundation.engines import create_engine
from ..foundation.errors import AnotherApplication, UpgradeRefused
from ..foundation.integrity import first_finding
from ..foundation.locations import DEFAULT_BUSY_TIMEOUT, sqlite_url
from ..foundation.refusals import refusing_sqlite_errors
from ..schema.credentials import plaintext_credentials
from .backup_listing import backup_state

log = logging.getLogger(__name__)

# Byte 56 of a SQLite header: the text encoding every string of the file is stored in.
TEXT_ENCODINGS = {1: "UTF-8", 2: "UTF-16le", 3: "UTF-16be"}
MISSING = detection.DatabaseState("missing", None, managed=False)


@dataclass(frozen=True)
class RestoreReport:
    database: Path
    restored_from: Path
    state: detection.DatabaseState  # what the live file holds now
    previous_state: str  # what it held before
    undo_backup: Path | None  # the live file as it was; None when there was no live file
    journal_mode: str
    afterwards: str | None = None  # what went wrong once the copy had committed; the restore stands
    credentials: tuple[str, ...] = ()  # the plaintext credentials the undo backup holds


class _Busy(Exception):
    pass


@dataclass(frozen=True)
class _BackupHeader:
    """How the backup stores its pages, from its header."""

    page_size: int
    encoding: str

    @classmethod
    def read(cls, backup: Path) -> _BackupHeader:
        with backup.open("rb") as file:
            header = file.read(100)
        page_size = 65536 if header[16:18] == b"\x00\x01" else int.from_bytes(header[16:18], "big")
        return cls(page_size, TEXT_ENCODINGS.get(int.from_bytes(header[56:60], "big"), "UTF-8"))


@dataclass(frozen=True)
class _LiveFile:
    """What the live file holds, and how SQLite stores it."""

    state: detection.DatabaseState
    journal_mode: str
    page_size: int
    encoding: str
    holds_content: bool
    credentials: tuple[str, ...] = ()  # the plaintext credentials it holds (schema.credentials)


def check_backup(backup: Path) -> detection.DatabaseState:
    """The backup's state, if it is a sound StarPunk database; else one sentence why not."""
    if not backup.is_file():
        raise UpgradeRefused(f"Refusing to restore {backup}: there is no such file; {command('backups')} lists the backups.")
    try:
        check_database_file(backup)
        connection = sqlite3.connect(reading.immutable_uri(backup), uri=True)
        try:
            problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
        except sqlite3.Error as error:
            problems = [str(error)]
        finally:
            connection.close()
        finding = first_finding(problems)
        if finding is not None:
            raise UpgradeRefused(f"SQLite's integrity check finds it damaged ({finding})")
        state = backup_state(backup)
    except UpgradeRefused as refusal:
        raise UpgradeRefused(_refusal(backup, str(refusal))) from None
    return state


def _refusal(backup: Path, reason: str) -> str:
    """One sentence: the first clause of what was found, and what to do instead."""
    clause = reason.split("; ")[0].rstrip(".")
    for subject in (str(backup), "The database"):
        if clause.startswith(subject + " "):
            clause = "it" + clause[len(subject) :]
    return (
        f"Refusing to restore {backup}: {clause}; pick another backup ({command('backups')} lists them), "
        "the live database was not touched."
    )


def _live_state(connection: Connection, database: Path) -> detection.DatabaseState:
    """The live file's state, for the name of its backup; a file detection does not
    recognise is still backed up (it is what is being replaced)."""
    try:
        return detection.inspect_database(connection)
    except AnotherApplication as refusal:
        # A wrong path: restoring over it would destroy another application's data.
        raise UpgradeRefused(str(refusal).replace("The database", f"Nothing was restored: {database}", 1)) from None
    except UpgradeRefused:
        return detection.DatabaseState("unrecognised", None, managed=False)


def _look(connection: Connection, database: Path, holds_content: bool) -> _LiveFile:
    def pragma(name: str) -> str:
        return str(connection.exec_driver_sql(f"PRAGMA {name}").scalar())

    return _LiveFile(
        state=_live_state(connection, database) if holds_content else MISSING,
        journal_mode=pragma("journal_mode"),
        page_size=int(pragma("page_size")),
        encoding=pragma("encoding"),
        holds_content=holds_content,
        credentials=plaintext_credentials(connection) if holds_content else (),
    )


def _refuse_what_cannot_be_copied(backup: Path, header: _BackupHeader, database: Path, live: _LiveFile) -> None:
    """SQLite copies pages as they are: into a file with content, only pages of the same text
    encoding (else the copy commits, and every connection already open fails on the file); in
    WAL mode, only pages of the same size."""
    if not live.holds_content:
        return
    if live.journal_mode == "wal" and live.page_size != header.page_size:
        raise UpgradeRefused(
            f"{backup} has {header.page_size}-byte pages and {database}, in WAL mode, {live.page_size}-byte ones, "
            "which SQLite cannot copy in place; stop StarPunk, set the live file's journal mode to DELETE "
            "(sqlite3 FILE 'PRAGMA journal_mode=DELETE') and restore again. Nothing was changed."
        )
    if live.encoding != header.encoding:
        raise UpgradeRefused(
            f"{backup} stores its text as {header.encoding} and {database} as {live.encoding}, which SQLite cannot copy "
            f"in place; nothing was changed: stop StarPunk, move the live file aside (mv {database} {database}.old), "
            "then restore again."
        )


def restore_database(backup: Path, database: Path, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> RestoreReport:
    """Replace the content of `database` with that of `backup`, after backing it up."""
    restored_state = check_backup(backup)
    header = _BackupHeader.read(backup)
    if backup.resolve() == database.resolve():
        raise UpgradeRefused(f"{backup} is the live database itself; give the path of a backup.")
    try:
        check_database_file(database)
    except UpgradeRefused as refusal:
        if not database.is_file():
            raise
        found = str(refusal).split("; ")[0].rstrip(".")
        raise UpgradeRefused(f"{found}; move it aside first (mv {database} {database}.damaged), then restore again.") from None
    check_writable(database)
    existed = database.exists() and database.stat().st_size > 0

    engine = create_engine(sqlite_url(database), busy_timeout)
    copy = _Copy(backup, header, database, busy_timeout)
    afterwards = None
    try:
        try:
            with refusing_sqlite_errors(database, busy_timeout), engine.connect() as connection:
                lock = connection.begin()  # BEGIN IMMEDIATE: a first look, while no other program writes
                try:
                    copy.live = _look(connection, database, existed)
                    _refuse_what_cannot_be_copied(backup, header, database, copy.live)
                    if existed:
                        require_room(database, backup=True)
                finally:
                    lock.rollback()  # nothing was written; a COMMIT would wait for readers for nothing
                copy.run(connection)
                mode, afterwards = _keep_journal_mode(connection, database, copy.live.journal_mode)
        finally:
            engine.dispose()
    except BaseException as error:
        if not copy.committed:
            raise
        # The restore stands, whatever failed after it: say so, never "nothing was changed".
        log.warning("the restore of %s is committed; then: %s", database, error, exc_info=error)
        mode, afterwards = "unknown", afterwards or f"a step after the copy failed ({_described(error)})"
    return RestoreReport(
        database, backup, restored_state, copy.live.state.name, copy.undo_backup, mode, afterwards, copy.live.credentials
    )


def _keep_journal_mode(connection: Connection, database: Path, journal_mode: str) -> tuple[str, str | None]:
    """Put the live file's journal mode back (a backup of a WAL database says "WAL" in its
    header): the mode it has now, and what could not be done, as a phrase. Never raises: the
    restore is committed."""
    live = _sqlite_connection(connection)
    mode_now = "unknown"
    try:
        mode_now = live.execute("PRAGMA journal_mode").fetchone()[0]
        if mode_now != journal_mode and "wal" in (mode_now, journal_mode):
            mode_now = live.execute(f"PRAGMA journal_mode = {journal_mode}").fetchone()[0]
    except Exception as error:
        log.warning("could not keep the journal mode of %s", database, exc_info=error)
        return mode_now, (
            f"its journal mode is {mode_now}, and setting it back to {journal_mode} failed ({_described(error)}): "
            f"stop StarPunk and run sqlite3 {database} 'PRAGMA journal_mode={journal_mode}'"
        )
    if mode_now != journal_mode and "wal" in (mode_now, journal_mode):
        return mode_now, (
            f"its journal mode is {mode_now}, not {journal_mode} as before: stop StarPunk and run "
            f"sqlite3 {database} 'PRAGMA journal_mode={journal_mode}'"
        )
    return mode_now, None


def _described(error: BaseException) -> str:
    cause = error.__cause__ if isinstance(error, UpgradeRefused) and error.__cause__ is not None else error
    first_line = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first_line}" if first_line else type(cause).__name__


def _sqlite_connection(connection: Connection) -> sqlite3.Connection:
    driver_connection = connection.connection.driver_connection
    assert isinstance(driver_connection, sqlite3.Connection)  # create_engine makes SQLite engines only
    return driver_connection


class _Copy:
    """The copy of the backup's pages into the live file, and its progress callback, called
    after each page it copies.

    After the first page the copy's write transaction holds the live file's write lock, and
    nothing of the copy is in the file yet (one page stays in SQLite's cache): the file is
    exactly what the restore replaces, and no other program can change it until the copy
    commits. That is when the live file is looked at again (a second connection reads it, as
    committed), the copy's conditions checked again, and the undo backup reserved and written,
    so that every write made before the restore is in the undo backup.
    """

    def __init__(self, backup: Path, header: _BackupHeader, database: Path, busy_timeout: float) -> None:
        self.backup = backup
        self.header = header
        self.database = database
        self.busy_timeout = busy_timeout
        self.live: _LiveFile = _LiveFile(MISSING, "delete", 0, "UTF-8", holds_content=False)
        self.undo_backup: Path | None = None
        self.prepared = False
        self.committed = False

    def run(self, connection: Connection) -> None:
        source = sqlite3.connect(reading.immutable_uri(self.backup), uri=True)
        try:
            # The backup API needs a destination with no open transaction; it takes the
            # write lock itself (waiting up to busy_timeout). Signals are held and answered
            # between pages (step_done): only there can the copy tell whether it has committed.
            with interrupts.interrupts_held():
                source.backup(_sqlite_connection(connection), pages=1, progress=self.step_done)
        except BaseException as error:
            if not self.committed:
                # The copy is one transaction, rolled back: the live file is as it was, and
                # so is its backup, which would only be a stray copy.
                if self.undo_backup is not None:
                    with interrupts.interrupts_held():
                        discard_backup(self.undo_backup)
                        self.undo_backup = None
                if isinstance(error, _Busy):
                    raise UpgradeRefused(
                        f"{self.database} is in use by another program, still after {self.busy_timeout:g} seconds; "
                        "stop that program or wait for it to finish, then try again."
                    ) from None
            raise
        finally:
            source.close()

    def step_done(self, status: int, remaining: int, total: int) -> None:
        if status == sqlite3.SQLITE_DONE:
            self.committed = True
            interrupts.change_committed()  # the last page is in: a signal now can only be too late
            return
        interrupts.raise_pending_interrupt()  # the copy is rolled back; the live file is as it was
        if status in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise _Busy  # Python would retry a busy step forever; SQLite's busy handler has already waited
        if not self.prepared:
            # Never after the last page: a StarPunk database has a page per table and more.
            self.prepared = True
            self._prepare_under_the_copys_lock()

    def _prepare_under_the_copys_lock(self) -> None:
        remove_leftovers(self.database)
        holds_content = self.database.stat().st_size > 0
        # The copy's connection opened the file in WAL mode if and only if a log is beside it
        # (SQLite opens a file with a log in WAL mode), and no mode can change under its lock.
        write_ahead_log = self.database.with_name(self.database.name + "-wal").exists()
        if holds_content:
            with reading.committed_content_engine(self.database, write_ahead_log=write_ahead_log) as engine:
                with engine.connect() as connection, connection.begin():
                    self.live = _look(connection, self.database, holds_content=True)
        else:
            self.live = _LiveFile(MISSING, self.live.journal_mode, 0, "UTF-8", holds_content=False)
        _refuse_what_cannot_be_copied(self.backup, self.header, self.database, self.live)
        if not holds_content:
            return
        require_room(self.database, backup=True)
        with interrupts.interrupts_held():  # reserved and recorded at once: the clean-up knows it
            self.undo_backup = reserve_backup(self.database, self.live.state.label, private=bool(self.live.credentials))
        write_backup(self.database, self.undo_backup, write_ahead_log=write_ahead_log)
