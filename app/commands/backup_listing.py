"""The backups next to a database: where they are, when they were taken, what they hold.

Backups are named `<file>.backup-<revision or state>-<UTC time>[-N]` (foundation.backup). They are
read through SQLite's `immutable` read-only mode: nothing, not even a -wal or -shm file, is
ever written beside them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..adoption import bookkeeping
from ..adoption.detection import DatabaseState
from ..foundation import reading
from ..foundation.database_files import check_database_file
from ..foundation.errors import UpgradeRefused
from ..foundation.locations import DEFAULT_BUSY_TIMEOUT
from ..foundation.refusals import refusing_sqlite_errors

_MOMENT = re.compile(r"-(\d{8}T\d{6}Z)(?:-(\d+))?$")


@dataclass(frozen=True)
class BackupEntry:
    path: Path
    created: datetime
    size: int
    state: str  # the state detection gives, or why it cannot be read
    revision: str | None
    readable: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "state": self.state,
            "revision": self.revision,
            "created": self.created.isoformat().replace("+00:00", "Z"),
            "size": self.size,
            "readable": self.readable,
        }


def backup_state(path: Path) -> DatabaseState:
    """What a backup holds, read without writing anything; `UpgradeRefused` for a file that is
    not a StarPunk database (damaged, foreign, empty, from a newer release)."""
    check_database_file(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise UpgradeRefused(f"{path} is empty or missing, not a StarPunk database.")
    with refusing_sqlite_errors(path, DEFAULT_BUSY_TIMEOUT), reading.backup_engine(path) as engine:
        with engine.connect() as connection, connection.begin():
            state = bookkeeping.inspect_database(connection)
    if state.revision is None:
        raise UpgradeRefused(f"{path} holds no StarPunk table (an empty database).")
    return state


def _created(path: Path) -> tuple[datetime, int]:
    """When the backup was taken (from its name, else the file's time), and its -N."""
    found = _MOMENT.search(path.name)
    if found:
        moment = datetime.strptime(found.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return moment, int(found.group(2) or 1)
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(microsecond=0), 1


def list_backups(database: Path) -> list[BackupEntry]:
    """The backups of `database` in its folder, newest first (half-written `.partial` files, and
    the empty files that reserve a backup's name until it is written, aside)."""
    entries = []
    candidates = [
        path
        for path in database.parent.glob(f"{_glob_escape(database.name)}.backup-*")
        if path.is_file() and not path.name.endswith(".partial") and path.stat().st_size > 0
    ]
    for path in candidates:
        created, attempt = _created(path)
        try:
            state = backup_state(path)
            name, revision, readable = state.name, state.revision, True
        except UpgradeRefused as refusal:
            name, revision, readable = f"unreadable: {refusal}", None, False
        entries.append((created, attempt, BackupEntry(path, created, path.stat().st_size, name, revision, readable)))
    entries.sort(key=lambda entry: (entry[0], entry[1]), reverse=True)
    return [entry for _, _, entry in entries]


def _glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)
