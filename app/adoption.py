"""Adopting StarPunk databases that Alembic has never seen: detect, repair, stamp.

A StarPunk file without `alembic_version` may come from any release, or from a release
that crashed half-way. Its revision is found by comparing its schema, by names only
(tables, columns, indexes, triggers), with the schema each revision produces. Those
expected schemas are not written down anywhere: they are derived by running the revision
files themselves into an in-memory SQLite database, so a new revision needs no new
detection code. StarPunk's `schema_migrations` rows are reported, never trusted: in the
hybrid states they disagree with the schema.

Two states no release defined were nonetheless common in the wild; they are the
`KNOWN_HYBRIDS`, the only named cases. Anything else that matches no revision is refused,
before anything is written, with what the nearest revision expected.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from app.db import SCRIPT_LOCATION, UpgradeRefused

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.engine import Connection

# Tables that record history rather than hold StarPunk data; they never decide a state.
BOOKKEEPING_TABLES = frozenset({"schema_migrations", "alembic_version"})

# What people call the StarPunk releases whose schema each revision is.
RELEASE_NAMES: Mapping[str | None, str] = {
    None: "empty",
    "v0_1_0": "v0.1",
    "v0_4_0": "v0.4",
    "001": "v0.8 / legacy v0.9.x",
    "002": "v1.0.0-rc.1 .. rc.3",
    "004": "v1.0",
    "005": "v1.1",
    "007": "v1.2",
    "008": "v1.3",
    "009": "v1.4 / v1.5",
}


def release_name(revision: str | None) -> str:
    return RELEASE_NAMES.get(revision, f"revision {revision}")


class AnotherApplication(UpgradeRefused):
    """The database holds tables, none of them StarPunk's: whatever is asked, it is not ours to touch."""


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

    @classmethod
    def read(cls, connection: Connection) -> SchemaShape:
        objects = connection.exec_driver_sql(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite~_%' ESCAPE '~'"
        ).all()
        virtual = [name for kind, name, _, sql in objects if kind == "table" and (sql or "").upper().startswith("CREATE VIRTUAL")]

        def belongs_to_sqlite(name: str) -> bool:
            return name == "alembic_version" or any(name.startswith(table + "_") for table in virtual)

        tables: dict[str, set[str]] = {}
        for table, column in connection.exec_driver_sql(
            "SELECT m.name, p.name FROM sqlite_master AS m, pragma_table_info(m.name) AS p WHERE m.type = 'table'"
        ):
            if not belongs_to_sqlite(table) and not table.startswith("sqlite_"):
                tables.setdefault(table, set()).add(column)
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
            # (A trigger named like a shadow table, notes_fts_delete, is StarPunk's own.)
            definitions={name: sql for kind, name, _, sql in objects if sql and not (kind != "trigger" and belongs_to_sqlite(name))},
        )

    def without_bookkeeping(self) -> SchemaShape:
        return SchemaShape(
            tables={name: columns for name, columns in self.tables.items() if name not in BOOKKEEPING_TABLES},
            indexes={name: table for name, table in self.indexes.items() if table not in BOOKKEEPING_TABLES},
            triggers=self.triggers,
            foreign_keys={name: keys for name, keys in self.foreign_keys.items() if name not in BOOKKEEPING_TABLES},
            definitions=self.definitions,
        )


@dataclass(frozen=True)
class RevisionReference:
    """What a database at `revision` holds when it got there through this project's chain."""

    revision: str | None
    shape: SchemaShape
    migration_rows: tuple[str, ...]  # schema_migrations.migration_name, in order


@functools.cache
def revision_references(script_location: Path = SCRIPT_LOCATION) -> tuple[RevisionReference, ...]:
    """The expected schema after every revision, base first, from running the chain in memory.

    Each revision's `upgrade()` runs through Alembic's `Operations` on an in-memory
    database; nothing but the revision files is consulted.
    """
    import sqlalchemy
    from alembic import op
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    import app.operations  # noqa: F401  (StarPunk's operations, which revisions may use, on `op`)

    script = ScriptDirectory(str(script_location))
    engine = sqlalchemy.create_engine("sqlite://")
    # `op` is one global proxy: when this runs inside a migration (a rebuild printing --sql
    # asks for the schema), leaving our context would unset the running migration's `op`.
    outer = getattr(op, "_proxy", None)
    try:
        with engine.connect() as connection:
            references = [RevisionReference(None, SchemaShape.read(connection), ())]
            with Operations.context(MigrationContext.configure(connection, opts={"transactional_ddl": True})):
                for revision in reversed(list(script.walk_revisions())):
                    revision.module.upgrade()
                    references.append(
                        RevisionReference(revision.revision, SchemaShape.read(connection), recorded_migrations(connection))
                    )
    finally:
        engine.dispose()
        if outer is not None:
            outer._install_proxy()
    return tuple(references)


