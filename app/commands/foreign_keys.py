"""Foreign keys the upgrade would break, and whose they are.

StarPunk ran with foreign keys off, so only violations the upgrade itself introduces count:
they are compared by what the rows hold, since a table rebuild renumbers rowids.
When the row or the key belongs to the user's own table (a table no revision has), the
refusal names that table, the StarPunk table it points at and the revision that drops it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy

from ..adoption.detection import DatabaseState
from ..evolution.chain import revision_references
from ..foundation.errors import UpgradeRefused
from ..foundation.printable import printable, shown_value
from ..schema.sqlite_objects import quote

if TYPE_CHECKING:
    from alembic.runtime.environment import EnvironmentContext
    from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class Violation:
    """A row whose foreign key points nowhere, known by what it holds rather than by its rowid,
    which a table rebuild renumbers: the same orphan before and after is the same violation."""

    table: str
    parent: str
    columns: tuple[str, ...]  # the row's columns that make up the key
    values: tuple[Any, ...] | None  # what the row holds in them; None when it cannot be read back (WITHOUT ROWID)

    def described(self) -> str:
        if self.values is None:
            return f"a row of {printable(self.table)} pointing at no {printable(self.parent)} row"
        key = ", ".join(
            f"{printable(column)} = {shown_value(value)}" for column, value in zip(self.columns, self.values, strict=True)
        )
        return f"the row of {printable(self.table)} with {key}, pointing at no {printable(self.parent)} row"


def _all_violations(connection: Connection) -> Counter[Violation]:
    found: Counter[Violation] = Counter()
    key_columns: dict[tuple[str, int], tuple[str, ...]] = {}
    for table, rowid, parent, key in connection.exec_driver_sql("PRAGMA foreign_key_check").all():
        if (table, key) not in key_columns:
            key_columns[(table, key)] = tuple(
                column
                for (column,) in connection.exec_driver_sql(
                    'SELECT "from" FROM pragma_foreign_key_list(?) WHERE id = ? ORDER BY seq', (table, key)
                )
            )
        columns = key_columns[(table, key)]
        values = None
        if rowid is not None:
            selected = ", ".join(quote(column) for column in columns)
            row = connection.exec_driver_sql(f"SELECT {selected} FROM {quote(table)} WHERE rowid = ?", (rowid,)).first()
            values = tuple(row) if row is not None else None
        found[Violation(table, parent, columns, values)] += 1
    return found


def violations(connection: Connection, state: DatabaseState, context: EnvironmentContext) -> Counter[Violation]:
    try:
        return _all_violations(connection)
    except sqlalchemy.exc.OperationalError as error:
        # A foreign key whose parent key does not exist (any more): SQLite cannot even check it.
        mismatch = re.search(r'foreign key mismatch - "([^"]+)" referencing "([^"]+)"', str(error))
        if mismatch is None:
            raise
        raise _users_key_refusal(mismatch[1], mismatch[2], state, context) from error


def refusal_for(broken: Counter[Violation], state: DatabaseState, context: EnvironmentContext) -> UpgradeRefused:
    # Values of any type (or none) side by side: ordered by how they read, so that the first is always the same.
    first = min(broken, key=lambda violation: (violation.table, violation.parent, violation.columns, repr(violation.values)))
    references = revision_references(Path(context.script.dir))
    if first.table not in set().union(*(reference.shape.tables.keys() for reference in references)):
        return _users_key_refusal(first.table, first.parent, state, context)
    rows = sum(count for violation, count in broken.items() if violation.table == first.table)
    return UpgradeRefused(
        f"The upgrade would leave {rows} row(s) of {printable(first.table)} whose foreign key points nowhere "
        f"(first: {first.described()}); nothing was changed. Please report this as a bug."
    )


def _users_key_refusal(table: str, parent: str, state: DatabaseState, context: EnvironmentContext) -> UpgradeRefused:
    """A user's table whose foreign key points at a table a revision drops or rebuilds: name both."""
    references = revision_references(Path(context.script.dir))
    revisions = [reference.revision for reference in references]
    start = revisions.index(state.revision) if state.revision in revisions else 0
    dropping = next((r.revision for r in references[start + 1 :] if parent not in r.shape.tables), None)
    by = f"which revision {dropping} drops" if dropping else "which the upgrade rebuilds"
    return UpgradeRefused(
        f"Your own table {printable(table)} has a foreign key to {printable(parent)}, {by}; nothing was changed: drop that "
        f"foreign key (rebuild {printable(table)} without it), run the upgrade, then add it back if {printable(parent)} still exists."
    )
