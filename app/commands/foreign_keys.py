"""Foreign keys the upgrade would break, and whose they are.

StarPunk ran with foreign keys off, so only violations the upgrade itself introduces count.
When the row or the key belongs to the user's own table (a table no revision has), the
refusal names that table, the StarPunk table it points at and the revision that drops it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy

from ..adoption.detection import DatabaseState
from ..evolution.chain import revision_references
from ..foundation.errors import UpgradeRefused

if TYPE_CHECKING:
    from alembic.runtime.environment import EnvironmentContext
    from sqlalchemy.engine import Connection


def _all_violations(connection: Connection) -> set[tuple[Any, ...]]:
    return {tuple(row) for row in connection.exec_driver_sql("PRAGMA foreign_key_check")}


def violations(connection: Connection, state: DatabaseState, context: EnvironmentContext) -> set[tuple[Any, ...]]:
    try:
        return _all_violations(connection)
    except sqlalchemy.exc.OperationalError as error:
        # A foreign key whose parent key does not exist (any more): SQLite cannot even check it.
        mismatch = re.search(r'foreign key mismatch - "([^"]+)" referencing "([^"]+)"', str(error))
        if mismatch is None:
            raise
        raise _users_key_refusal(mismatch[1], mismatch[2], state, context) from error


def refusal_for(broken: set[tuple[Any, ...]], state: DatabaseState, context: EnvironmentContext) -> UpgradeRefused:
    table, _rowid, parent, _key = sorted(broken, key=str)[0]
    references = revision_references(Path(context.script.dir))
    if table not in set().union(*(reference.shape.tables.keys() for reference in references)):
        return _users_key_refusal(table, parent, state, context)
    return UpgradeRefused(
        f"The upgrade would leave {len(broken)} row(s) whose foreign key points nowhere "
        f"(first: {sorted(broken, key=str)[0]}); nothing was changed. Please report this as a bug."
    )


def _users_key_refusal(table: str, parent: str, state: DatabaseState, context: EnvironmentContext) -> UpgradeRefused:
    """A user's table whose foreign key points at a table a revision drops or rebuilds: name both."""
    references = revision_references(Path(context.script.dir))
    revisions = [reference.revision for reference in references]
    start = revisions.index(state.revision) if state.revision in revisions else 0
    dropping = next((r.revision for r in references[start + 1 :] if parent not in r.shape.tables), None)
    by = f"which revision {dropping} drops" if dropping else "which the upgrade rebuilds"
    return UpgradeRefused(
        f"Your own table {table} has a foreign key to {parent}, {by}; nothing was changed: drop that foreign key "
        f"(rebuild {table} without it), run the upgrade, then add it back if {parent} still exists."
    )
