"""Running Alembic on a StarPunk database safely: one locked transaction, a backup, clear refusals.

`run_online` is what `alembic/env.py` calls; `upgrade_database` is how `ensure_schema` and
`starpunk-db` call Alembic. Either way the work is the same:

1. check the file is a sound SQLite database (else refuse, touching nothing);
2. `BEGIN IMMEDIATE`: take SQLite's write lock first, so that of several workers starting
   at once one migrates and the others wait for it, then find nothing to do;
3. detect the state (app.adoption) and, if there is work, write a backup next to the file;
4. repair and stamp a file Alembic has never seen, then run the revisions;
5. check no foreign key was broken, and commit. Any failure rolls all of it back.

SQLite's Python driver commits DDL on its own; here it is put in autocommit mode and the
transaction is begun explicitly, so that the DDL of every revision is part of it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from app import adoption
from app.backup import write_backup
from app.db import DEFAULT_BUSY_TIMEOUT, SCRIPT_LOCATION, UpgradeRefused, database_file, resolve_database_url
from app.schema_guard import guarding

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext
    from alembic.runtime.migration import MigrationInfo, MigrationContext

log = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"
# An execution option: this connection only reads, so it begins with a plain BEGIN.
READ_ONLY = "starpunk_read_only"


def create_engine(database_url: str, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Engine:
    """An engine whose SQLite transactions include DDL and take the write lock up front.

    Foreign keys stay off on these connections: a table rebuild (drop, then rename a copy)
    would otherwise delete every ON DELETE CASCADE child row. `PRAGMA foreign_key_check`
    runs before commit instead.
    """
    url = sqlalchemy.make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return sqlalchemy.create_engine(url, poolclass=NullPool)
    engine = sqlalchemy.create_engine(url, poolclass=NullPool, connect_args={"timeout": busy_timeout})

    @event.listens_for(engine, "connect")
    def _take_over_transactions(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA foreign_keys = OFF")

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def check_database_file(path: Path) -> None:
    """Refuse what SQLite would misread or damage: a folder, a non-database, a truncated file."""
    if path.is_dir():
        raise UpgradeRefused(f"{path} is a folder, not a database file; give the path of StarPunk's database file (usually data/starpunk.db).")
    if not path.exists():
        if not path.parent.is_dir():
            raise UpgradeRefused(f"The folder {path.parent} does not exist; create it or check DATABASE_URL / DATABASE_PATH.")
        return
    size = path.stat().st_size
    if size == 0:
        return
    with path.open("rb") as file:
        header = file.read(100)
    if not header.startswith(SQLITE_HEADER):
        raise UpgradeRefused(f"{path} is not a SQLite database; check the path, or restore the file from a backup.")
    if len(header) < 100:
        raise UpgradeRefused(f"{path} is truncated (only {size} bytes); restore it from a backup.")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    page_count = int.from_bytes(header[28:32], "big")
    # The page count in the header is valid only when its "version valid for" matches
    # the change counter (SQLite >= 3.7.0 writes both).
    if header[92:96] == header[24:28] and size < page_count * page_size:
        raise UpgradeRefused(
            f"{path} is truncated ({size} bytes, but its header says {page_count * page_size}); restore it from a backup."
        )


def check_writable(path: Path) -> None:
    if path.exists() and not os.access(path, os.W_OK):
        raise UpgradeRefused(f"{path} is read-only; make it writable by the user running StarPunk and try again.")
    if not os.access(path.parent, os.W_OK):
        raise UpgradeRefused(
            f"The folder {path.parent} is read-only, and SQLite must write its journal (and the backup) there; "
            "make it writable by the user running StarPunk and try again."
        )


@contextlib.contextmanager
def refusing_sqlite_errors(path: Path | str | None, busy_timeout: float) -> Iterator[None]:
    """Turn what SQLite says about a bad or busy file into one sentence for the operator."""
    try:
        yield
    except (sqlalchemy.exc.DBAPIError, sqlite3.Error) as error:
        original = getattr(error, "orig", error)
        name = getattr(original, "sqlite_errorname", "")
        where = path or "The database"
        if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED") or "database is locked" in str(original):
            message = (
                f"{where} is locked by another program writing to it, still after {busy_timeout:g} seconds; "
                "stop that program or wait for it to finish, then try again."
            )
        elif name.startswith("SQLITE_READONLY"):
            message = f"{where} cannot be written (read-only file or folder); make both writable by the user running StarPunk and try again."
        elif name == "SQLITE_NOTADB":
            message = f"{where} is not a SQLite database; check the path, or restore the file from a backup."
        elif name.startswith("SQLITE_CORRUPT"):
            message = f"{where} is damaged ({original}); restore it from a backup."
        elif name.startswith("SQLITE_CANTOPEN"):
            message = f"{where} cannot be opened; check that the path and its folder exist and are readable."
        else:
            raise
        raise UpgradeRefused(message) from error


@dataclass
class UpgradeOptions:
    backup: bool = True
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT

    @classmethod
    def from_context(cls, context: EnvironmentContext) -> UpgradeOptions:
        """Attributes set by a caller first, then `alembic -x backup=false -x busy_timeout=N`."""
        attributes = context.config.attributes
        arguments = context.get_x_argument(as_dictionary=True)
        backup = attributes.get("backup", arguments.get("backup", "true"))
        if isinstance(backup, str):
            backup = backup.strip().lower() not in ("false", "no", "0", "off")
        busy_timeout = float(attributes.get("busy_timeout", arguments.get("busy_timeout", DEFAULT_BUSY_TIMEOUT)))
        return cls(backup=bool(backup), busy_timeout=busy_timeout)


@dataclass(frozen=True)
class AppliedRevision:
    revision: str
    description: str
    upgrade: bool
    seconds: float


@dataclass
class UpgradeReport:
    """What one run did: readable by `starpunk-db` and returned by `upgrade_database`."""

    database: str
    state: adoption.DatabaseState | None = None
    backup: Path | None = None
    applied: list[AppliedRevision] = field(default_factory=list)
    revision: str | None = None
    _step_started: float = 0.0

    def start_steps(self) -> None:
        self._step_started = time.perf_counter()

    def step_applied(self, *, ctx: MigrationContext, step: MigrationInfo, heads: Any, run_args: Any) -> None:
        now = time.perf_counter()
        script = step.up_revision
        applied = AppliedRevision(
            revision=step.up_revision_id,
            description=(script.doc or "").strip().splitlines()[0] if script is not None else "",
            upgrade=step.is_upgrade,
            seconds=now - self._step_started,
        )
        self._step_started = now
        self.applied.append(applied)
        verb = "applied" if applied.upgrade else "reverted"
        log.info("%s %s  %s  (%.3f s)", verb, applied.revision, applied.description, applied.seconds)


def _foreign_key_violations(connection: Connection) -> set[tuple[Any, ...]]:
    return {tuple(row) for row in connection.exec_driver_sql("PRAGMA foreign_key_check")}


def _has_work(state: adoption.DatabaseState, context: EnvironmentContext) -> bool:
    if state.needs_stamp:
        return True
    # `check` and `revision` name no destination: they change nothing beyond the stamp.
    destination = _destination(context)
    if destination is None:
        return False
    try:
        wanted = {script.revision for script in context.script.get_revisions(destination)}
    except Exception:  # relative destinations (+1, -1) resolve only while migrating
        return True
    return wanted != ({state.revision} if state.revision else set())


def _destination(context: EnvironmentContext) -> Any:
    try:
        return context.get_revision_argument()
    except KeyError:
        return None


@contextlib.contextmanager
def _connection(context: EnvironmentContext, options: UpgradeOptions) -> Iterator[Connection]:
    """The connection to migrate on: the one a caller handed in, else our own engine's."""
    handed = context.config.attributes.get("connection")
    if isinstance(handed, Connection):
        yield handed
        return
    engine = handed if handed is not None else create_engine(context.config.attributes["database_url"], options.busy_timeout)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        if handed is None:
            engine.dispose()


