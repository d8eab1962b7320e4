"""The row a rebuilt table cannot take, named by its table and its key.

Alembic's batch copies a table's rows into `_alembic_tmp_<table>` in one INSERT ... SELECT.
When a row breaks a constraint of the new table (a column made NOT NULL, a new UNIQUE or
CHECK), SQLite names the temporary table, which the operator has never heard of, and no
row. The refusal instead names the table and finds the first row at fault, by its primary
key (or rowid), so that it can be corrected.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import sqlalchemy

from ..foundation.errors import UpgradeRefused
from ..foundation.printable import printable, shown_value
from ..foundation.refusals import ALEMBIC_TEMPORARY_TABLE
from ..schema.sqlite_objects import quote

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


def _failed_condition(table: str, message: str) -> str | None:
    """A WHERE clause true for the rows of `table` that break the constraint SQLite names."""
    not_null = re.match(r"NOT NULL constraint failed: [^.]+\.(.+)$", message)
    if not_null:
        return f"{quote(not_null[1])} IS NULL"
    unique = re.match(r"UNIQUE constraint failed: (.+)$", message)
    if unique:
        columns = [column.split(".", 1)[-1] for column in unique[1].split(", ")]
        same = " AND ".join(f"earlier.{quote(column)} = {quote(table)}.{quote(column)}" for column in columns)
        return f"EXISTS (SELECT 1 FROM {quote(table)} AS earlier WHERE earlier.rowid < {quote(table)}.rowid AND {same})"
    check = re.match(r"CHECK constraint failed: (.+)$", message)
    if check:
        return f"NOT ({check[1]})"  # the expression, or a constraint's name (then the query fails: no row named)
    return None


def _first_row_key(connection: Connection, table: str, condition: str) -> str | None:
    """`id = 3` (the primary key, else the rowid) of the first row meeting `condition`; None if none is found."""
    primary_key = connection.exec_driver_sql("SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk", (table,))
    key = [name for (name,) in primary_key] or ["rowid"]
    selected = ", ".join(quote(column) for column in key)
    try:
        # Only reads: a query SQLite refuses (a CHECK known by its name only) leaves the transaction as it was.
        row = connection.exec_driver_sql(f"SELECT {selected} FROM {quote(table)} WHERE {condition} LIMIT 1").first()
    except sqlalchemy.exc.DBAPIError:
        return None
    if row is None:
        return None
    return ", ".join(f"{printable(column)} = {shown_value(value)}" for column, value in zip(key, row, strict=True))


def bad_row_refusal(connection: Connection, table: str, error: sqlalchemy.exc.IntegrityError, revision: str) -> UpgradeRefused:
    """The refusal for a row of `table` that its rebuilt copy refused (`error`), during `revision`."""
    message = str(getattr(error, "orig", error)).replace(ALEMBIC_TEMPORARY_TABLE + table, table)
    condition = _failed_condition(table, message)
    key = _first_row_key(connection, table, condition) if condition else None
    row = f"the row of {printable(table)} with {key}" if key else f"a row of {printable(table)}"
    return UpgradeRefused(
        f"{revision[0].upper()}{revision[1:]} cannot copy {row} into the rebuilt table ({printable(message)}); nothing was changed: "
        "correct that row (or restore a backup if it is damaged), or make the revision handle such rows, "
        "and run the upgrade again."
    )
