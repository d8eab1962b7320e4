"""The last check of an upgrade: nothing SQLite hides was lost on the way.

Reflection, and so autogenerate, `alembic check` and `PRAGMA foreign_key_check`, do not see
what a careless table rebuild drops: triggers, views, virtual tables, AUTOINCREMENT, CHECK
constraints, foreign-key actions. `guarding` watches the revisions run inside the upgrade's
transaction and refuses, in one sentence naming the object and the revision, so that
everything rolls back:

- after each revision: whatever the file had before that revision must still be there,
  unless the revision removed it on purpose: a DROP statement naming it, its table
  dropped, or (for a table's AUTOINCREMENT, CHECKs and foreign-key actions) the same
  change made by the revision when the chain runs on an empty database;
- at head: the objects and table traits the models declare (the models).

A user's own triggers and views are held to the first rule only: kept, never demanded.
A plain batch under a view fails in SQLite itself ("error in view ..."); that too becomes
one sentence naming the view and the revision.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

import sqlalchemy

from ..foundation.errors import UpgradeRefused
from ..foundation.scripts import scripts_of
from ..schema.sql_names import dropped_object, name_key, same_name
from ..schema.sqlite_objects import SQLiteObject, TableTraits, Trigger, declared_objects, read_objects, read_table_traits
from .chain import revision_references
from .rebuild import is_revision_frame

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext, MigrationInfo
    from sqlalchemy import MetaData, Table
    from sqlalchemy.engine import Connection

ADVICE = "write table changes with op.rebuild_table, as the README's 'Adding a schema change' shows"


@dataclass(frozen=True)
class HiddenSchema:
    objects: dict[str, SQLiteObject]
    traits: dict[str, TableTraits]

    @classmethod
    def read(cls, connection: Connection) -> HiddenSchema:
        return cls(read_objects(connection), read_table_traits(connection))

    def has_table(self, name: str) -> bool:
        """A table or view of that name, as SQLite finds names (`ON Notes` is on notes)."""
        return any(same_name(name, present) for present in (*self.traits, *self.objects))


class SchemaGuard:
    def __init__(self, connection: Connection, migration_context: MigrationContext) -> None:
        self.connection = connection
        self.migration_context = migration_context
        self.script_location = Path(scripts_of(migration_context).dir)
        self.current = HiddenSchema.read(connection)
        self.dropped: set[str] = set()
        self.last_step: str | None = None

    def statement_ran(self, sql: str) -> None:
        found = dropped_object(sql) if sql.lstrip()[:4].upper() == "DROP" else None
        if found:
            self.dropped.add(name_key(found))

    def step_applied(self, *, ctx: Any, step: MigrationInfo, heads: Any, run_args: Any) -> None:
        after = HiddenSchema.read(self.connection)
        revision = f"revision {step.up_revision_id}" if step.is_upgrade else f"the downgrade of revision {step.up_revision_id}"
        self.last_step = revision
        lost = []
        for name, item in self.current.objects.items():
            if name in after.objects or name_key(name) in self.dropped:
                continue
            if isinstance(item, Trigger) and not after.has_table(item.table):
                continue  # went with its table or view, which the revision dropped
            lost.append(f"the {item.kind} {name}")
        for table, traits in self.current.traits.items():
            if table in after.traits:
                meant = self._reference_change(table, step)
                lost += [f"{what} of the table {table}" for what in traits.lost_in(after.traits[table]) if what not in meant]
        if lost:
            self._refuse(f"{revision} would lose {_and(lost)}")
        self.current = after
        self.dropped.clear()

    def _reference_change(self, table: str, step: MigrationInfo) -> list[str]:
        """What the step's revision itself does to the table's traits on an empty database."""
        source = _reference_traits(self.script_location, step.source_revision_ids[0] if step.source_revision_ids else None, table)
        target = _reference_traits(
            self.script_location, step.destination_revision_ids[0] if step.destination_revision_ids else None, table
        )
        return source.lost_in(target) if source is not None and target is not None else []

    def check_head(self) -> None:
        """At head, the models' declarations hold."""
        if self.last_step is None:
            return  # no revision ran: nothing of ours changed the file
        heads = set(self.migration_context.get_current_heads())
        if heads != set(scripts_of(self.migration_context).get_heads()):
            return
        metadata: MetaData | None = self.migration_context.opts.get("target_metadata")
        if metadata is None or isinstance(metadata, (list, tuple)):
            return
        after = self.current
        lacking = []
        for name, item in declared_objects(metadata).items():
            found = after.objects.get(name)
            if found is None:
                lacking.append(f"the {item.kind} {name}")
            elif not item.same_definition(found):
                lacking.append(f"the {item.kind} {name} as defined there")
        for table in metadata.tables.values():
            if table.name in after.traits:
                lacking += [
                    f"{what} of the table {table.name}" for what in _model_traits(table).lost_in(after.traits[table.name])
                ]
        if lacking:
            self._refuse(
                f"after {self.last_step} the database lacks {_and(lacking)}, which the models declare",
                # The models may simply be ahead of the revisions: a declaration not yet generated.
                "if you have just declared it in app/models.py, generate the revision that creates it "
                f"(alembic revision --autogenerate); otherwise {ADVICE}",
            )

    @staticmethod
    def _refuse(finding: str, advice: str = ADVICE) -> None:
        raise UpgradeRefused(f"The upgrade was refused: {finding}; nothing was changed: {advice}.")


