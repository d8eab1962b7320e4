"""Recording a revision without running any: what detection finds, or one the operator names.

Detection's stamp of a file Alembic has never seen is the adoption an upgrade does first
(repairs of a known hybrid, schema_migrations rows, the stamp), run on its own through
commands.upgrade: same lock, same backup, same refusals. A file whose stamp does not tell the
truth (no row, several rows, a revision whose schema is not the file's: adoption.bookkeeping) is
re-stamped with what detection finds. `--force REV` is the operator's override, for a file
detection cannot place: it writes only alembic_version. Both re-stamps run in one locked
transaction after a backup.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..adoption import bookkeeping, detection, repairs
from ..evolution.chain import revision_references
from ..foundation import interrupts, reading
from ..foundation.advice import command
from ..foundation.backup import discard_backup, remove_leftovers, require_room, reserve_backup, write_backup
from ..foundation.database_files import check_database_file, check_writable, require_database_file
from ..foundation.engines import create_engine
from ..foundation.errors import UpgradeRefused
from ..foundation.integrity import refuse_damaged
from ..foundation.locations import DEFAULT_BUSY_TIMEOUT, SCRIPT_LOCATION
from ..foundation.printable import printable
from ..foundation.refusals import refusing_sqlite_errors
from ..schema.credentials import plaintext_credentials
from ..schema.shape import version_rows
from .planned_state import PlannedState, refuse_changed
from .upgrade import upgrade_database
from .upgrade_report import UpgradeReport

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class StampExamination:
    """What a database's stamp says, how its schema differs from that, and what detection finds."""

    path: Path
    versions: tuple[str, ...] | None  # alembic_version rows; None: no such table
    findings: tuple[str, ...]  # how the schema differs from the stamp; empty: the stamp is right
    detected: detection.DatabaseState | None  # the state detection finds, ignoring alembic_version
    undetectable: str | None = None  # detection's refusal: why it cannot place the schema
    unknown_stamp: str | None = None  # the one alembic_version row, if it names a revision this code lacks
    newer_release: str | None = None  # the refusal of a stamp a newer StarPunk release wrote

    @property
    def stamp_is_right(self) -> bool:
        return self.versions is not None and len(self.versions) == 1 and not self.findings

    def describe_stamp(self) -> str:
        if self.versions is None:
            return "it is not stamped"
        if len(self.versions) != 1:
            rows = ", ".join(self.versions) if self.versions else "no row"
            return f"its alembic_version holds {rows} where a StarPunk database has one row"
        if self.unknown_stamp is not None:
            whose = (
                "a newer StarPunk release's"
                if self.newer_release
                else "another application's (StarPunk numbers its own 001, 002, ...)"
            )
            return f"it is stamped {printable(self.unknown_stamp)}, a revision this code does not have: {whose}"
        if self.findings:
            return f"it is stamped {self.versions[0]}, but its schema differs from that revision's: {self.findings[0]}"
        return f"it is stamped {self.versions[0]}"


