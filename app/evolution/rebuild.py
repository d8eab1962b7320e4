"""Table rebuilds on SQLite that keep what reflection does not see.

SQLite alters little in place, so Alembic's batch mode rebuilds a table ("move and copy"):
it reflects the table, creates `_alembic_tmp_<table>`, copies the rows, drops the table and
renames the copy. Reflection does not see, so the copy loses: AUTOINCREMENT (and with it
the table's `sqlite_sequence` value: a new row would reuse a deleted row's id), unnamed
CHECK constraints, the exact definition of indexes (DESC, partial, COLLATE), and every
trigger on the table; and views that mention the table make the rename fail.

`rebuild_table` wraps the batch: once the revision's operations are collected, just before
the copy, it reads all of that, keeps the sequence in a temporary table, drops the views
and the triggers that mention the table, and hands AUTOINCREMENT and the unnamed CHECKs to
the batch; after the copy it puts back the indexes' own definitions, the triggers, the
views and the sequence. Everything it does is SQL sent through `op.execute`, so `--sql`
prints it too; there, with no database to read, the table is read from the schema the
revision chain gives at that point (evolution.chain), and a user's own views are left in place
by SQLite's legacy rename instead (a user's own triggers on the table cannot be known, and
are not in that SQL). Revisions reach it as `op.rebuild_table` (evolution.operations).
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy

from ..schema.sql_names import mentions, same_name
from ..schema.sqlite_objects import TableTraits, Trigger, View, quote, read_objects
from .bad_rows import bad_row_refusal
from .sql_as_written import execute_as_written, sql_literal

if TYPE_CHECKING:
    from alembic.operations import BatchOperations, Operations
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

SEQUENCE_KEEPER = "temp.starpunk_rebuild_sequence"
# One operation recorded inside a batch: its name, positional and keyword arguments.
BatchStep = tuple[str, tuple[Any, ...], dict[str, Any]]


@dataclass(frozen=True)
class TableSnapshot:
    """What a rebuild of `table` must put back, read just before the copy."""

    table: str
    autoincrement: bool
    unnamed_checks: tuple[str, ...]
    indexes: dict[str, tuple[str, tuple[str, ...]]]  # name -> (CREATE INDEX, its columns)
    dependents: tuple[Trigger | View, ...]  # views, and triggers on or mentioning the table, in creation order

    @classmethod
    def read(cls, connection: Connection, table: str) -> TableSnapshot:
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
        objects = read_objects(connection)
        views = [name for name, item in objects.items() if isinstance(item, View)]
        # Every view is dropped and recreated (SQLite checks them all at the rename), and a
        # view's triggers go with it: they are dependents too, whatever the view is called.
        dependents = tuple(
            item
            for item in objects.values()
            if isinstance(item, View)
            or (
                isinstance(item, Trigger)
                and (
                    any(same_name(item.table, view) for view in views)
                    or same_name(item.table, table)
                    or mentions(item.sql, table)
                )
            )
        )
        return cls(
            table=table,
            autoincrement=TableTraits.of(create_sql).autoincrement,
            unnamed_checks=tuple(check["sqltext"] for check in checks if not check.get("name")),
            indexes=indexes,
            dependents=dependents,
        )

    def before_copy(self, operations: Operations, batch_impl: Any) -> None:
        """Hand the batch what reflection misses; keep the sequence; drop what names the table."""
        from sqlalchemy import CheckConstraint

        checks = self.checks_after(batch_impl.batch)
        batch_impl.table_args = (*batch_impl.table_args, *(CheckConstraint(check) for check in checks))
        batch_impl.table_kwargs.setdefault("sqlite_autoincrement", self.autoincrement)
        if self.autoincrement:
            execute_as_written(
                operations, f"CREATE TEMP TABLE IF NOT EXISTS {SEQUENCE_KEEPER.split('.')[1]} (name TEXT, seq INTEGER)"
            )
            execute_as_written(
                operations,
                f"INSERT INTO {SEQUENCE_KEEPER} SELECT name, seq FROM sqlite_sequence WHERE name = {sql_literal(self.table)}",
            )
        for item in reversed(self.dependents):
            execute_as_written(operations, item.drop_sql)

    def after_copy(self, operations: Operations, batch_operations: list[BatchStep]) -> None:
        # The batch recreated the indexes from reflection: put back their own definitions,
        # except where the revision dropped them or changed their columns.
        changed = self.changed_columns(batch_operations)
        dropped = {getattr(arguments[0], "name", None) for name, arguments, _ in batch_operations if name == "drop_index"}
        for name, (sql, columns) in self.indexes.items():
            if name not in dropped and not changed & set(columns):
                execute_as_written(operations, f"DROP INDEX IF EXISTS {quote(name)}")
                execute_as_written(operations, sql)
        for item in self.dependents:
            execute_as_written(operations, item.sql)  # as SQLite stored it: never read for bind parameters
        if self.autoincrement:
            table = sql_literal(self.table)
            execute_as_written(
                operations,
                f"UPDATE sqlite_sequence SET seq = max(seq, (SELECT max(seq) FROM {SEQUENCE_KEEPER})) "
                f"WHERE name = {table} AND EXISTS (SELECT 1 FROM {SEQUENCE_KEEPER})",
            )
            execute_as_written(
                operations,
                f"INSERT INTO sqlite_sequence (name, seq) SELECT name, max(seq) FROM {SEQUENCE_KEEPER} "
                f"WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = {table}) GROUP BY name",
            )
            execute_as_written(operations, f"DROP TABLE {SEQUENCE_KEEPER}")

    def changed_columns(self, batch_operations: list[BatchStep]) -> set[str]:
        """Columns the revision drops or renames."""
        changed: set[str] = set()
        for name, arguments, keywords in batch_operations:
            if name == "drop_column":
                changed.add(str(getattr(arguments[1], "name", arguments[1])))
            elif name == "alter_column" and keywords.get("name"):
                changed.add(arguments[1])
        return changed

    def checks_after(self, batch_operations: list[BatchStep]) -> list[str]:
        """The unnamed CHECKs, with renamed columns followed; a CHECK on a dropped column goes
        with the column (SQLite could not create the table otherwise)."""
        checks = list(self.unnamed_checks)
        for name, arguments, keywords in batch_operations:
            if name == "alter_column" and keywords.get("name"):
                old, new = str(arguments[1]), str(keywords["name"])
                checks = [re.sub(rf"\b{re.escape(old)}\b", new, check) for check in checks]
            elif name == "drop_column":
                column = str(getattr(arguments[1], "name", arguments[1]))
                kept = [check for check in checks if not re.search(rf"\b{re.escape(column)}\b", check)]
                for check in set(checks) - set(kept):
                    log.warning("CHECK (%s) on %s goes with the dropped column %s", check, self.table, column)
                checks = kept
        return checks


def _index_columns(connection: Connection, index: str) -> tuple[str, ...]:
    return tuple(
        row[0] or "" for row in connection.exec_driver_sql("SELECT name FROM pragma_index_info(?) ORDER BY seqno", (index,))
    )


@contextlib.contextmanager
def rebuild_table(
    operations: Operations,
    table_name: str,
    recreate: Literal["auto", "always", "never"] = "auto",
    **batch_arguments: Any,
) -> Iterator[BatchOperations]:
    """`op.batch_alter_table` that keeps AUTOINCREMENT, the sequence, CHECKs, foreign-key
    actions, indexes as defined, triggers and views (`recreate` as in batch_alter_table:
    "auto" rebuilds only when ALTER TABLE cannot do it)."""
    with contextlib.ExitStack() as stack:
        if operations.migration_context.as_sql:
            connection = stack.enter_context(_schema_the_revision_sees(operations))
            batch_arguments.setdefault("copy_from", _reflected(operations, connection, table_name))
        else:
            connection = operations.get_bind()
        try:
            with operations.batch_alter_table(table_name, recreate=recreate, **batch_arguments) as batch:
                yield batch
                batch_impl = batch.impl
                rebuilds = batch_impl._should_recreate()
                if rebuilds:
                    snapshot = TableSnapshot.read(connection, table_name)
                    snapshot.before_copy(operations, batch_impl)
                    if operations.migration_context.as_sql:
                        # The user's own views are unknown here; SQLite's legacy rename leaves them be.
                        operations.execute("PRAGMA legacy_alter_table = ON")
        except sqlalchemy.exc.IntegrityError as error:
            # The copy refused a row: name it by its table and key, not by Alembic's temporary table.
            raise bad_row_refusal(connection, table_name, error, _running_revision()) from error
        if rebuilds:
            if operations.migration_context.as_sql:
                operations.execute("PRAGMA legacy_alter_table = OFF")
            snapshot.after_copy(operations, batch_impl.batch)


def _running_revision() -> str:
    """ "revision 010" or "the downgrade of revision 010": the revision whose upgrade() or downgrade() runs now."""
    frame = revision_frame(sys._getframe(1))
    if frame is None:
        return "A table rebuild"
    revision = f"revision {frame.f_globals['revision']}"
    return revision if frame.f_code.co_name == "upgrade" else f"the downgrade of {revision}"


def _reflected(operations: Operations, connection: Connection, table_name: str) -> Any:
    """The table as batch mode would reflect it; unnamed CHECKs left to `before_copy`, as online."""

    table = sqlalchemy.Table(
        table_name,
        sqlalchemy.MetaData(),
        autoload_with=connection,
        listeners=[("column_reflect", operations.migration_context.impl.autogen_column_reflect)],
    )
    for check in [c for c in table.constraints if isinstance(c, sqlalchemy.CheckConstraint) and not c.name]:
        table.constraints.remove(check)
    return table


# The context option through which env.py tells a `--sql` rebuild the schema a revision starts
# from (evolution.configuration sets it to the chain's): `(script_location, revision) ->
# CREATE statements`. An option, because the chain replays the revisions through this module.
SCHEMA_AT_OPTION = "starpunk_schema_at"


@contextlib.contextmanager
def _schema_the_revision_sees(operations: Operations) -> Iterator[Connection]:
    """For `--sql`: an in-memory database holding the schema the running revision starts
    from, per the chain; the revision is the one whose upgrade() or downgrade() is on the
    call stack."""
    from alembic.util import CommandError

    frame = revision_frame(sys._getframe(1))
    if frame is None:
        raise CommandError("op.rebuild_table in --sql mode must be called from a revision's upgrade() or downgrade().")
    schema_at = operations.migration_context.opts.get(SCHEMA_AT_OPTION)
    if schema_at is None:
        raise CommandError(f"op.rebuild_table in --sql mode needs the {SCHEMA_AT_OPTION} option that env.py configures.")
    revision = frame.f_globals["revision"] if frame.f_code.co_name == "downgrade" else frame.f_globals["down_revision"]
    script_location = Path(frame.f_globals["__file__"]).resolve().parent.parent
    engine = sqlalchemy.create_engine("sqlite://")
    try:
        with engine.connect() as connection:
            for sql in schema_at(script_location, revision):
                connection.exec_driver_sql(sql)
            yield connection
    finally:
        engine.dispose()


def revision_frame(frame: FrameType | None) -> FrameType | None:
    """The frame of the revision's upgrade() or downgrade() that `frame` runs within, if any."""
    while frame is not None and not is_revision_frame(frame):
        frame = frame.f_back
    return frame


def is_revision_frame(frame: FrameType) -> bool:
    return frame.f_code.co_name in ("upgrade", "downgrade") and {"revision", "down_revision"} <= frame.f_globals.keys()