def run_online(context: EnvironmentContext, configure: Callable[..., None]) -> None:
    """env.py's online mode: detect, back up, repair, stamp, migrate, in one transaction."""
    config = context.config
    if "database_url" not in config.attributes:  # resolving the default creates data/
        config.attributes["database_url"] = resolve_database_url()
    options = UpgradeOptions.from_context(context)
    report = UpgradeReport(database=config.attributes["database_url"])
    config.attributes["report"] = report
    path = None if "connection" in config.attributes else database_file(report.database)
    if path is not None:
        check_database_file(path)

    with refusing_sqlite_errors(path, options.busy_timeout), _connection(context, options) as connection:
        configure(connection=connection, on_version_apply=report.step_applied)
        migration_context = context.get_context()
        read_only = bool(migration_context.opts.get("dont_mutate"))
        if read_only:
            connection.execution_options(**{READ_ONLY: True})
        borrowed_transaction = connection.in_transaction()
        transaction = contextlib.nullcontext() if borrowed_transaction else connection.begin()
        with transaction:
            state = adoption.inspect_database(connection, Path(context.script.dir))
            report.state = state
            if read_only:
                if not state.managed:
                    config.print_stdout(_detected_sentence(state))
                context.run_migrations()
                return
            if state.needs_stamp:
                log.info("%s", _detected_sentence(state))
            has_work = _has_work(state, context)
            if has_work and path is not None:
                check_writable(path)
                if options.backup and path.exists() and path.stat().st_size > 0:
                    journal_mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
                    report.backup = write_backup(path, state, write_ahead_log=journal_mode == "wal")
                    log.info("backup written to %s", report.backup)
            if state.needs_stamp:
                adoption.adopt(connection, state, migration_context)
            # Only violations the upgrade itself introduces count (StarPunk ran with keys off).
            violations_before = _foreign_key_violations(connection) if has_work else set()
            report.start_steps()
            # Refuses a revision that loses what SQLite hides (triggers, AUTOINCREMENT, CHECKs...).
            with guarding(connection, migration_context):
                context.run_migrations()
            broken = _foreign_key_violations(connection) - violations_before if has_work else set()
            if broken:
                raise UpgradeRefused(
                    f"The upgrade would leave {len(broken)} row(s) whose foreign key points nowhere "
                    f"(first: {sorted(broken)[0]}); nothing was changed. Please report this as a bug."
                )
            heads = migration_context.get_current_heads()
            report.revision = heads[0] if heads else None