def examine(database_url: str, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> StampExamination:
    """Read the stamp, compare it with the schema and detect the schema, without writing."""
    path = require_database_file(database_url)
    check_database_file(path)
    with refusing_sqlite_errors(path, busy_timeout), reading.read_only_engine(path) as engine:
        with engine.connect() as connection, connection.begin():
            rows = version_rows(connection)
            versions = None if rows is None else tuple(rows)
            findings: list[str] = []
            unknown_stamp = newer_release = None
            known = {reference.revision for reference in revision_references()}
            newer = [version for version in versions or () if version not in known and detection.is_starpunk_revision(version)]
            if newer:  # with other rows or alone: what that release changed, detection cannot see
                newer_release = str(detection.unknown_revision_refusal(connection, newer[0], SCRIPT_LOCATION))
            if versions is not None and len(versions) == 1:
                findings = bookkeeping.stamp_findings(connection, versions[0])
                if versions[0] not in known:
                    unknown_stamp = versions[0]
            try:
                detected, undetectable = detection.detect_state(connection), None
            except UpgradeRefused as refusal:
                detected, undetectable = None, str(refusal)
    return StampExamination(path, versions, tuple(findings), detected, undetectable, unknown_stamp, newer_release)


def stamp_detected(
    database_url: str, state: detection.DatabaseState, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
) -> UpgradeReport:
    """Adopt an unmanaged file at the revision detection found, running no revision; refused
    if, under the lock, the file is no longer that unmanaged file (an upgrade stamped it)."""
    planned = PlannedState(state.revision, managed=False)
    return upgrade_database(database_url, state.revision or "base", busy_timeout=busy_timeout, planned=planned)


def _refuse_if_changed(
    connection: Connection,
    path: Path,
    seen: StampExamination,
    versions: tuple[str, ...] | None,
    adopting: detection.DatabaseState | None,
) -> None:
    """Under the lock: the stamp (and, when adopting, what detection finds) must be what the
    operator was shown."""
    if versions != seen.versions:
        refuse_changed(path, _stamped(seen.versions), _stamped(versions))
    if adopting is not None:
        found = detection.detect_state(connection)
        if found != adopting:
            refuse_changed(
                path, f"detected as {adopting.name} (revision {adopting.revision})", f"{found.name} (revision {found.revision})"
            )


def _stamped(versions: tuple[str, ...] | None) -> str:
    if versions is None:
        return "not stamped"
    return f"stamped {', '.join(versions)}" if versions else "stamped with no revision"


def require_known_revision(revision: str) -> None:
    """Refuse a revision the scripts do not have, before anything is announced or written."""
    from alembic.script import ScriptDirectory

    if revision not in {entry.revision for entry in ScriptDirectory(str(SCRIPT_LOCATION)).walk_revisions()}:
        raise UpgradeRefused(f"There is no revision {revision!r}; {command('history')} lists them; nothing was changed.")


@dataclass(frozen=True)
class StampReport:
    database: Path
    revision: str
    previous: tuple[str, ...]  # alembic_version rows before
    backup: Path | None
    credentials: tuple[str, ...] = ()  # the plaintext credentials the backup holds (schema.credentials)


def restamp(
    database_url: str,
    revision: str,
    *,
    seen: StampExamination | None = None,
    adopting: detection.DatabaseState | None = None,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
) -> StampReport:
    """Make `revision` the database's only alembic_version row, after a backup, in one locked
    transaction; with `adopting` (what detection found), its repairs and schema_migrations
    rows are written too, as an adoption would. With `seen` (the examination the operator was
    shown), only if the file is still as examined: its stamp, and what detection finds."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    require_known_revision(revision)
    script = ScriptDirectory(str(SCRIPT_LOCATION))
    if adopting is not None:
        repairs.require_adopted_revisions(adopting, [])  # a stamp runs no revision to adopt them for
    path = require_database_file(database_url)
    check_database_file(path)
    check_writable(path)
    engine = create_engine(database_url, busy_timeout)
    backup = None
    credentials: tuple[str, ...] = ()
    try:
        with refusing_sqlite_errors(path, busy_timeout), engine.connect() as connection:
            transaction = connection.begin()  # rolled back as the connection closes, unless committed below
            rows = version_rows(connection)
            if seen is not None:
                _refuse_if_changed(connection, path, seen, None if rows is None else tuple(rows), adopting)
            previous = tuple(rows or ())
            if path.exists() and path.stat().st_size > 0:
                refuse_damaged(connection, path)
                label = detection.DatabaseState(
                    previous[0] if previous else "unstamped", previous[0] if previous else None, managed=bool(previous)
                )
                journal_mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
                remove_leftovers(path)
                require_room(path, backup=True)
                credentials = plaintext_credentials(connection)
                with interrupts.interrupts_held():  # reserved and recorded at once: the clean-up knows it
                    backup = reserve_backup(path, label.label, private=bool(credentials))
                write_backup(path, backup, write_ahead_log=journal_mode == "wal")
            for statement in repairs.adoption_statements(adopting) if adopting else ():
                connection.exec_driver_sql(statement)
            connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
            MigrationContext.configure(connection, opts={"script": script}).stamp(script, revision)
            with interrupts.interrupts_held():  # a signal now must not undo the record of a commit
                transaction.commit()
                interrupts.change_committed()
    except BaseException:
        if backup is not None:  # rolled back: the file is as it was, and the copy only clutter
            with interrupts.interrupts_held():
                discard_backup(backup)
        raise
    finally:
        engine.dispose()
    return StampReport(path, revision, previous, backup, credentials)