def recorded_migrations(connection: Connection) -> tuple[str, ...]:
    """StarPunk's schema_migrations rows, oldest first; empty when the table does not exist."""
    exists = connection.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).first()
    if not exists:
        return ()
    return tuple(row[0] for row in connection.exec_driver_sql("SELECT migration_name FROM schema_migrations ORDER BY id"))


def _prefix(migration_name: str) -> str:
    # 003's and 004's file names after the number are not known: rows match by "NNN_".
    return migration_name[:4]


@dataclass(frozen=True)
class SchemaDifference:
    """How a database's names differ from what one revision expects.

    `unknown_tables` and `unknown_indexes` are names StarPunk never used (a user's own
    additions): they are tolerated and left alone. Everything else counts against a match.
    """

    missing_tables: frozenset[str] = frozenset()
    unexpected_tables: frozenset[str] = frozenset()
    missing_columns: Mapping[str, frozenset[str]] = field(default_factory=dict)
    unexpected_columns: Mapping[str, frozenset[str]] = field(default_factory=dict)
    missing_indexes: frozenset[str] = frozenset()
    unexpected_indexes: frozenset[str] = frozenset()
    missing_triggers: frozenset[str] = frozenset()
    unexpected_triggers: frozenset[str] = frozenset()
    unknown_tables: frozenset[str] = frozenset()
    unknown_indexes: frozenset[str] = frozenset()

    @classmethod
    def between(cls, expected: SchemaShape, actual: SchemaShape, starpunk: SchemaShape) -> SchemaDifference:
        """`starpunk` holds every name any revision ever used, to tell a user's own names apart."""
        shared = expected.tables.keys() & actual.tables.keys()
        actual_indexes = set(actual.indexes.items())
        expected_indexes = set(expected.indexes.items())
        return cls(
            missing_tables=frozenset(expected.tables.keys() - actual.tables.keys()),
            unexpected_tables=frozenset((actual.tables.keys() - expected.tables.keys()) & starpunk.tables.keys()),
            missing_columns={t: expected.tables[t] - actual.tables[t] for t in shared if expected.tables[t] - actual.tables[t]},
            unexpected_columns={t: actual.tables[t] - expected.tables[t] for t in shared if actual.tables[t] - expected.tables[t]},
            missing_indexes=frozenset(name for name, table in expected_indexes - actual_indexes if table in actual.tables),
            unexpected_indexes=frozenset(name for name, _ in actual_indexes - expected_indexes if name in starpunk.indexes),
            missing_triggers=frozenset(expected.triggers.keys() - actual.triggers.keys()),
            unexpected_triggers=frozenset((actual.triggers.keys() - expected.triggers.keys()) & starpunk.triggers.keys()),
            unknown_tables=frozenset(actual.tables.keys() - starpunk.tables.keys()),
            unknown_indexes=frozenset(name for name in actual.indexes if name not in starpunk.indexes),
        )

    def findings(self) -> list[str]:
        """Each significant difference as a short phrase, most telling first."""
        phrases = [f"table {name} is missing" for name in sorted(self.missing_tables)]
        phrases += [f"table {name} should not be there" for name in sorted(self.unexpected_tables)]
        for table, columns in sorted(self.missing_columns.items()):
            phrases += [f"column {table}.{column} is missing" for column in sorted(columns)]
        for table, columns in sorted(self.unexpected_columns.items()):
            phrases += [f"column {table}.{column} should not be there" for column in sorted(columns)]
        phrases += [f"index {name} is missing" for name in sorted(self.missing_indexes)]
        phrases += [f"index {name} should not be there" for name in sorted(self.unexpected_indexes)]
        phrases += [f"trigger {name} is missing" for name in sorted(self.missing_triggers)]
        phrases += [f"trigger {name} should not be there" for name in sorted(self.unexpected_triggers)]
        return phrases


