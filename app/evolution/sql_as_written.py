"""Running SQL exactly as written, from inside a revision.

`op.execute("...")` hands a string to SQLAlchemy's `text()`, which reads `:word` as a bind
parameter, even inside a string literal: a user's trigger holding `':time'` would fail
("A value is required for bind parameter 'time'") or, worse, be changed. The definitions a
rebuild puts back (triggers, views, indexes, as SQLite stored them) and the objects the
models declare are therefore sent to the driver untouched, and printed untouched in `--sql`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.operations import Operations


def execute_as_written(operations: Operations, sql: str) -> None:
    """Run `sql` as it stands (online), or print it as it stands (`--sql`), as `op.execute` would."""
    if operations.migration_context.as_sql:
        impl = operations.migration_context.impl
        impl.static_output(sql.replace("\t", "    ").strip() + impl.command_terminator)
    else:
        operations.get_bind().exec_driver_sql(sql)


def sql_literal(text: str) -> str:
    """`text` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"
