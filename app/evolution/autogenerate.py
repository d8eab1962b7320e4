"""What `alembic revision --autogenerate` and `alembic check` compare, and how they write it.

Hooked into Alembic's own extension points (alembic/env.py passes `autogenerate_options`):

- a comparator for the objects SQLAlchemy cannot model: triggers, views and virtual
  tables declared with the models (schema.sqlite_objects) against those in the database; a
  missing, extra or different one becomes `op.create_*` / `op.drop_*` (evolution.operations);
- `include_name`: only the models' names and the names StarPunk's revisions ever used are
  compared, so a user's own tables, indexes, triggers and views are never proposed for
  dropping (adoption leaves them alone too);
- `process_revision_directives`: table changes are written as `op.rebuild_table` (a batch
  that keeps what SQLite hides, evolution.rebuild); objects are dropped before and created after
  the table operations; and a table that loses columns and gains others gets a warning and
  a comment, because autogenerate cannot tell that from a rename.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic.autogenerate import comparators, renderers
from alembic.autogenerate.render import render_op
from alembic.operations import MigrateOperation, ops
from sqlalchemy import MetaData

from ..foundation.locations import SCRIPT_LOCATION
from ..schema.sqlite_objects import declared_objects, read_objects
from .chain import revision_references
from .operations import CreateSQLiteObjectOp, DropSQLiteObjectOp

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext
    from alembic.runtime.migration import MigrationContext

log = logging.getLogger(__name__)


def autogenerate_options(metadata: MetaData, script_location: Path = SCRIPT_LOCATION) -> dict[str, Any]:
    """The keyword arguments env.py adds to `context.configure` for autogenerate."""
    return {
        "include_name": _include_name_for(metadata, script_location),
        "process_revision_directives": arrange_revision,
    }


@functools.cache
def starpunk_names(script_location: Path = SCRIPT_LOCATION) -> dict[str, frozenset[str]]:
    """Every table, index, trigger, view and virtual table name a revision ever created."""
    names: dict[str, set[str]] = {"table": set(), "index": set(), "object": set()}
    for reference in revision_references(script_location):
        shape = reference.shape
        for name, sql in shape.definitions.items():
            if name in shape.tables and not sql.upper().startswith("CREATE VIRTUAL"):
                names["table"].add(name)
            elif sql.upper().startswith(("CREATE VIRTUAL", "CREATE VIEW", "CREATE TRIGGER")):
                names["object"].add(name)
        names["index"].update(shape.indexes)
    return {kind: frozenset(found) for kind, found in names.items()}


def _include_name_for(metadata: MetaData, script_location: Path) -> Callable[[str | None, str, dict[str, Any]], bool]:
    def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
        if name is None or type_ not in ("table", "index"):
            return True
        if type_ == "table":
            # Virtual tables (and FTS5's shadow tables) are compared as objects, below.
            known = name in metadata.tables or name in starpunk_names(script_location)["table"]
            return known and name not in declared_objects(metadata)
        declared = {index.name for table in metadata.tables.values() for index in table.indexes}
        return name in declared or name in starpunk_names(script_location)["index"]

    return include_name


@comparators.dispatch_for("schema")
def compare_sqlite_objects(autogen_context: AutogenContext, upgrade_ops: ops.UpgradeOps, schemas: Any) -> None:
    """Triggers, views and virtual tables: the models' declarations against the database."""
    connection = autogen_context.connection
    metadata = autogen_context.metadata
    if connection is None or connection.dialect.name != "sqlite" or not isinstance(metadata, MetaData):
        return
    declared = declared_objects(metadata)
    present = read_objects(connection)
    script = autogen_context.migration_context.script
    ours = starpunk_names(Path(script.dir) if script is not None else SCRIPT_LOCATION)["object"]
    for name, item in present.items():
        if name not in declared and name in ours:
            upgrade_ops.ops.append(DropSQLiteObjectOp(item))
    for name, item in declared.items():
        found = present.get(name)
        if found is None:
            upgrade_ops.ops.append(CreateSQLiteObjectOp(item))
        elif not item.same_definition(found):
            upgrade_ops.ops += [DropSQLiteObjectOp(found), CreateSQLiteObjectOp(item)]


