"""Detecting what a StarPunk file Alembic has never seen is, from its schema.

A StarPunk file without `alembic_version` may come from any release, or from a release
that crashed half-way. Its revision is found by comparing its schema, by names only
(tables, columns, indexes, triggers), with the schema each revision produces. Those
expected schemas are not written down anywhere: they are derived by running the revision
files themselves into an in-memory SQLite database, so a new revision needs no new
detection code. StarPunk's `schema_migrations` rows are reported, never trusted: in the
hybrid states they disagree with the schema.

A file that matches no revision exactly is explained, difference by difference, by what the
chain did (adoption.explanation): objects a later revision creates already there, objects a
revision removed still there, objects of its revision missing that hold no data. The reading
that explains it best wins; two equally good readings, or a difference nothing explains, are
refused before anything is written, with what was found.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..evolution.chain import all_starpunk_names, revision_references
from ..foundation.advice import command
from ..foundation.errors import AnotherApplication, UpgradeRefused
from ..foundation.locations import SCRIPT_LOCATION
from ..foundation.printable import printable
from ..schema.releases import release_name
from ..schema.shape import SchemaShape, migration_prefix, recorded_migrations, version_rows
from .explanation import ChainFacts, Explanation, Repair, Unexplained, explain

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


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
            unexpected_columns={
                t: actual.tables[t] - expected.tables[t] for t in shared if actual.tables[t] - expected.tables[t]
            },
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
class DatabaseState:
    """What a database is, as far as migrations are concerned.

    `managed`: it has `alembic_version`, whose revision is trusted. Otherwise `revision`
    is what detection found, to be stamped after `repairs` run and `missing_migration_rows`
    are added to schema_migrations; None for an empty database. `alike`: the later revisions
    that look exactly like `revision` (they change no name): a file StarPunk's runner made is
    at `revision`, but one that ran this project's revisions may be at any of them.
    """

    name: str
    revision: str | None
    managed: bool
    repairs: tuple[Repair, ...] = ()
    missing_migration_rows: tuple[str, ...] = ()
    recorded_migrations: tuple[str, ...] = ()
    unknown_tables: tuple[str, ...] = ()
    alike: tuple[str, ...] = ()

    def schema_phrase(self) -> str:
        """ "revision 009's (v1.4 / v1.5)", naming the revisions that look the same too."""
        alike = "".join(f" or {revision}'s" for revision in self.alike)
        same = ", which look the same: they differ in types, constraints or rows only" if alike else ""
        return f"revision {self.revision}'s{alike} ({self.name}{same})"

    @property
    def needs_stamp(self) -> bool:
        return not self.managed and self.revision is not None

    @property
    def label(self) -> str:
        """The state as a file-name-friendly word, for backup names."""
        if self.managed:
            return re.sub(r"[^A-Za-z0-9.]+", "-", self.revision or "base").strip("-")
        # A repaired state's name lists its repairs: the release it is at says enough.
        source = release_name(self.revision) + " repaired" if self.repairs else self.name
        return re.sub(r"[^A-Za-z0-9.]+", "-", source or "base").strip("-")


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
        raise unknown_revision_refusal(connection, unknown[0], script_location)
    revision = versions[0] if versions else None
    return DatabaseState(
        name=release_name(revision), revision=revision, managed=True, recorded_migrations=recorded_migrations(connection)
    )


# How StarPunk names its revisions (001, 002, ..., v0_1_0): another application's Alembic names
# its own by random hexadecimal ids.
# (Three digits, four after 999: an all-digit id of Alembic's twelve is another application's.)
_STARPUNK_REVISION = re.compile(r"^(?:\d{3,4}|v\d+_\d+_\d+)$")


def is_starpunk_revision(revision: str) -> bool:
    """Whether `revision` is named as StarPunk names its own (a newer release's, if this code lacks it)."""
    return bool(_STARPUNK_REVISION.match(revision))


def unknown_revision_refusal(connection: Connection, revision: str, script_location: Path) -> UpgradeRefused:
    """An alembic_version naming a revision this code lacks: a newer StarPunk's, or another application's."""
    shown = printable(repr(revision))
    if is_starpunk_revision(revision):
        return UpgradeRefused(
            f"The database is at Alembic revision {shown}, which this version of StarPunk does "
            "not know (it was probably upgraded by a newer release); run that release, or restore "
            "a backup taken before it."
        )
    try:
        state = detect_state(connection, script_location)  # the schema, whatever alembic_version says
    except AnotherApplication as refusal:
        return refusal
    except UpgradeRefused:
        return UpgradeRefused(
            f"The database's alembic_version holds {shown}, which is no StarPunk revision (StarPunk numbers its own: "
            "001, 002, ...), and its schema matches no StarPunk release: it looks like another application's database; "
            "nothing was changed: check DATABASE_URL or DATABASE_PATH, or restore a backup."
        )
    if state.alike:  # it may have run them: which one it is at, only its operator can say
        record = f"stamp the one it is at with {command('stamp --force REV')}"
    else:
        record = f"run {command('stamp')} to record revision {state.revision} in its place"
    return UpgradeRefused(
        f"The database's alembic_version holds {shown}, which is another application's alembic_version (StarPunk "
        f"numbers its revisions 001, 002, ...), while its schema is StarPunk's {state.schema_phrase()}; "
        f"nothing was changed: if no other application uses this file, {record}; if one does, give StarPunk a "
        "database file of its own."
    )


def detect_state(connection: Connection, script_location: Path = SCRIPT_LOCATION) -> DatabaseState:
    """Which revision a database without `alembic_version` is at. Only reads."""
    references = revision_references(script_location)
    actual = SchemaShape.read(connection)
    recorded = recorded_migrations(connection)
    if not actual.tables:
        return DatabaseState(name=release_name(None), revision=None, managed=False)
    starpunk = all_starpunk_names(references)
    facts = ChainFacts(references)
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

    def state(explanation: Explanation) -> DatabaseState:
        index = references.index(explanation.reference)
        difference = differences[index][1]
        present = {migration_prefix(row) for row in recorded}
        reference = explanation.reference
        alike = []
        while index + 1 < len(references) and facts.reads_as_the_one_before(index + 1):
            index += 1
            alike.append(str(references[index].revision))
        return DatabaseState(
            name=explanation.describe(),
            revision=reference.revision,
            managed=False,
            repairs=explanation.repairs,
            missing_migration_rows=tuple(row for row in reference.migration_rows if migration_prefix(row) not in present),
            recorded_migrations=recorded,
            unknown_tables=tuple(sorted(difference.unknown_tables)),
            alike=tuple(alike),
        )

    rows = recorded if "schema_migrations" in actual.tables else None
    explained: list[Explanation] = []
    unexplained: dict[str | None, str] = {}
    for index in range(1, len(references)):
        # A file StarPunk's runner made never ran any of our revisions: of revisions that look
        # alike (the later ones change only types, constraints or rows), the earliest is its
        # reading, so that the later ones still run. A file that has an alembic_version may have
        # run them: what reads it (bookkeeping, stamp) sees `alike` and does not guess.
        if facts.reads_as_the_one_before(index):
            continue
        try:
            explained.append(explain(connection, facts, index, content, starpunk, rows))
        except Unexplained as why:
            unexplained[references[index].revision] = str(why)
    exact = [explanation for explanation in explained if not explanation.repairs]
    if exact:  # the one StarPunk's own rows confirm best; of equals, the earliest
        return state(min(exact, key=lambda explanation: explanation.rows_apart))
    # Otherwise the reading the chain explains best wins: rows that confirm it, fewest repairs.
    if explained:
        best = min(explained, key=lambda explanation: explanation.rank)
        rivals = [other for other in explained if other.rank == best.rank and other is not best]
        if rivals:
            readings = " or ".join(
                f"revision {reading.revision} ({reading.describe()}: {'; '.join(r.phrase() for r in reading.repairs)})"
                for reading in (best, *rivals)
            )
            raise UpgradeRefused(
                f"The database's schema can be read two ways, as {readings}; nothing was changed: "
                f"restore a backup, or stamp the right one with {command('stamp --force REV')}."
            )
        return state(best)

    nearest, difference = min(differences[1:], key=lambda pair: len(pair[1].findings()))
    findings = difference.findings()
    reason = unexplained.get(nearest.revision)
    if reason and not any(reason.startswith(finding) for finding in findings):
        findings = [reason, *findings]
    shown = "; ".join(findings[:6]) + (f"; and {len(findings) - 6} more" if len(findings) > 6 else "")
    raise UpgradeRefused(
        "The database's schema matches no StarPunk release: the nearest is revision "
        f"{nearest.revision} ({release_name(nearest.revision)}), but {shown}. Nothing was changed; "
        "restore a backup, or make the schema match that revision and run the upgrade again."
    )
