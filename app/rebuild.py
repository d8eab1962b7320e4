"""Table rebuilds on SQLite that keep what reflection does not see.

SQLite alters little in place, so Alembic's batch mode rebuilds a table ("move and copy"):
it reflects the table, creates `_alembic_tmp_<table>`, copies the rows, drops the table and
renames the copy. Reflection does not see, so the copy loses: AUTOINCREMENT (and with it
the table's `sqlite_sequence` value: a new row would reuse a deleted row's id), unnamed
CHECK constraints, the exact definition of indexes (DESC, partial, COLLATE), and every
trigger on the table; and views that mention the table make the rename fail.

`rebuild_table` wraps the batch: after the revision's operations are collected and just
before the copy, it records all of that, drops the views and the triggers that mention the
table, hands AUTOINCREMENT and the unnamed CHECKs to the batch, and after the copy puts
back the indexes' own definitions, the triggers, the views and the sequence. Revisions
reach it as `op.rebuild_table` (app.operations).
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

from app.sqlite_objects import TableTraits, Trigger, View, normalized_sql, read_objects

if TYPE_CHECKING:
    from alembic.operations import BatchOperations, Operations
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TableSnapshot:
    """What a rebuild of `table` must put back, read just before the copy."""

    table: str
    autoincrement: bool
    unnamed_checks: tuple[str, ...]
    indexes: dict[str, tuple[str, tuple[str, ...]]]  # name -> (CREATE INDEX, its columns)
    dependents: tuple[Trigger | View, ...]  # views, and triggers on or mentioning the table, in creation order
    sequence: int | None

    @classmethod
    def read(cls, connection: Connection, table: str) -> TableSnapshot:
        import sqlalchemy

        create_sql = connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).scalar_one()
        checks = sqlalchemy.inspect(connection).get_check_constraints(table)
        indexes = {
            name: (sql, _index_columns(connection, name))
            for name, sql in connection.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", (table,)
            )
        }
        views = {name for name, item in read_objects(connection).items() if isinstance(item, View)}
        mentions = re.compile(rf"\b{re.escape(table)}\b", re.IGNORECASE)
        dependents = tuple(
            item
            for item in read_objects(connection).values()
            if isinstance(item, View)
            or (isinstance(item, Trigger) and (item.table in views or item.table == table or mentions.search(item.sql)))
        )
        sequence = None
        if connection.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").first():
            sequence = connection.exec_driver_sql("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).scalar()
        return cls(
            table=table,
            autoincrement=TableTraits.of(create_sql).autoincrement,
            unnamed_checks=tuple(check["sqltext"] for check in checks if not check.get("name")),
            indexes=indexes,
            dependents=dependents,
            sequence=sequence,
        )

    def checks_after(self, batch_operations: list[tuple[str, tuple, dict]]) -> list[str]:
        """The unnamed CHECKs, with renamed columns followed; a CHECK on a dropped column goes
        with the column (SQLite could not create the table otherwise)."""
        checks = list(self.unnamed_checks)
        for name, arguments, keywords in batch_operations:
            if name == "alter_column" and keywords.get("name"):
                old, new = arguments[1], keywords["name"]
                checks = [re.sub(rf"\b{re.escape(old)}\b", new, check) for check in checks]
            elif name == "drop_column":
                column = getattr(arguments[1], "name", arguments[1])
                kept = [check for check in checks if not re.search(rf"\b{re.escape(column)}\b", check)]
                for check in set(checks) - set(kept):
                    log.warning("CHECK (%s) on %s goes with the dropped column %s", check, self.table, column)
                checks = kept
        return checks

    def drop_dependents(self, connection: Connection) -> None:
        for item in reversed(self.dependents):
            connection.exec_driver_sql(item.drop_sql)

    def restore(self, connection: Connection) -> None:
        for name, (sql, columns) in self.indexes.items():
            now = connection.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)).scalar()
            # Put back the index's own definition (DESC, WHERE, COLLATE) where the batch
            # recreated it on the same columns; an index the revision dropped stays dropped.
            if now is not None and normalized_sql(now) != normalized_sql(sql) and _index_columns(connection, name) == columns:
                connection.exec_driver_sql(f'DROP INDEX "{name}"')
                connection.exec_driver_sql(sql)
        for item in self.dependents:
            connection.exec_driver_sql(item.sql)
        if self.sequence is not None:
            updated = connection.exec_driver_sql(
                "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (self.sequence, self.table)
            ).rowcount
            if not updated:
                connection.exec_driver_sql("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (self.table, self.sequence))


def _index_columns(connection: Connection, index: str) -> tuple[str, ...]:
    return tuple(row[0] or "" for row in connection.exec_driver_sql("SELECT name FROM pragma_index_info(?) ORDER BY seqno", (index,)))


@contextlib.contextmanager
def rebuild_table(operations: Operations, table_name: str, recreate: str = "auto", **batch_arguments: Any) -> Iterator[BatchOperations]:
    """`op.batch_alter_table` that keeps AUTOINCREMENT, the sequence, CHECKs, foreign-key
    actions, indexes as defined, triggers and views (`recreate` as in batch_alter_table:
    "auto" rebuilds only when ALTER TABLE cannot do it)."""
    with operations.batch_alter_table(table_name, recreate=recreate, **batch_arguments) as batch:
        yield batch
        batch_impl = batch.impl
        if operations.migration_context.as_sql or not batch_impl._should_recreate():
            return  # plain ALTER TABLE statements, or --sql (where batch refuses to reflect anyway)
        connection = operations.get_bind()
        snapshot = TableSnapshot.read(connection, table_name)
        from sqlalchemy import CheckConstraint

        batch_impl.table_args = (
            *batch_impl.table_args,
            *(CheckConstraint(check) for check in snapshot.checks_after(batch_impl.batch)),
        )
        batch_impl.table_kwargs.setdefault("sqlite_autoincrement", snapshot.autoincrement)
        snapshot.drop_dependents(connection)
    if not operations.migration_context.as_sql and batch_impl._should_recreate():
        snapshot.restore(connection)
