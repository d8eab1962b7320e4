"""Where things are: the Alembic scripts, and StarPunk's database (from a path, a URL or the
environment). The standard library only: the start-up fast path imports this."""

from __future__ import annotations

import functools
import os
import re
import urllib.parse
from pathlib import Path

# The Alembic scripts (env.py, versions/, the template): a wheel carries the repo's alembic/
# folder as starpunk_migrations/migrations, next to the package's own modules; a checkout (or
# an editable install) has it beside app/. Never site-packages/alembic, which is the Alembic
# library itself.
_PACKAGE = Path(__file__).resolve().parent.parent
_PACKAGED_SCRIPTS = _PACKAGE / "migrations"
SCRIPT_LOCATION = _PACKAGED_SCRIPTS if (_PACKAGED_SCRIPTS / "env.py").is_file() else _PACKAGE.parent / "alembic"
DEFAULT_DATABASE_URL = "sqlite:///data/starpunk.db"
# How long to wait for the database's write lock. Longer than the slowest upgrade StarPunk has
# (rehashing a few hundred thousand sessions takes about a second), so that workers queued
# behind the one migrating never give up.
DEFAULT_BUSY_TIMEOUT = 120.0


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
    """SQLite's own `file:` URI for a path: every byte of the path stays a byte of the file
    name (`?`, `#`, `%`, spaces and the rest are %-encoded). The bytes are the ones the
    operating system knows the file by, whatever the locale: a name that is not UTF-8, or a
    Latin-1 host's, opens the file it names."""
    uri = "file://" + urllib.parse.quote(_file_name_bytes(os.path.abspath(path)), safe="/")
    return uri + ("?" + urllib.parse.urlencode(parameters) if parameters else "")


def sqlite_url(path: str | os.PathLike[str]) -> str:
    """The SQLAlchemy URL of a SQLite file given as a plain path. A path is never read as a
    URL: it is %-quoted as `database_file` unquotes it (`?`, `#`, `%` and the rest stay part
    of the name), byte for byte as the operating system knows the file."""
    return "sqlite:///" + urllib.parse.quote(_file_name_bytes(os.path.abspath(path)), safe=" +/")


def _file_name_bytes(name: str) -> bytes:
    """The bytes the operating system knows `name` by. A name this locale's encoding cannot
    write (Unicode under LC_ALL=C) is taken as UTF-8, which Linux file names almost always are."""
    try:
        return os.fsencode(name)
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape")


def _unquoted_path(quoted: str) -> str:
    """The path a %-quoted URL part stands for, byte for byte (see `sqlite_url`)."""
    return os.fsdecode(urllib.parse.unquote_to_bytes(_file_name_bytes(quoted)))


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
    database = _unquoted_path(database)  # as SQLAlchemy does, but keeping bytes that are not UTF-8
    options = urllib.parse.parse_qs(query)
    if options.get("uri", [""])[-1].lower() in ("true", "1") and database.startswith("file:"):
        parsed = urllib.parse.urlsplit(database)
        if "memory" in options.get("mode", []) or parsed.path in ("", ":memory:"):
            return None
        return Path(_unquoted_path(parsed.path))
    if database in ("", ":memory:") or "memory" in options.get("mode", []):
        return None
    return Path(database)
