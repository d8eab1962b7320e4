"""What an application calls at start-up: `ensure_schema`, and where the database is.

Every StarPunk worker calls `ensure_schema` on every start, almost always on a database
that is already at head. That case is answered with the standard library alone (one
read-only connection, one SELECT); Alembic is imported only when there is work to do.
The head revision is read from the revision files themselves, so it cannot go stale.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import sqlite3
import urllib.parse
from pathlib import Path

# The Alembic scripts (env.py, versions/, the template): a wheel carries the repo's alembic/
# folder as app/migrations, next to this file; a checkout (or an editable install) has it
# beside app/. Never site-packages/alembic, which is the Alembic library itself.
_PACKAGED_SCRIPTS = Path(__file__).resolve().parent / "migrations"
SCRIPT_LOCATION = _PACKAGED_SCRIPTS if (_PACKAGED_SCRIPTS / "env.py").is_file() else _PACKAGED_SCRIPTS.parent.parent / "alembic"
DEFAULT_DATABASE_URL = "sqlite:///data/starpunk.db"
# Longer than the slowest upgrade StarPunk has (rehashing a few hundred thousand sessions
# takes about a second), so that workers queued behind the one migrating never give up.
DEFAULT_BUSY_TIMEOUT = 120.0


class UpgradeRefused(Exception):
    """The database was left exactly as it was, for the reason in the message.

    Raised for a file that is not a SQLite database, a schema no StarPunk release had, a
    revision this code does not know, a lock held too long, a read-only file, ...: the
    message is one sentence saying what was found and what to do.
    """


def resolve_database_url(environ: os._Environ[str] | dict[str, str] = os.environ, *, create_folder: bool = True) -> str:
    """The database to use: DATABASE_URL, else StarPunk's DATABASE_PATH, else data/starpunk.db.

    The default's folder `data/` is created when missing, as StarPunk does (not by
    read-only commands: `create_folder=False`).
    """
    if environ.get("DATABASE_URL"):
        return environ["DATABASE_URL"]
    if environ.get("DATABASE_PATH"):
        return sqlite_url(environ["DATABASE_PATH"])
    if create_folder:
        Path("data").mkdir(exist_ok=True)
    return DEFAULT_DATABASE_URL


def sqlite_uri(path: Path | str, **parameters: str) -> str:
    """SQLite's own `file:` URI for a path: every character of the path stays a character of
    the file name (`?`, `#`, `%`, spaces and the rest are %-encoded)."""
    uri = "file://" + urllib.parse.quote(os.path.abspath(path), safe="/")
    return uri + ("?" + urllib.parse.urlencode(parameters) if parameters else "")


def sqlite_url(path: Path | str) -> str:
    """The SQLAlchemy URL of a SQLite file given as a plain path. A path is never read as a
    URL: it is %-quoted as SQLAlchemy unquotes it (`?`, `#`, `%` and the rest stay part of
    the name), and SQLAlchemy hands SQLite the path itself, not a URI."""
    return "sqlite:///" + urllib.parse.quote(os.path.abspath(path), safe=" +/")


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def as_database_url(database: str | os.PathLike[str]) -> str:
    """A URL stays a URL; anything else is a path, whatever characters it holds."""
    if isinstance(database, str) and _URL.match(database):
        return database
    return sqlite_url(database)


@functools.lru_cache(maxsize=64)
def database_file(database_url: str) -> Path | None:
    """The SQLite file behind a URL (`sqlite:///PATH`, also the `file:PATH?...&uri=true`
    form); None for an in-memory database or another kind of database."""
    # Parsed as SQLAlchemy does (database up to the first "?"), with the standard library:
    # the fast path of ensure_schema does not import SQLAlchemy.
    scheme, separator, rest = database_url.partition(":///")
    if not separator or scheme.split("+")[0] != "sqlite":
        return None
    database, _, query = rest.partition("?")
    database = urllib.parse.unquote(database)  # as SQLAlchemy does
    options = urllib.parse.parse_qs(query)
    if options.get("uri", [""])[-1].lower() in ("true", "1") and database.startswith("file:"):
        parsed = urllib.parse.urlsplit(database)
        if "memory" in options.get("mode", []) or parsed.path in ("", ":memory:"):
            return None
        return Path(urllib.parse.unquote(parsed.path))
    if database in ("", ":memory:") or "memory" in options.get("mode", []):
        return None
    return Path(database)


_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+)$", re.MULTILINE)


@functools.cache
def head_revision(script_location: Path = SCRIPT_LOCATION) -> str:
    """The head of the revision files, found without importing Alembic.

    Reads the `revision = ...` and `down_revision = ...` lines every revision file has
    (Alembic's template writes them that way); the test suite checks the answer against
    Alembic's own.
    """
    parents: dict[str, tuple[str, ...]] = {}
    for path in (script_location / "versions").glob("*.py"):
        fields = {name: ast.literal_eval(value.strip()) for name, value in _ASSIGNMENT.findall(path.read_text())}
        down = fields.get("down_revision")
        parents[fields["revision"]] = (down,) if isinstance(down, str) else tuple(down or ())
    referenced = {parent for downs in parents.values() for parent in downs}
    heads = sorted(set(parents) - referenced)
    if len(heads) != 1:
        raise RuntimeError(f"expected one head revision in {script_location}, found {heads}")
    return heads[0]


@functools.lru_cache(maxsize=64)
def _read_only_uri(path: Path) -> str:
    return sqlite_uri(path, mode="ro")


def current_revision_if_head(database_url: str, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> str | None:
    """The head revision if the database is a SQLite file already at head, else None.

    Never writes and never raises: anything unusual (no file, no table, not a database)
    is left to the full path, which explains it properly.
    """
    path = database_file(database_url)
    if path is None or "?" in database_url:  # options in the URL: leave them to SQLAlchemy
        return None
    try:
        connection = sqlite3.connect(_read_only_uri(path), uri=True, timeout=busy_timeout)
    except sqlite3.Error:
        return None
    try:
        rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.Error:
        return None
    finally:
        connection.close()
    head = head_revision()
    return head if rows == [(head,)] else None


def ensure_schema(
    database: str | os.PathLike[str] | None = None,
    *,
    backup: bool = True,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
) -> str:
    """Bring the database to the head revision and return the revision it is at.

    `database` is the SQLite file's path (any characters), or a `sqlite:///` URL; by default
    DATABASE_URL, else DATABASE_PATH, else data/starpunk.db.

    A StarPunk file Alembic has never seen is recognised and stamped first; an existing
    file gets a backup next to it before its first change (unless `backup=False`). Several
    processes may call this at once: one migrates, the others wait and find nothing to do.
    Raises `UpgradeRefused`, with the file untouched, when it cannot be done safely.
    """
    url = as_database_url(database) if database else resolve_database_url()
    revision = current_revision_if_head(url, busy_timeout)
    if revision is not None:
        return revision
    from app import refusals  # light (the standard library and this module): in place before the heavy imports

    with refusals.interrupts_as_exceptions():
        try:
            from app.upgrade import upgrade_database  # SQLAlchemy and Alembic: a few tenths of a second
        except KeyboardInterrupt:
            raise UpgradeRefused(refusals.INTERRUPTED) from None
        return upgrade_database(url, "head", backup=backup, busy_timeout=busy_timeout).revision
