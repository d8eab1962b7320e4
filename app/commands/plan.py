"""What the running Alembic command will do, worked out before anything is written.

Alembic learns its steps only while migrating, after the backup; a nonsense target then
fails with a backup already written, and `upgrade` to an older revision quietly does nothing.
Here the command's own step function is asked first (it only computes), so that an invalid,
older or no-op target is answered without a write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..foundation.errors import UpgradeRefused
from ..foundation.scripts import scripts_of

if TYPE_CHECKING:
    from alembic.runtime.environment import EnvironmentContext
    from alembic.runtime.migration import MigrationContext

    from ..adoption.detection import DatabaseState

# The commands of Alembic that change the database; all the others only read it.
WRITING_COMMANDS = frozenset({"upgrade", "downgrade", "do_stamp", "do_ensure_version"})


def writes(context: EnvironmentContext) -> bool:
    """Whether the Alembic command running changes the database (`upgrade`, `downgrade`,
    `stamp`, `ensure_version`); `current`, `check`, `history -i`, `revision` only read."""
    # env.py hands in the `alembic.context` module, a proxy of the running EnvironmentContext.
    instance = getattr(context, "_proxy", context)
    function = getattr(instance, "context_opts", {}).get("fn")
    name = getattr(function, "__name__", None)
    return name is None or name in WRITING_COMMANDS


def compares_with_models(context: EnvironmentContext) -> bool:
    """Whether the command is `check` or `revision --autogenerate`: a schema that differs from
    its stamp is what they exist to report (as operations), not a reason to refuse."""
    instance = getattr(context, "_proxy", context)
    function = getattr(instance, "context_opts", {}).get("fn")
    return getattr(function, "__name__", None) == "retrieve_migrations"


def planned_steps(state: DatabaseState, migration_context: MigrationContext) -> list[Any]:
    """The steps the command will run from `state`, worked out before anything is written,
    so that a nonsense, older or no-op target is answered without a backup or a write."""
    function = migration_context.opts.get("fn")
    if function is None:
        return [None]  # no command to ask: assume there is work
    current = (state.revision,) if state.revision else ()
    try:
        steps = list(function(current, migration_context))
    except Exception as error:
        raise _target_refusal(error, state, migration_context) from error
    if not steps and getattr(function, "__name__", "") == "upgrade" and _is_behind(state, migration_context):
        raise _target_refusal(None, state, migration_context)
    return steps


def _is_behind(state: DatabaseState, migration_context: MigrationContext) -> bool:
    """Whether the destination is an older revision than the database's (Alembic quietly does nothing)."""
    script, destination = scripts_of(migration_context), _destination_of(migration_context)
    if state.revision is None or not destination:
        return False
    try:
        targets = {revision.revision for revision in script.get_revisions(destination) if revision is not None}
    except Exception:
        return False
    older = {revision.revision for revision in script.iterate_revisions(state.revision, "base")} - {state.revision}
    return bool(targets) and targets <= older


def _target_refusal(error: Exception | None, state: DatabaseState, migration_context: MigrationContext) -> UpgradeRefused:
    script = scripts_of(migration_context)
    destination = _destination_of(migration_context)
    command = getattr(migration_context.opts.get("fn"), "__name__", "")
    try:
        script.get_revisions(destination)
    except Exception:
        return UpgradeRefused(
            f"There is no revision {destination!r}; `alembic history` lists them (or use head); nothing was changed."
        )
    if command == "upgrade" and _is_behind(state, migration_context):
        return UpgradeRefused(
            f"The database is at revision {state.revision}, past {destination}, and upgrade only moves forward; "
            f"to go back, use `starpunk-db downgrade {destination}` (or `alembic downgrade {destination}`); nothing was changed."
        )
    return UpgradeRefused(
        f"Cannot {command or 'migrate'} to {destination!r} from revision {state.revision}: {error}; nothing was changed."
    )


def _destination_of(migration_context: MigrationContext) -> Any:
    function = migration_context.opts.get("fn")
    # Alembic's command functions close over their destination as `revision`.
    for name, cell in zip(  # noqa: B905  (a closure has as many cells as free variables)
        getattr(getattr(function, "__code__", None), "co_freevars", ()), getattr(function, "__closure__", None) or ()
    ):
        if name == "revision":
            return cell.cell_contents
    return None