@dataclass(frozen=True)
class KnownHybrid:
    """A schema no release defined, but that StarPunk's failures left on real sites.

    It lands on `revision` when its difference from that revision is exactly
    `extra_columns` (left in place: the next revision drops them) and/or some of
    `missing_indexes` (created, with the revision's own definitions, before stamping).
    """

    name: str
    revision: str
    extra_columns: Mapping[str, frozenset[str]] = field(default_factory=dict)
    missing_indexes: frozenset[str] = frozenset()

    def matches(self, difference: SchemaDifference) -> bool:
        tolerated = SchemaDifference(
            unexpected_columns=self.extra_columns,
            missing_indexes=difference.missing_indexes,
            unknown_tables=difference.unknown_tables,
            unknown_indexes=difference.unknown_indexes,
        )
        return (
            difference == tolerated
            and difference.missing_indexes <= self.missing_indexes
            and bool(difference.missing_indexes or self.extra_columns)
        )


KNOWN_HYBRIDS = (
    # The rc.1 hotfix told operators to run `ALTER TABLE tokens ADD COLUMN token_hash TEXT`
    # on the old tokens table; 002 drops that table anyway.
    KnownHybrid("legacy + rc.1 hotfix", "001", extra_columns={"tokens": frozenset({"token_hash"})}),
    # rc.1/rc.2 started on that file: 002 rebuilt tokens, then failed on
    # "table authorization_codes already exists" before creating the token indexes.
    KnownHybrid("rc.2 hybrid", "002", missing_indexes=frozenset({"idx_tokens_hash", "idx_tokens_me", "idx_tokens_expires"})),
)


@dataclass(frozen=True)
class DatabaseState:
    """What a database is, as far as migrations are concerned.

    `managed`: it has `alembic_version`, whose revision is trusted. Otherwise `revision`
    is what detection found, to be stamped after `repairs` run and `missing_migration_rows`
    are added to schema_migrations; None for an empty database.
    """

    name: str
    revision: str | None
    managed: bool
    repairs: tuple[str, ...] = ()
    missing_migration_rows: tuple[str, ...] = ()
    recorded_migrations: tuple[str, ...] = ()
    unknown_tables: tuple[str, ...] = ()

    @property
    def needs_stamp(self) -> bool:
        return not self.managed and self.revision is not None

    @property
    def label(self) -> str:
        """The state as a file-name-friendly word, for backup names."""
        source = self.revision if self.managed else self.name
        return re.sub(r"[^A-Za-z0-9.]+", "-", source or "base").strip("-")


def all_starpunk_names(references: tuple[RevisionReference, ...]) -> SchemaShape:
    """Every name any revision ever used: what tells StarPunk's objects from a user's own."""
    tables: dict[str, frozenset[str]] = {}
    indexes: dict[str, str] = {}
    triggers: dict[str, str] = {}
    for reference in references:
        shape = reference.shape.without_bookkeeping()
        for name, columns in shape.tables.items():
            tables[name] = tables.get(name, frozenset()) | columns
        indexes.update(shape.indexes)
        triggers.update(shape.triggers)
    return SchemaShape(tables, indexes, triggers, {}, {})


def version_rows(connection: Connection) -> list[str] | None:
    """The rows of alembic_version; None when the table does not exist."""
    exists = connection.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
    ).first()
    if not exists:
        return None
    return [row[0] for row in connection.exec_driver_sql("SELECT version_num FROM alembic_version")]


def inspect_database(connection: Connection, script_location: Path = SCRIPT_LOCATION) -> DatabaseState:
    """The state of the database behind `connection`. Only reads.

    Raises `UpgradeRefused` for an Alembic revision this code does not know, another
    application's database, or a schema that matches no revision.
    """
    references = revision_references(script_location)
    versions = version_rows(connection)
    if versions is None:
        return detect_state(connection, script_location)
    known = {reference.revision for reference in references}
    unknown = [version for version in versions if version not in known]
    if unknown:
        raise UpgradeRefused(
            f"The database is at Alembic revision {unknown[0]!r}, which this version of StarPunk does "
            "not know (it was probably upgraded by a newer release); run that release, or restore "
            "a backup taken before it."
        )
    revision = versions[0] if versions else None
    return DatabaseState(
        name=release_name(revision), revision=revision, managed=True, recorded_migrations=recorded_migrations(connection)
    )


