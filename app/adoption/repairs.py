"""Bringing a file Alembic has never seen in step before stamping it: the repairs detection
listed, StarPunk's schema_migrations rows, and the stamp; as SQL for `--sql` too."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..evolution.chain import reference_at
from ..foundation.locations import SCRIPT_LOCATION
from ..foundation.scripts import scripts_of
from .detection import DatabaseState

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.engine import Connection


def adoption_statements(state: DatabaseState, script_location: Path = SCRIPT_LOCATION) -> list[str]:
    """The SQL that brings an unmanaged file in step before stamping: the repairs of a
    known hybrid, then schema_migrations (created if the file predates v0.9.0) filled with
    a row for every StarPunk migration at or below the revision."""
    statements = list(state.repairs)
    if state.missing_migration_rows:
        definition = reference_at(state.revision, script_location).shape.definitions["schema_migrations"]
        statements.append(definition.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1))
        statements += [
            "INSERT INTO schema_migrations (migration_name) VALUES ('{}')".format(name.replace("'", "''"))
            for name in state.missing_migration_rows
        ]
    return statements


def adopt(connection: Connection, state: DatabaseState, migration_context: MigrationContext) -> None:
    """Repair a known hybrid, bring schema_migrations in step, and stamp `state.revision`.

    Runs inside the caller's transaction: with the upgrade that follows, all or nothing.
    """
    scripts = scripts_of(migration_context)
    for statement in adoption_statements(state, Path(scripts.dir)):
        connection.exec_driver_sql(statement)
    if state.revision is not None:
        migration_context.stamp(scripts, state.revision)


def adoption_sql(state: DatabaseState) -> list[str]:
    """What `adopt` would execute, stamp included, as SQL for a person to read (`--sql`)."""
    statements = adoption_statements(state)
    if state.needs_stamp:
        statements.append(
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
            "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
        )
        statements.append(f"INSERT INTO alembic_version (version_num) VALUES ('{state.revision}')")
    return statements
