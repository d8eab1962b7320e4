"""What SQLite holds that SQLAlchemy's models cannot describe: triggers, views, virtual tables,
and the parts of a table that reflection does not report (AUTOINCREMENT, unnamed CHECKs).

The models declare the first three next to the tables (`declare(Base.metadata, ...)` in
app.models), so that autogenerate, `alembic check`, the upgrade guard and the tests all read
one declaration. A database's own are read back from `sqlite_master`. Definitions are
compared after `normalized_sql`, so that layout, comments, keyword case and the
`IF NOT EXISTS` StarPunk's SQL files carry do not count as differences.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from .sql_names import trigger_table

if TYPE_CHECKING:
    from sqlalchemy import MetaData
    from sqlalchemy.engine import Connection

METADATA_KEY = "sqlite_objects"


@dataclass(frozen=True)
class SQLiteObject:
    """A schema object known by its name and its CREATE statement."""

    name: str
    sql: str
    kind: ClassVar[str]  # as people say it: "trigger", "view", "virtual table"
    keyword: ClassVar[str]  # what follows DROP

    @property
    def drop_sql(self) -> str:
        return f"DROP {self.keyword} {quote(self.name)}"

    def same_definition(self, other: SQLiteObject) -> bool:
        return self.kind == other.kind and normalized_sql(self.sql) == normalized_sql(other.sql)


@dataclass(frozen=True)
class Trigger(SQLiteObject):
    kind: ClassVar[str] = "trigger"
    keyword: ClassVar[str] = "TRIGGER"

    @property
    def table(self) -> str:
        """The table (or view) the trigger is on, whatever its name's quoting."""
        return trigger_table(self.sql)


@dataclass(frozen=True)
class View(SQLiteObject):
    kind: ClassVar[str] = "view"
    keyword: ClassVar[str] = "VIEW"


@dataclass(frozen=True)
class VirtualTable(SQLiteObject):
    kind: ClassVar[str] = "virtual table"
    keyword: ClassVar[str] = "TABLE"

    @classmethod
    def fts5(cls, name: str, columns: tuple[str, ...], tokenize: str) -> VirtualTable:
        """An FTS5 full-text table: its columns (with options such as UNINDEXED) and tokenizer."""
        arguments = ", ".join((*columns, f"tokenize='{tokenize}'"))
        return cls(name, f"CREATE VIRTUAL TABLE {name} USING fts5({arguments})")


def declare(metadata: MetaData, *objects: SQLiteObject) -> None:
    """Record triggers, views and virtual tables as part of `metadata`'s schema."""
    declared = dict(declared_objects(metadata))
    declared.update((item.name, item) for item in objects)
    metadata.info[METADATA_KEY] = declared


def declared_objects(metadata: MetaData | None) -> Mapping[str, SQLiteObject]:
    return {} if metadata is None else metadata.info.get(METADATA_KEY, {})


def read_objects(connection: Connection) -> dict[str, SQLiteObject]:
    """The triggers, views and virtual tables of a database, by name, in creation order."""
    found: dict[str, SQLiteObject] = {}
    for kind, name, sql in connection.exec_driver_sql(
        "SELECT type, name, sql FROM sqlite_master WHERE type IN ('trigger', 'view', 'table') AND sql IS NOT NULL ORDER BY rowid"
    ):
        if kind == "trigger":
            found[name] = Trigger(name, sql)
        elif kind == "view":
            found[name] = View(name, sql)
        elif sql.lstrip().upper().startswith("CREATE VIRTUAL TABLE"):
            found[name] = VirtualTable(name, sql)
    return found