def detect_state(connection: Connection, script_location: Path = SCRIPT_LOCATION) -> DatabaseState:
    """Which revision a database without `alembic_version` is at. Only reads."""
    references = revision_references(script_location)
    actual = SchemaShape.read(connection)
    recorded = recorded_migrations(connection)
    if not actual.tables:
        return DatabaseState(name=release_name(None), revision=None, managed=False)
    starpunk = all_starpunk_names(references)
    content = actual.without_bookkeeping()
    if not content.tables.keys() & starpunk.tables.keys():
        raise AnotherApplication(
            "The database holds no StarPunk table (it has "
            + ", ".join(sorted(content.tables)[:5])
            + "); it belongs to another application: check DATABASE_URL or DATABASE_PATH."
        )

    differences = [
        (reference, SchemaDifference.between(reference.shape.without_bookkeeping(), content, starpunk))
        for reference in references
    ]

    def state(name: str, reference: RevisionReference, difference: SchemaDifference, repairs: tuple[str, ...] = ()) -> DatabaseState:
        present = {_prefix(row) for row in recorded}
        return DatabaseState(
            name=name,
            revision=reference.revision,
            managed=False,
            repairs=repairs,
            missing_migration_rows=tuple(row for row in reference.migration_rows if _prefix(row) not in present),
            recorded_migrations=recorded,
            unknown_tables=tuple(sorted(difference.unknown_tables)),
        )

    # The earliest exact match: a file StarPunk made never ran any of our revisions, so if
    # two revisions look alike (a data-only revision), the later one must still run.
    for reference, difference in differences:
        if not difference.findings():
            return state(release_name(reference.revision), reference, difference)
    for hybrid in KNOWN_HYBRIDS:
        for reference, difference in differences:
            if reference.revision == hybrid.revision and hybrid.matches(difference):
                repairs = tuple(reference.shape.definitions[name] for name in sorted(difference.missing_indexes))
                return state(hybrid.name, reference, difference, repairs)

    nearest, difference = min(differences[1:], key=lambda pair: len(pair[1].findings()))
    findings = difference.findings()
    shown = "; ".join(findings[:6]) + (f"; and {len(findings) - 6} more" if len(findings) > 6 else "")
    raise UpgradeRefused(
        "The database's schema matches no StarPunk release: the nearest is revision "
        f"{nearest.revision} ({release_name(nearest.revision)}), but {shown}. Nothing was changed; "
        "restore a backup, or make the schema match that revision and run the upgrade again."
    )


def adoption_statements(state: DatabaseState, script_location: Path = SCRIPT_LOCATION) -> list[str]:
    """The SQL that brings an unmanaged file in step before stamping: the repairs of a
    known hybrid, then schema_migrations (created if the file predates v0.9.0) filled with
    a row for every StarPunk migration at or below the revision."""
    statements = list(state.repairs)
    if state.missing_migration_rows:
        definition = _reference(state.revision, script_location).shape.definitions["schema_migrations"]
        statements.append(definition.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1))
        statements += [
            "INSERT INTO schema_migrations (migration_name) VALUES ('{}')".format(name.replace("'", "''"))
            for name in state.missing_migration_rows
        ]
    return statements


def adopt(connection: Connection, state: DatabaseState, migration_context: MigrationContext) -> None:
    """Repair a known hybrid, bring schema_migrations in step, and stamp `state.revision`.

    Runs inside the caller's transaction: with the upgrade that follows, all or nothing.
    """
    for statement in adoption_statements(state, Path(migration_context.script.dir)):
        connection.exec_driver_sql(statement)
    migration_context.stamp(migration_context.script, state.revision)


def _reference(revision: str | None, script_location: Path = SCRIPT_LOCATION) -> RevisionReference:
    return next(reference for reference in revision_references(script_location) if reference.revision == revision)


def adoption_sql(state: DatabaseState) -> list[str]:
    """What `adopt` would execute, stamp included, as SQL for a person to read (`--sql`)."""
    statements = adoption_statements(state)
    if state.needs_stamp:
        statements.append(
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
            "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
        )
        statements.append(f"INSERT INTO alembic_version (version_num) VALUES ('{state.revision}')")
    return statements
