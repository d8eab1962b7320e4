"""Explaining how a file differs from the revision it is at, from what the chain itself did.

StarPunk's own start-ups left files that no release defined: a newer `SCHEMA_SQL` created a
later revision's tables early (`IF NOT EXISTS`), a runner recorded migrations it never ran,
an operator followed a hotfix, a start crashed half-way. For a candidate revision, each
difference between the file's names and that revision's is explained by the revision chain,
or not at all:

- **adopt**: a StarPunk object a later revision creates, present already in the shape that
  revision gives it. Its rows are kept: the table is set aside before stamping and its rows go
  back into the table that revision creates; an index or trigger is dropped, since the
  revision creates it again.
- **remove**: a StarPunk object a revision at or below the candidate removed on purpose, still
  there because StarPunk recorded that migration without running it (its schema_migrations row
  must be there to say so). It is removed as the revision removes it (the backup keeps it). Rows are only ever removed from the tables StarPunk
  itself throws away (credentials and short-lived state, `DISPOSABLE_TABLES`).
- **create**: an object of the candidate revision that is missing and holds no data of its own
  (an index, a trigger, the full-text index): created from the revision's own definition.
- **keep**: a column on a table that a later revision replaces, which that revision's table has
  too (the rc.1 hotfix's `tokens.token_hash`): left in place, the replacement takes it away.

Anything else (a missing column, a table in a shape no release had, a primary key no release
had) leaves the candidate unexplained. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..evolution.chain import RevisionReference
from ..schema.releases import DISPOSABLE_TABLES, release_name
from ..schema.shape import SchemaShape, migration_prefix
from ..schema.sqlite_objects import quote

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

# Where an adopted table waits, during the upgrade, for the revision that creates it.
SET_ASIDE_PREFIX = "_starpunk_adopting_"


@dataclass(frozen=True)
class Repair:
    """One difference between a file and its revision, explained, and what is done about it."""

    action: str  # "adopt", "remove", "create" or "keep"
    kind: str  # "table", "column", "index" or "trigger"
    name: str  # "tokens", "auth_state.code_verifier", "idx_tokens_hash", ...
    revision: str | None  # the revision that creates it (adopt, keep) or removed it (remove, create: the candidate)
    rows: int = 0  # rows the table holds, or values the column holds
    statements: tuple[str, ...] = ()  # run before stamping
    take_back: tuple[str, ...] = ()  # run once `revision` has run (an adopted table's rows)

    def phrase(self) -> str:
        held = f"{self.rows} row(s)" if self.kind == "table" else f"{self.rows} value(s)"
        if self.action == "adopt":
            rows = f", with its {held}," if self.kind == "table" else ""
            return f"adopt the {self.kind} {self.name}{rows} for revision {self.revision}, which creates it"
        if self.action == "remove":
            holding = f"it held {held}, kept in the backup" if self.rows else "it held no data"
            return f"remove the {self.kind} {self.name}, which revision {self.revision} removed ({holding})"
        if self.action == "create":
            return f"create the missing {self.kind} {self.name} of revision {self.revision} (it holds no data of its own)"
        return f"keep the {self.kind} {self.name} until revision {self.revision} replaces its table"

    def as_dict(self) -> dict[str, object]:
        return {"action": self.action, "kind": self.kind, "name": self.name, "revision": self.revision, "rows": self.rows}


@dataclass(frozen=True)
class Explanation:
    """A candidate revision that explains every difference of the file."""

    reference: RevisionReference
    repairs: tuple[Repair, ...]
    rows_apart: int  # how many of StarPunk's schema_migrations rows differ from the revision's

    @property
    def revision(self) -> str | None:
        return self.reference.revision

    @property
    def rank(self) -> tuple[int, int]:
        """Better first: StarPunk's own rows closer to it, then fewer repairs."""
        return (self.rows_apart, len(self.repairs))

    def describe(self) -> str:
        """The state in plain words: "v1.3 with tokens and authorization_codes left behind"."""
        groups = {
            "remove": "left behind",
            "adopt": "created early",
            "keep": "added",
        }
        parts = []
        for action, words in groups.items():
            names = [repair.name for repair in self.repairs if repair.action == action and repair.kind != "index"]
            if names:
                parts.append(f"{_and(names)} {words}")
        missing = [repair.name for repair in self.repairs if repair.action == "create"]
        if missing:
            parts.append(f"{_and(missing)} missing")
        return release_name(self.revision) + (" with " + "; ".join(parts) if parts else "")


