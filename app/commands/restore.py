"""Going back to a backup, while StarPunk may still be running.

The backup is checked first (SQLite's integrity check, and a state detection recognises).
The backup's pages are then copied into the live file through SQLite's backup API, on a
connection to that file: it stays the same file (inode, owner, permissions), keeps its
journal mode, and the copy is one write transaction, so other connections see the old
content or the new, never a mix. Under that transaction's write lock, before the first page
reaches the file, a backup of the live file is written, so that the restore itself can be
undone and no write made before the restore is lost.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..adoption import detection
from ..foundation import interrupts, reading
from ..foundation.backup import backup_path, discard_backup, require_room, write_backup
from ..foundation.database_files import check_database_file, check_writable
from ..foundation.engines import create_engine
from ..foundation.errors import AnotherApplication, UpgradeRefused
from ..foundation.integrity import first_finding
from ..foundation.locations import DEFAULT_BUSY_TIMEOUT, sqlite_url
from ..foundation.refusals import refusing_sqlite_errors
from .backup_listing import backup_state


@dataclass(frozen=True)
class RestoreReport:
    database: Path
    restored_from: Path
    state: detection.DatabaseState  # what the live file holds now
    previous_state: str  # what it held before
    undo_backup: Path | None  # the live file as it was; None when there was no live file
    journal_mode: str


class _Busy(Exception):
    pass


def check_backup(backup: Path) -> detection.DatabaseState:
    """The backup's state, if it is a sound StarPunk database; else one sentence why not."""
    if not backup.is_file():
        raise UpgradeRefused(f"Refusing to restore {backup}: there is no such file; `starpunk-db backups` lists the backups.")
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
        f"Refusing to restore {backup}: {clause}; pick another backup (starpunk-db backups lists them), "
        "the live database was not touched."
    )


def _live_label(connection, database: Path) -> detection.DatabaseState:
    """The live file's state, for the name of its backup; a file detection does not
    recognise is still backed up (it is what is being replaced)."""
    try:
        return detection.inspect_database(connection)
    except AnotherApplication as refusal:
        # A wrong path: restoring over it would destroy another application's data.
        raise UpgradeRefused(str(refusal).replace("The database", f"Nothing was restored: {database}", 1)) from None
    except UpgradeRefused:
        return detection.DatabaseState("unrecognised", None, managed=False)


def restore_database(backup: Path, database: Path, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> RestoreReport:
    """Replace the content of `database` with that of `backup`, after backing it up."""
    restored_state = check_backup(backup)
    with backup.open("rb") as file:
        header = file.read(18)
    restored_page_size = 65536 if header[16:18] == b"\x00\x01" else int.from_bytes(header[16:18], "big")
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
    try:
        with refusing_sqlite_errors(database, busy_timeout), engine.connect() as connection:
            lock = connection.begin()  # BEGIN IMMEDIATE: a first look, while no other program writes
            try:
                journal_mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
                page_size = connection.exec_driver_sql("PRAGMA page_size").scalar()
                if existed and journal_mode == "wal" and page_size != restored_page_size:
                    raise UpgradeRefused(
                        f"{backup} has {restored_page_size}-byte pages and {database}, in WAL mode, {page_size}-byte ones, "
                        "which SQLite cannot copy in place; stop StarPunk, set the live file's journal mode to DELETE "
                        "(sqlite3 FILE 'PRAGMA journal_mode=DELETE') and restore again. Nothing was changed."
                    )
                previous = (
                    _live_label(connection, database) if existed else detection.DatabaseState("missing", None, managed=False)
                )
                if existed:
                    require_room(database, backup=True)
            finally:
                lock.rollback()  # nothing was written; a COMMIT would wait for readers for nothing
            # Named first: whatever stops the copy, the clean-up knows what to remove.
            undo_backup = backup_path(database, previous.label) if existed else None
            copy = _Copy(database, undo_backup, write_ahead_log=journal_mode == "wal")
            source = sqlite3.connect(reading.immutable_uri(backup), uri=True)
            try:
                # The backup API needs a destination with no open transaction; it takes the
                # write lock itself (waiting up to busy_timeout), and the undo backup is
                # written under that same lock (see _Copy), so no write can fall between.
                # Signals are held and answered between pages (see _Copy): only there can the
                # copy tell whether it has committed.
                with interrupts.interrupts_held():
                    source.backup(connection.connection.driver_connection, pages=1, progress=copy.step_done)
            except BaseException as error:
                # The copy is one transaction, rolled back: the live file is as it was, and
                # so is its backup, which would only be a stray copy.
                if undo_backup is not None:
                    with interrupts.interrupts_held():
                        discard_backup(undo_backup)
                if isinstance(error, _Busy):
                    raise UpgradeRefused(
                        f"{database} is in use by another program, still after {busy_timeout:g} seconds; "
                        "stop that program or wait for it to finish, then try again."
                    ) from None
                raise
            finally:
                source.close()
            live = connection.connection.driver_connection
            # A backup of a WAL database says "WAL" in its header: keep the live file's own mode.
            mode_now = live.execute("PRAGMA journal_mode").fetchone()[0]
            if mode_now != journal_mode and "wal" in (mode_now, journal_mode):
                mode_now = live.execute(f"PRAGMA journal_mode = {journal_mode}").fetchone()[0]
    finally:
        engine.dispose()
    return RestoreReport(database, backup, restored_state, previous.name, undo_backup, mode_now)


class _Copy:
    """The backup API's progress callback, called after each page it copies.

    After the first page the copy's write transaction holds the live file's write lock, and
    nothing of the copy is in the file yet (one page stays in SQLite's cache): the file is
    exactly what the restore replaces, and no other program can change it until the copy
    commits. That is when the undo backup is written, so that every write made before the
    restore is either in the undo backup or refused with it.
    """

    def __init__(self, database: Path, undo_backup: Path | None, *, write_ahead_log: bool) -> None:
        self.database = database
        self.undo_backup = undo_backup
        self.write_ahead_log = write_ahead_log
        self.backed_up = undo_backup is None

    def step_done(self, status: int, remaining: int, total: int) -> None:
        if status == sqlite3.SQLITE_DONE:
            interrupts.change_committed()  # the last page is in: a signal now can only be too late
            return
        interrupts.raise_pending_interrupt()  # the copy is rolled back; the live file is as it was
        if status in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise _Busy  # Python would retry a busy step forever; SQLite's busy handler has already waited
        if not self.backed_up:
            # Never after the last page: a StarPunk database has a page per table and more.
            write_backup(self.database, self.undo_backup, write_ahead_log=self.write_ahead_log)
            self.backed_up = True
