"""SQLite's own check of a file's pages, before a command writes to it.

A damaged page that SQLite never happens to read passes every other check: the file opens,
its schema reads, the revisions run on the tables they touch, and the upgrade says "Done"
over a file that is still damaged (its backup a copy of the damage). So every command that
writes (upgrade, downgrade, stamp) runs SQLite's check under its write lock, once a hot
journal is rolled back, and refuses a damaged file before its backup is written.

A small file gets `integrity_check`, which also compares every index with its table; a large
one `quick_check`, which checks every page and row but not the index contents, at a fraction
of the cost (benchmarks/README.md). A run with nothing to write checks nothing: the start-up
of a worker on a file at head stays one read.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy
from sqlalchemy.engine import Connection

from .advice import command
from .errors import UpgradeRefused

# Below this size the full integrity check costs a few tens of milliseconds.
FULL_CHECK_BELOW = 8 << 20
# SQLite's first finding begins with the name of the schema it was found in.
_SCHEMA_PREFIX = "*** in database main ***"


def first_finding(rows: list[str]) -> str | None:
    """The first problem in the rows of `PRAGMA integrity_check` or `quick_check`, as one line;
    None when they say "ok"."""
    if rows == ["ok"]:
        return None
    text = (rows[0] if rows else "no answer").removeprefix(_SCHEMA_PREFIX).strip()
    return " ".join(text.split()) or "no answer"


def refuse_damaged(connection: Connection, path: Path) -> None:
    """Refuse `path`, untouched, if SQLite finds any of its pages damaged. Only reads."""
    check = "integrity_check(1)" if path.stat().st_size < FULL_CHECK_BELOW else "quick_check(1)"
    try:
        rows = [row[0] for row in connection.exec_driver_sql(f"PRAGMA {check}")]
    except sqlalchemy.exc.DBAPIError as error:
        # So damaged that the check itself cannot go on: what SQLite says is the finding.
        if not getattr(error.orig, "sqlite_errorname", "").startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
            raise
        rows = [str(error.orig)]
    finding = first_finding(rows)
    if finding is not None:
        raise UpgradeRefused(
            f"{path} is damaged ({finding}); nothing was changed: restore it from a backup ({command('backups')} lists them)."
        )