@dataclass(frozen=True)
class TableTraits:
    """What a table keeps only in its CREATE TABLE text: AUTOINCREMENT, CHECKs, and the
    ON DELETE / ON UPDATE actions of its foreign keys (which reflection does report, but
    a rebuild from the wrong source loses)."""

    autoincrement: bool
    checks: frozenset[str]  # normalized CHECK expressions
    foreign_keys: frozenset[tuple[str, str, str, str]]  # (column, parent table, on delete, on update)

    @classmethod
    def of(cls, create_table_sql: str) -> TableTraits:
        """Read from the statement itself, in a scratch database (SQLite parses its own SQL)."""
        return _table_traits(create_table_sql)

    @classmethod
    def _parse(cls, create_table_sql: str) -> TableTraits:
        scratch = sqlite3.connect(":memory:")
        try:
            scratch.execute(create_table_sql)
            table = scratch.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchone()[0]
            keys = scratch.execute(
                'SELECT "from", "table", on_delete, on_update FROM pragma_foreign_key_list(?)', (table,)
            ).fetchall()
        finally:
            scratch.close()
        code = _without_comments(create_table_sql)
        return cls(
            autoincrement=re.search(r"\bAUTOINCREMENT\b", _without_literals(code), re.IGNORECASE) is not None,
            checks=frozenset(normalized_sql(check) for check in check_expressions(code)),
            foreign_keys=frozenset(tuple(key) for key in keys),
        )

    def lost_in(self, other: TableTraits) -> list[str]:
        """What this table has that `other` lacks, each as a short phrase."""
        lost = ["AUTOINCREMENT"] if self.autoincrement and not other.autoincrement else []
        lost += [f"CHECK ({check})" for check in sorted(self.checks - other.checks)]
        for column, parent, on_delete, on_update in sorted(self.foreign_keys - other.foreign_keys):
            actions = [
                f"ON {event} {action}"
                for event, action in (("DELETE", on_delete), ("UPDATE", on_update))
                if action != "NO ACTION"
            ]
            lost.append(f"the foreign key {column} -> {parent}" + (f" ({' '.join(actions)})" if actions else ""))
        return lost


@functools.lru_cache(maxsize=512)  # the guard reads every table after every revision
def _table_traits(create_table_sql: str) -> TableTraits:
    return TableTraits._parse(create_table_sql)


def read_table_traits(connection: Connection) -> dict[str, TableTraits]:
    """The traits of every ordinary table (SQLite's own and virtual tables aside)."""
    return {
        name: TableTraits.of(sql)
        for name, sql in connection.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL "
            "AND name NOT LIKE 'sqlite~_%' ESCAPE '~' AND upper(sql) NOT LIKE 'CREATE VIRTUAL%'"
        )
    }


def check_expressions(create_table_sql: str) -> list[str]:
    """The expression inside each CHECK (...) of a CREATE TABLE statement, named or not."""
    code = _without_comments(create_table_sql)
    masked = _without_literals(code)
    expressions = []
    for match in re.finditer(r"\bCHECK\s*\(", masked, re.IGNORECASE):
        depth, start = 1, match.end()
        for position in range(start, len(masked)):
            depth += {"(": 1, ")": -1}.get(masked[position], 0)
            if depth == 0:
                expressions.append(code[start:position])
                break
    return expressions


def normalized_sql(sql: str) -> str:
    """SQL as SQLite understands it, for comparison: comments, layout, keyword case, a
    trailing semicolon and `IF NOT EXISTS` removed; string literals kept as written."""
    code = _without_comments(sql).strip().rstrip(";")
    parts = re.split(r"('(?:[^']|'')*')", code)
    for index in range(0, len(parts), 2):  # outside the string literals
        text = re.sub(r"\s+", " ", parts[index].lower())
        text = re.sub(r"\s*([(),;=<>+*/-])\s*", r"\1", text)
        text = re.sub(r"\bif not exists ", "", text)
        parts[index] = text.replace('"', "")
    return "".join(parts).strip()


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _without_comments(sql: str) -> str:
    parts = re.split(r"('(?:[^']|'')*')", sql)
    for index in range(0, len(parts), 2):
        parts[index] = re.sub(r"--[^\n]*|/\*.*?\*/", " ", parts[index], flags=re.DOTALL)
    return "".join(parts)


def _without_literals(sql: str) -> str:
    """`sql` with every string literal blanked out, same length (positions stay valid)."""
    return re.sub(r"'(?:[^']|'')*'", lambda match: "'" + " " * (len(match.group()) - 2) + "'", sql)
