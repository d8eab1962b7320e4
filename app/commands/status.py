"""What a database is, read without writing a byte: the state detection or the stamp gives,
and the revisions an upgrade to a target would run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..adoption import bookkeeping
from ..adoption.detection import DatabaseState
from ..foundation import reading
from ..foundation.database_files import check_database_file, require_database_file
from ..foundation.locations import DEFAULT_BUSY_TIMEOUT
from ..foundation.refusals import refusing_sqlite_errors
from ..foundation.scripts import alembic_config, head_revision
from ..schema.releases import release_name

MISSING = "missing"


@dataclass(frozen=True)
class Status:
    database: str  # as the operator knows it: the file's path, else the URL
    state: DatabaseState
    path: Path | None = None

    @property
    def pending(self) -> list[str]:
        return [script.revision for script in revisions_between(self.state.revision, "head")]

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "state": self.state.name,
            "revision": self.state.revision,
            "managed": self.state.managed,
            "head": head_revision(),
            "pending": self.pending,
            "repairs": [{**repair.as_dict(), "does": repair.phrase()} for repair in self.state.repairs],
            "schema_migrations": list(self.state.recorded_migrations),
            "unknown_tables": list(self.state.unknown_tables),
        }


def read_status(database_url: str) -> Status:
    """The database's state, read without writing a byte to the file or a file beside it
    (after a crash, from a private copy: app.reading)."""
    path = require_database_file(database_url)
    if not path.exists() and not path.is_symlink():
        return Status(str(path), DatabaseState(MISSING, None, managed=False), path)
    check_database_file(path)
    if not path.exists() or path.stat().st_size == 0:
        return Status(str(path), DatabaseState(release_name(None), None, managed=False), path)
    with refusing_sqlite_errors(path, DEFAULT_BUSY_TIMEOUT), reading.read_only_engine(path) as engine:
        with engine.connect() as connection, connection.begin():
            state = bookkeeping.inspect_database(connection)
    return Status(str(path), state, path)


def revisions_between(current: str | None, target: str) -> list[Any]:
    """The revision scripts an upgrade from `current` to `target` runs, in order."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(""))
    return list(reversed(list(script.iterate_revisions(target, current))))