class ChainFacts:
    """What the revision chain did to each StarPunk name, revision by revision."""

    def __init__(self, references: Sequence[RevisionReference]) -> None:
        self.references = references
        self.shapes = [reference.shape.without_bookkeeping() for reference in references]
        self.names = [_names(shape) for shape in self.shapes]

    def created_after(self, name: tuple[str, str], index: int) -> int | None:
        """The first revision after `index` that creates `name`."""
        for later in range(index + 1, len(self.names)):
            if name in self.names[later] and name not in self.names[later - 1]:
                return later
        return None

    def removed_up_to(self, name: tuple[str, str], index: int) -> int | None:
        """The last revision at or before `index` that removed `name`."""
        for earlier in range(index, 0, -1):
            if name in self.names[earlier - 1] and name not in self.names[earlier]:
                return earlier
        return None

    def own_migration(self, index: int) -> str | None:
        """The prefix of the StarPunk migration file the revision at `index` is, if any."""
        before = {migration_prefix(row) for row in self.references[index - 1].migration_rows} if index else set()
        added = {migration_prefix(row) for row in self.references[index].migration_rows} - before
        return next(iter(added), None)

    def reads_as_the_one_before(self, index: int) -> bool:
        """Whether a file at the revision at `index` looks exactly like one at the revision
        before it, to detection: the revision changes no name, no primary key and is no StarPunk
        migration of its own (a type, a nullability or a data-only change)."""
        return (
            self.names[index] == self.names[index - 1]
            and self.shapes[index].primary_keys == self.shapes[index - 1].primary_keys
            and self.own_migration(index) is None
        )

    def replaced_after(self, table: str, index: int) -> int | None:
        """The revision after `index` that next changes `table`, if it replaces it by a table of
        other columns (some gone, some new) rather than adding or dropping columns."""
        for later in range(index + 1, len(self.shapes)):
            before, after = self.shapes[later - 1].tables.get(table), self.shapes[later].tables.get(table)
            if before is None or after is None or before == after:
                continue
            return later if before - after and after - before else None
        return None

    def columns_ever(self, table: str) -> frozenset[str]:
        return frozenset().union(*(shape.tables.get(table, frozenset()) for shape in self.shapes))


def _names(shape: SchemaShape) -> set[tuple[str, str]]:
    names = {("table", table) for table in shape.tables}
    names |= {("column", f"{table}.{column}") for table, columns in shape.tables.items() for column in columns}
    names |= {("index", index) for index in shape.indexes}
    return names | {("trigger", trigger) for trigger in shape.triggers}


class Unexplained(Exception):
    """A difference the chain does not explain; its message is a short phrase."""


def explain(
    connection: Connection,
    facts: ChainFacts,
    index: int,
    actual: SchemaShape,
    starpunk: SchemaShape,
    recorded: Sequence[str] | None,
) -> Explanation:
    """Explain every difference between the file (`actual`) and the revision at `index`, or
    raise `Unexplained` with the first difference that cannot be. `recorded`: StarPunk's
    schema_migrations rows, None when the file has no such table."""
    expected = facts.shapes[index]
    revision = facts.references[index].revision
    repairs: list[Repair] = []
    adopted: dict[str, int] = {}  # table -> the revision creating it
    removed: set[str] = set()
    recorded_prefixes = {migration_prefix(row) for row in recorded or ()}

    def recorded_removal(remover: int | None) -> int | None:
        """A removal explains an object only if StarPunk recorded the removing migration."""
        return remover if remover is not None and facts.own_migration(remover) in recorded_prefixes else None

    for table in sorted(set(actual.tables) - set(expected.tables)):
        if table not in starpunk.tables:
            continue  # the user's own
        creator = facts.created_after(("table", table), index)
        remover = recorded_removal(facts.removed_up_to(("table", table), index))
        rows = _count(connection, f"SELECT count(*) FROM {quote(table)}")
        if creator is not None and actual.tables[table] == facts.shapes[creator].tables[table]:
            adopted[table] = creator
            repairs.append(_adoption(table, facts, creator, actual, rows))
        elif remover is not None and actual.tables[table] <= facts.columns_ever(table):
            _refuse_losing_rows(table, rows, f"the table {table}")
            removed.add(table)
            repairs.append(
                Repair("remove", "table", table, facts.references[remover].revision, rows, (f"DROP TABLE {quote(table)}",))
            )
        else:
            raise Unexplained(f"table {table} should not be there (no revision gives it these columns)")

    for table in sorted(set(expected.tables) - set(actual.tables)):
        if table in facts.references[index].shape.definitions and _holds_no_data(expected, table):
            repairs.append(Repair("create", "table", table, revision, 0, (facts.references[index].shape.definitions[table],)))
        else:
            raise Unexplained(f"table {table} is missing")

    for table in sorted(set(expected.tables) & set(actual.tables)):
        key, expected_key = actual.primary_keys.get(table, ()), expected.primary_keys.get(table, ())
        if key != expected_key:
            shown = ", ".join(key) or "none"
            raise Unexplained(f"table {table}'s primary key is ({shown}), where every release has ({', '.join(expected_key)})")
        for column in sorted(expected.tables[table] - actual.tables[table]):
            raise Unexplained(f"column {table}.{column} is missing")
        for column in sorted(actual.tables[table] - expected.tables[table]):
            repairs.append(_extra_column(connection, facts, index, table, column, recorded_removal))

    for kind, present, wanted in (("index", actual.indexes, expected.indexes), ("trigger", actual.triggers, expected.triggers)):
        for name in sorted(set(present) - set(wanted)):
            if name not in (starpunk.indexes if kind == "index" else starpunk.triggers):
                continue  # the user's own
            if present[name] in removed:
                continue  # goes with its table
            repairs.append(_extra_object(facts, index, kind, name, present[name], adopted, recorded_removal))
        for name in sorted(set(wanted) - set(present)):
            definition = facts.references[index].shape.definitions.get(name)
            if definition is None:
                raise Unexplained(f"{kind} {name} is missing")
            repairs.append(Repair("create", kind, name, revision, 0, (definition,)))

    # A file older than StarPunk's runner has no rows to confirm or contradict any revision.
    expected_rows = {migration_prefix(row) for row in facts.references[index].migration_rows}
    rows_apart = len(expected_rows ^ recorded_prefixes) if recorded is not None else 0
    return Explanation(facts.references[index], tuple(_in_order(repairs)), rows_apart)