def _and(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


@functools.cache
def _reference_traits(script_location: Path, revision: str | None, table: str) -> TableTraits | None:
    for reference in revision_references(script_location):
        if reference.revision == revision:
            sql = reference.shape.definitions.get(table)
            return TableTraits.of(sql) if sql and table in reference.shape.tables else None
    return None


def _model_traits(table: Table) -> TableTraits:
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateTable

    return TableTraits.of(str(CreateTable(table).compile(dialect=sqlite.dialect())))


@contextlib.contextmanager
def guarding(connection: Connection, migration_context: MigrationContext) -> Iterator[SchemaGuard | None]:
    """Watch the revisions run inside this block; refuse a loss (see the module's docstring)."""
    if connection.dialect.name != "sqlite":
        yield None
        return
    guard = SchemaGuard(connection, migration_context)
    callbacks = migration_context.on_version_apply_callbacks
    migration_context.on_version_apply_callbacks = (*callbacks, guard.step_applied)
    driver_connection = connection.connection.driver_connection
    tracing = driver_connection is not None and hasattr(driver_connection, "set_trace_callback")
    if tracing:
        assert driver_connection is not None
        driver_connection.set_trace_callback(guard.statement_ran)
    try:
        yield guard
        guard.check_head()
    except sqlalchemy.exc.OperationalError as error:
        broken = re.match(r"error in (view|trigger) (\S+): ", str(error.orig))
        if broken is None:
            raise
        frame = _revision_in(error.__traceback__)
        revision = f"revision {frame.f_globals['revision']}" if frame is not None else "a revision"
        raise UpgradeRefused(
            f"The upgrade was refused: {revision} rebuilds or renames a table that the {broken.group(1)} {broken.group(2)} "
            f"uses, and SQLite refused ({error.orig}); nothing was changed: {ADVICE}."
        ) from error
    finally:
        if tracing:
            assert driver_connection is not None
            driver_connection.set_trace_callback(None)
        migration_context.on_version_apply_callbacks = callbacks


def _revision_in(traceback: TracebackType | None) -> FrameType | None:
    """The frame of the revision that raised, walking the traceback (finished frames lose f_back)."""
    found = None
    while traceback is not None:
        if is_revision_frame(traceback.tb_frame):
            found = traceback.tb_frame
        traceback = traceback.tb_next
    return found
