"""Bringing a file Alembic has never seen in step before stamping it: the repairs detection
explained (adoption.explanation), StarPunk's schema_migrations rows, and the stamp; the rows
of adopted tables taken back once their revision has run; all of it as SQL for `--sql` too."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..evolution.chain import reference_at
from ..foundation.errors import UpgradeRefused
from ..foundation.locations import SCRIPT_LOCATION
from ..foundation.scripts import scripts_of
from .detection import DatabaseState

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext, MigrationInfo
    from sqlalchemy.engine import Connection


def adoption_statements(state: DatabaseState, script_location: Path = SCRIPT_LOCATION) -> list[str]:
    """The SQL that brings an unmanaged file in step before stamping: the repairs detection
    explained, then schema_migrations (created if the file predates v0.9.0) filled with a row
    for every StarPunk migration at or below the revision."""
    statements = [statement for repair in state.repairs for statement in repair.statements]
    if state.missing_migration_rows:
        definition = reference_at(state.revision, script_location).shape.definitions["schema_migrations"]
        statements.append(definition.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1))
        statements += [
            "INSERT INTO schema_migrations (migration_name) VALUES ('{}')".format(name.replace("'", "''"))
            for name in state.missing_migration_rows
        ]
    return statements


def adopt(connection: Connection, state: DatabaseState, migration_context: MigrationContext) -> None:
    """Repair what detection explained, bring schema_migrations in step, and stamp `state.revision`.

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


def take_backs(state: DatabaseState) -> dict[str, tuple[str, ...]]:
    """What runs once a revision has run: the rows of the tables adopted for it."""
    after: dict[str, tuple[str, ...]] = {}
    for repair in state.repairs:
        if repair.take_back and repair.revision is not None:
            after[repair.revision] = after.get(repair.revision, ()) + repair.take_back
    return after


def require_adopted_revisions(state: DatabaseState, planned: list[Any]) -> None:
    """What was adopted for a revision waits for it: an upgrade (or stamp) that stops short of
    it would leave those objects set aside, so it is refused before anything is written."""
    if None in planned:
        return  # no command to ask what will run (see commands.plan): the run itself will tell
    # Alembic's steps carry the script they run; a step that goes down is no adoption's.
    running = {step.revision.revision for step in planned if getattr(step, "is_upgrade", False)}
    waiting = [repair for repair in state.repairs if repair.action == "adopt" and repair.revision not in running]
    if state.needs_stamp and waiting:
        revision = max((repair.revision or "" for repair in waiting), key=lambda name: (len(name), name))
        names = ", ".join(repair.name for repair in waiting)
        raise UpgradeRefused(
            f"The database holds {names}, which revision {revision} creates (a newer StarPunk created it early), so it "
            f"can only be adopted by an upgrade that runs revision {revision}; nothing was changed: upgrade to "
            f"{revision} or later (`starpunk-db upgrade` goes to head)."
        )


@contextlib.contextmanager
def taking_back(connection: Connection, state: DatabaseState, migration_context: MigrationContext) -> Iterator[None]:
    """For the length of the run: once a revision has run, the rows of the tables adopted for
    it go into the table it created (before anything else looks at the step)."""
    after = take_backs(state) if state.needs_stamp else {}
    if not after:
        yield
        return

    def step_applied(*, ctx: Any, step: MigrationInfo, heads: Any, run_args: Any) -> None:
        if step.is_upgrade:
            for statement in after.get(step.up_revision_id or "", ()):
                connection.exec_driver_sql(statement)

    callbacks = migration_context.on_version_apply_callbacks
    migration_context.on_version_apply_callbacks = (*callbacks, step_applied)
    try:
        yield
    finally:
        migration_context.on_version_apply_callbacks = callbacks