def _adoption(table: str, facts: ChainFacts, creator: int, actual: SchemaShape, rows: int) -> Repair:
    """Set the table aside (its own indexes dropped: the creating revision makes them again);
    once that revision has run, its rows go into the new table and the old one goes."""
    aside = quote(SET_ASIDE_PREFIX + table)
    indexes = [name for name, owner in actual.indexes.items() if owner == table and name in facts.shapes[creator].indexes]
    # With legacy renaming, tables that name this one keep naming it, not the set-aside copy.
    statements = [f"DROP INDEX {quote(name)}" for name in sorted(indexes)]
    statements += [
        "PRAGMA legacy_alter_table = ON",
        f"ALTER TABLE {quote(table)} RENAME TO {aside}",
        "PRAGMA legacy_alter_table = OFF",
    ]
    columns = ", ".join(quote(column) for column in sorted(actual.tables[table]))
    take_back = (f"INSERT INTO {quote(table)} ({columns}) SELECT {columns} FROM {aside}", f"DROP TABLE {aside}")
    return Repair("adopt", "table", table, facts.references[creator].revision, rows, tuple(statements), take_back)


def _extra_column(
    connection: Connection, facts: ChainFacts, index: int, table: str, column: str, recorded: Callable[[int | None], int | None]
) -> Repair:
    name = f"{table}.{column}"
    remover = recorded(facts.removed_up_to(("column", name), index))
    if remover is not None:
        values = _count(connection, f"SELECT count({quote(column)}) FROM {quote(table)}")
        _refuse_losing_rows(table, values, f"the column {name}")
        drop = f"ALTER TABLE {quote(table)} DROP COLUMN {quote(column)}"
        return Repair("remove", "column", name, facts.references[remover].revision, values, (drop,))
    replacer = facts.replaced_after(table, index)
    if replacer is not None and column in facts.shapes[replacer].tables[table]:
        return Repair("keep", "column", name, facts.references[replacer].revision)
    raise Unexplained(f"column {name} should not be there")


def _extra_object(
    facts: ChainFacts,
    index: int,
    kind: str,
    name: str,
    table: str,
    adopted: Mapping[str, int],
    recorded: Callable[[int | None], int | None],
) -> Repair:
    creator = facts.created_after((kind, name), index)
    if creator is not None:
        shape = facts.shapes[creator]
        if (shape.indexes if kind == "index" else shape.triggers).get(name) == table:
            # An adopted table's own indexes are dropped as it is set aside.
            statements = () if table in adopted else (f"DROP {kind.upper()} {quote(name)}",)
            return Repair("adopt", kind, name, facts.references[creator].revision, 0, statements)
    remover = recorded(facts.removed_up_to((kind, name), index))
    if remover is not None:
        return Repair("remove", kind, name, facts.references[remover].revision, 0, (f"DROP {kind.upper()} {quote(name)}",))
    raise Unexplained(f"{kind} {name} should not be there")


def _holds_no_data(shape: SchemaShape, table: str) -> bool:
    """Only a virtual table (StarPunk's search index, which it fills itself) can be missing and
    created empty: a missing table of rows may have held some."""
    return shape.definitions.get(table, "").upper().startswith("CREATE VIRTUAL")


def _refuse_losing_rows(table: str, rows: int, what: str) -> None:
    if rows and table not in DISPOSABLE_TABLES:
        raise Unexplained(f"{what} holds {rows} row(s) of data that no revision removes from a file at this point")


def _count(connection: Connection, sql: str) -> int:
    return int(connection.exec_driver_sql(sql).scalar() or 0)


_ORDER = {("remove", "index"): 0, ("remove", "trigger"): 0, ("adopt", "index"): 0, ("adopt", "trigger"): 0}


def _in_order(repairs: list[Repair]) -> list[Repair]:
    """Drops of indexes and triggers first, then tables and columns, then what is created
    (tables before the indexes and triggers on them)."""

    def rank(repair: Repair) -> int:
        if repair.action == "create":
            return 2 if repair.kind == "table" else 3
        return _ORDER.get((repair.action, repair.kind), 1)

    return sorted(repairs, key=rank)


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