class RebuildTableOps(ops.ModifyTableOps):
    """Table changes written as `with op.rebuild_table(...)` rather than `batch_alter_table`."""


class RenameHint(MigrateOperation):
    """A comment in the revision: columns dropped and added on one table may be a rename."""

    def __init__(self, table_name: str, dropped: list[str], added: list[str]) -> None:
        self.table_name, self.dropped, self.added = table_name, dropped, added

    def reverse(self) -> RenameHint:
        return RenameHint(self.table_name, self.added, self.dropped)

    def to_diff_tuple(self) -> tuple[str, str]:
        return ("rename_hint", self.table_name)

    def sentence(self) -> str:
        return (
            f"{self.table_name} loses column(s) {', '.join(self.dropped)} and gains {', '.join(self.added)}: "
            "if that is a rename, the drop loses the column's data; write "
            f"batch_op.alter_column({self.dropped[0]!r}, new_column_name={self.added[0]!r}) instead"
        )


def arrange_revision(context: MigrationContext, revision: Any, directives: list[ops.MigrationScript]) -> None:
    """`process_revision_directives`: rebuilds that keep everything, objects in a safe order,
    rename warnings."""
    for script in directives:
        for container in (*script.upgrade_ops_list, *script.downgrade_ops_list):
            container.ops = _arranged(container.ops)
        for container in script.upgrade_ops_list:
            for table_ops in container.ops:
                for hint in getattr(table_ops, "ops", ()):
                    if isinstance(hint, RenameHint):
                        log.warning("%s.", hint.sentence())


def _arranged(operations: Iterable[MigrateOperation]) -> list[MigrateOperation]:
    operations = list(operations)
    drops = [item for item in operations if isinstance(item, DropSQLiteObjectOp)]
    creates = [item for item in operations if isinstance(item, CreateSQLiteObjectOp)]
    middle = [_as_rebuild(item) for item in operations if item not in drops and item not in creates]
    return [*drops, *middle, *creates]


def _as_rebuild(operation: MigrateOperation) -> MigrateOperation:
    if not isinstance(operation, ops.ModifyTableOps) or isinstance(operation, RebuildTableOps):
        return operation
    table_ops = list(operation.ops)
    dropped = [item.column_name for item in table_ops if isinstance(item, ops.DropColumnOp)]
    added = [item.column.name for item in table_ops if isinstance(item, ops.AddColumnOp)]
    if dropped and added:
        table_ops.insert(0, RenameHint(operation.table_name, dropped, added))
    return RebuildTableOps(operation.table_name, table_ops, schema=operation.schema)


@renderers.dispatch_for(RebuildTableOps)
def _render_rebuild(autogen_context: AutogenContext, operation: RebuildTableOps) -> list[str]:
    lines = render_op(autogen_context, ops.ModifyTableOps(operation.table_name, operation.ops, schema=operation.schema))
    if lines:
        lines[0] = f"with op.rebuild_table({operation.table_name!r}) as batch_op:"
    return lines


@renderers.dispatch_for(RenameHint)
def _render_rename_hint(autogen_context: AutogenContext, hint: RenameHint) -> list[str]:
    return [
        f"# NOTE: {hint.table_name} loses column(s) {', '.join(hint.dropped)} and gains {', '.join(hint.added)}.",
        "# If that is a rename, the drop loses the column's data: write instead",
        f"#     batch_op.alter_column({hint.dropped[0]!r}, new_column_name={hint.added[0]!r})",
    ]


@renderers.dispatch_for(CreateSQLiteObjectOp)
def _render_create(autogen_context: AutogenContext, operation: CreateSQLiteObjectOp) -> str:
    item = operation.item
    return f"op.create_{item.kind.replace(' ', '_')}({item.name!r}, {_sql_literal(item.sql)})"


@renderers.dispatch_for(DropSQLiteObjectOp)
def _render_drop(autogen_context: AutogenContext, operation: DropSQLiteObjectOp) -> str:
    return f"op.drop_{operation.item.kind.replace(' ', '_')}({operation.item.name!r})"


def _sql_literal(sql: str) -> str:
    if '"""' in sql or sql.endswith('"') or "\\" in sql:
        return repr(sql)
    return '"""' + sql + '"""'
