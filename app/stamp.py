"""Recording a revision without running any: what detection finds, or one the operator names.

Detection's stamp is the adoption an upgrade does first (repairs of a known hybrid,
schema_migrations rows, the stamp), run on its own through app.upgrade: same lock, same
backup, same refusals. `--force REV` is the operator's override, for a file detection cannot
place or a stamp they know is wrong: it writes only alembic_version, after a backup, in the
same kind of locked transaction.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from app import adoption
from app.backup import write_backup
from app.db import DEFAULT_BUSY_TIMEOUT, SCRIPT_LOCATION, UpgradeRefused, database_file
from app.upgrade import (
    READ_ONLY,
    UpgradeReport,
    check_database_file,
    check_writable,
    create_engine,
    refusing_sqlite_errors,
    upgrade_database,
)


@dataclass(frozen=True)
class StampReport:
    database: str
    revision: str
    previous: tuple[str, ...]  # alembic_version rows before
    backup: Path | None


def stamp_differences(database_url: str, revision: str) -> list[str]:
    """How the database's schema differs from what `revision` produces (empty: the stamp is
    right), read through a read-only connection."""
    path = database_file(database_url)
    if path is not None:
        database_url = "sqlite:///file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro&uri=true"
    references = adoption.revision_references()
    expected = next(reference for reference in references if reference.revision == revision)
    engine = create_engine(database_url)
    try:
        with refusing_sqlite_errors(path, DEFAULT_BUSY_TIMEOUT), engine.connect() as connection:
            connection.execution_options(**{READ_ONLY: True})
            with connection.begin():
                actual = adoption.SchemaShape.read(connection).without_bookkeeping()
    finally:
        engine.dispose()
    starpunk = adoption._all_starpunk_names(references)
    return adoption.SchemaDifference.between(expected.shape.without_bookkeeping(), actual, starpunk).findings()


def stamp_detected(database_url: str, state: adoption.DatabaseState, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> UpgradeReport:
    """Adopt an unmanaged file at the revision detection found, running no revision."""
    return upgrade_database(database_url, state.revision, busy_timeout=busy_timeout)


def force_stamp(database_url: str, revision: str, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> StampReport:
    """Write `revision` as the database's only alembic_version row, whatever its schema."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(SCRIPT_LOCATION))
    known = [entry.revision for entry in script.walk_revisions()]
    if revision not in known:
        raise UpgradeRefused(f"There is no revision {revision!r}; `starpunk-db history` lists them.")
    path = database_file(database_url)
    if path is not None:
        check_database_file(path)
        check_writable(path)
    engine = create_engine(database_url, busy_timeout)
    backup = None
    try:
        with refusing_sqlite_errors(path, busy_timeout), engine.connect() as connection, connection.begin():
            has_table = connection.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).first()
            previous = tuple(row[0] for row in connection.exec_driver_sql("SELECT version_num FROM alembic_version")) if has_table else ()
            if path is not None and path.exists() and path.stat().st_size > 0:
                label = adoption.DatabaseState(previous[0] if previous else "unstamped", previous[0] if previous else None, managed=bool(previous))
                journal_mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
                backup = write_backup(path, label, write_ahead_log=journal_mode == "wal")
            if has_table:
                connection.exec_driver_sql("DELETE FROM alembic_version")
            MigrationContext.configure(connection, opts={"script": script}).stamp(script, revision)
    finally:
        engine.dispose()
    return StampReport(str(path or database_url), revision, previous, backup)
