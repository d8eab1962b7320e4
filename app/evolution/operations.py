"""StarPunk's own Alembic operations, available on `op` once this module is imported.

- `op.rebuild_table(name)`: `batch_alter_table` that keeps what SQLite hides (evolution.rebuild).
- `op.create_trigger(name, sql)` / `op.drop_trigger(name)`, and the same for `view` and
  `virtual_table`: the objects SQLAlchemy cannot model (schema.sqlite_objects). Autogenerate
  writes these (evolution.autogenerate); the drop operations carry the definition so that
  autogenerate can write the downgrade.

Imported by alembic/env.py (through app.autogenerate) and by app.adoption, which runs the
revisions in memory.
"""

from __future__ import annotations

from contextlib import AbstractContextManager as ContextManager
from typing import TYPE_CHECKING, Any, Literal

from alembic.operations import MigrateOperation, Operations

from ..schema.sqlite_objects import SQLiteObject, Trigger, View, VirtualTable
from . import rebuild
from .sql_as_written import execute_as_written

if TYPE_CHECKING:
    from alembic.operations import BatchOperations


@Operations.register_operation("rebuild_table")
class RebuildTableOp(MigrateOperation):
    """Only a name on `op`: the rebuild runs its operations through Alembic's batch."""

    @classmethod
    def rebuild_table(
        cls,
        operations: Operations,
        table_name: str,
        recreate: Literal["auto", "always", "never"] = "auto",
        **batch_arguments: Any,
    ) -> ContextManager[BatchOperations]:
        """`op.batch_alter_table` that keeps AUTOINCREMENT, the sequence, CHECKs, foreign-key
        actions, indexes as defined, triggers and views (evolution.rebuild)."""
        return rebuild.rebuild_table(operations, table_name, recreate, **batch_arguments)


def _operation_name(item: SQLiteObject) -> str:
    return item.kind.replace(" ", "_")


class CreateSQLiteObjectOp(MigrateOperation):
    """Create a trigger, view or virtual table from its CREATE statement."""

    def __init__(self, item: SQLiteObject) -> None:
        self.item = item

    @classmethod
    def create_trigger(cls, operations: Operations, name: str, sql: str) -> None:
        operations.invoke(cls(Trigger(name, sql)))

    @classmethod
    def create_view(cls, operations: Operations, name: str, sql: str) -> None:
        operations.invoke(cls(View(name, sql)))

    @classmethod
    def create_virtual_table(cls, operations: Operations, name: str, sql: str) -> None:
        operations.invoke(cls(VirtualTable(name, sql)))

    def reverse(self) -> DropSQLiteObjectOp:
        return DropSQLiteObjectOp(self.item)

    def to_diff_tuple(self) -> tuple[str, str, str]:
        return (f"add_{_operation_name(self.item)}", self.item.name, self.item.sql)


class DropSQLiteObjectOp(MigrateOperation):
    """Drop a trigger, view or virtual table; `sql` (its definition) lets autogenerate reverse it."""

    def __init__(self, item: SQLiteObject) -> None:
        self.item = item

    @classmethod
    def drop_trigger(cls, operations: Operations, name: str, sql: str = "") -> None:
        operations.invoke(cls(Trigger(name, sql)))

    @classmethod
    def drop_view(cls, operations: Operations, name: str, sql: str = "") -> None:
        operations.invoke(cls(View(name, sql)))

    @classmethod
    def drop_virtual_table(cls, operations: Operations, name: str, sql: str = "") -> None:
        operations.invoke(cls(VirtualTable(name, sql)))

    def reverse(self) -> CreateSQLiteObjectOp:
        return CreateSQLiteObjectOp(self.item)

    def to_diff_tuple(self) -> tuple[str, str, str]:
        return (f"remove_{_operation_name(self.item)}", self.item.name, self.item.sql)


# op.create_trigger, op.drop_trigger, op.create_view, ... (each a classmethod above).
for _kind in ("trigger", "view", "virtual_table"):
    Operations.register_operation(f"create_{_kind}")(CreateSQLiteObjectOp)
    Operations.register_operation(f"drop_{_kind}")(DropSQLiteObjectOp)


@Operations.implementation_for(CreateSQLiteObjectOp)
def _create(operations: Operations, operation: CreateSQLiteObjectOp) -> None:
    execute_as_written(operations, operation.item.sql)


@Operations.implementation_for(DropSQLiteObjectOp)
def _drop(operations: Operations, operation: DropSQLiteObjectOp) -> None:
    execute_as_written(operations, operation.item.drop_sql)
