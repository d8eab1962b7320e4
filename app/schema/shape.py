"""The names in a SQLite schema, and StarPunk's bookkeeping rows: what detection compares.

Column order, types, defaults and DDL text are deliberately absent: the history StarPunk's
files come from is known by names only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .shadow_tables import shadow_table_keys
from .sql_names import name_key

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

# Tables that record history rather than hold StarPunk data; they never decide a state.
BOOKKEEPING_TABLES = frozenset({"schema_migrations", "alembic_version"})


@dataclass(frozen=True)
class SchemaShape:
    """The names in a SQLite schema: what detection and the tests compare.

    Leaves out what SQLite owns (`sqlite_*`, the shadow tables of virtual tables) and
    `alembic_version`. Column order, types, defaults and DDL text are deliberately absent.
    """

    tables: Mapping[str, frozenset[str]]
    indexes: Mapping[str, str]  # index name -> its table
    triggers: Mapping[str, str]  # trigger name -> its table
    foreign_keys: Mapping[str, frozenset[tuple[str, str, str, str]]]  # (column, table, column, on delete)
    definitions: Mapping[str, str]  # CREATE statement of each table, index and trigger
    primary_keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # table -> its key's columns

    @classmethod
    def read(cls, connection: Connection) -> SchemaShape:
        objects = connection.exec_driver_sql(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite~_%' ESCAPE '~'"
        ).all()
        shadows = shadow_table_keys((name, sql) for kind, name, _, sql in objects if kind == "table" and sql)

        def belongs_to_sqlite(name: str) -> bool:
            return name == "alembic_version" or name_key(name) in shadows

        tables: dict[str, set[str]] = {}
        keys: dict[str, list[tuple[int, str]]] = {}
        for table, column, key_position in connection.exec_driver_sql(
            "SELECT m.name, p.name, p.pk FROM sqlite_master AS m, pragma_table_info(m.name) AS p WHERE m.type = 'table'"
        ):
            if not belongs_to_sqlite(table) and not table.startswith("sqlite_"):
                tables.setdefault(table, set()).add(column)
                if key_position:
                    keys.setdefault(table, []).append((key_position, column))
        foreign_keys: dict[str, set[tuple[str, str, str, str]]] = {}
        for table, column, parent, parent_column, on_delete in connection.exec_driver_sql(
            'SELECT m.name, f."from", f."table", f."to", f.on_delete '
            "FROM sqlite_master AS m, pragma_foreign_key_list(m.name) AS f WHERE m.type = 'table'"
        ):
            foreign_keys.setdefault(table, set()).add((column, parent, parent_column or "", on_delete))
        return cls(
            tables={name: frozenset(columns) for name, columns in tables.items()},
            indexes={name: table for kind, name, table, sql in objects if kind == "index" and sql and table in tables},
            triggers={name: table for kind, name, table, _ in objects if kind == "trigger"},
            foreign_keys={name: frozenset(keys) for name, keys in foreign_keys.items()},
            primary_keys={name: tuple(column for _, column in sorted(columns)) for name, columns in keys.items()},
            # (A trigger named like a shadow table, notes_fts_delete, is StarPunk's own.)
            definitions={
                name: sql for kind, name, _, sql in objects if sql and not (kind != "trigger" and belongs_to_sqlite(name))
            },
        )

    def without_bookkeeping(self) -> SchemaShape:
        return SchemaShape(
            tables={name: columns for name, columns in self.tables.items() if name not in BOOKKEEPING_TABLES},
            indexes={name: table for name, table in self.indexes.items() if table not in BOOKKEEPING_TABLES},
            triggers=self.triggers,
            foreign_keys={name: keys for name, keys in self.foreign_keys.items() if name not in BOOKKEEPING_TABLES},
            definitions=self.definitions,
            primary_keys={name: key for name, key in self.primary_keys.items() if name not in BOOKKEEPING_TABLES},
        )


def recorded_migrations(connection: Connection) -> tuple[str, ...]:
    """StarPunk's schema_migrations rows, oldest first; empty when the table does not exist.

    A row without a name (NULL, or a number or blob: StarPunk's runner always wrote the file
    name as text) records no migration, so it is left out."""
    exists = connection.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").first()
    if not exists:
        return ()
    rows = connection.exec_driver_sql("SELECT migration_name FROM schema_migrations ORDER BY id")
    return tuple(name for (name,) in rows if isinstance(name, str))


def migration_prefix(migration_name: str) -> str:
    # 003's and 004's file names after the number are not known: rows match by "NNN_".
    return migration_name[:4]


def version_rows(connection: Connection) -> list[str] | None:
    """The revisions alembic_version names; None when the table does not exist. A row that names
    none (NULL, a number or a blob, which Alembic never writes) is left out, as if not there."""
    exists = connection.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'").first()
    if not exists:
        return None
    rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
    return [version for (version,) in rows if isinstance(version, str)]