def _detected_sentence(state: adoption.DatabaseState) -> str:
    if state.revision is None:
        return "Detected an empty database: every revision will run from the start."
    parts = [f"Detected StarPunk state '{state.name}', which is revision {state.revision}"]
    if state.repairs:
        parts.append(f"after {len(state.repairs)} repair(s) ({'; '.join(state.repairs)})")
    if state.missing_migration_rows:
        parts.append(f"adding {len(state.missing_migration_rows)} schema_migrations row(s)")
    if state.unknown_tables:
        parts.append(f"leaving non-StarPunk table(s) {', '.join(state.unknown_tables)} alone")
    return ", ".join(parts) + f"; stamping {state.revision}."


def alembic_config(database_url: str, **attributes: Any) -> Config:
    """An Alembic configuration for this project's scripts, without alembic.ini.

    No ini file means env.py leaves the application's logging alone.
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes.update(database_url=database_url, **attributes)
    return config


def upgrade_database(
    database_url: str,
    target: str = "head",
    *,
    backup: bool = True,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
) -> UpgradeReport:
    """`alembic upgrade TARGET` on this database, with detection, stamping and backup."""
    from alembic import command

    config = alembic_config(database_url, backup=backup, busy_timeout=busy_timeout)
    command.upgrade(config, target)
    return config.attributes["report"]
