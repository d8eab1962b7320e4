"""The schema after every revision, derived by replaying the revision chain in memory.

Nothing of what a revision produces is written down twice: detection, the guard, autogenerate
and `--sql` rebuilds all read it from here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from ..foundation.locations import SCRIPT_LOCATION
from ..schema.shape import SchemaShape, recorded_migrations
from . import operations


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


def reference_at(revision: str | None, script_location: Path = SCRIPT_LOCATION) -> RevisionReference:
    """What the chain holds after `revision` (None: the empty base)."""
    return next(reference for reference in revision_references(script_location) if reference.revision == revision)


def definitions_at(script_location: Path, revision: str | None) -> list[str]:
    """The CREATE statements of the schema after `revision`, for a `--sql` rebuild
    (evolution.rebuild's SCHEMA_AT_OPTION)."""
    return list(reference_at(revision, script_location).shape.definitions.values())


# StarPunk's operations (op.rebuild_table, op.create_trigger, ...) must be on `op` before a
# revision of the chain runs; importing the module registers them.
OPERATIONS = operations
