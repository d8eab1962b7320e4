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

from app import adoption, bookkeeping, foreign_keys, plan, reading, refusals
from app.backup import backup_path, discard_backup, remove_stale_partials, require_room, write_backup
from app.db import DEFAULT_BUSY_TIMEOUT, SCRIPT_LOCATION, UpgradeRefused, database_file, resolve_database_url, sqlite_uri
from app.schema_guard import guarding

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext
    from alembic.runtime.migration import MigrationInfo, MigrationContext

log = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"
# An execution option: this connection only reads, so it begins with a plain BEGIN.
READ_ONLY = "starpunk_read_only"
# Waiting for the write lock (another worker migrating) happens in slices this long, so that
# Ctrl-C and SIGTERM are answered while waiting.
WRITER_POLL = 0.25
# Once the write lock is held, SQLite waits only for readers (at commit, or when spilling
# pages): each wait is this short, because meanwhile no new reader can start (the site is
# down). When readers do not let go the transaction is rolled back, releasing everything,
# and run again after READER_PAUSE, for at most READER_PATIENCE (or the busy timeout).
READER_WAIT = 2.0
READER_PAUSE = 1.0
READER_PATIENCE = 30.0


def create_engine(database_url: str, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Engine:
    """An engine whose SQLite transactions include DDL and take the write lock up front.

    Foreign keys stay off on these connections: a table rebuild (drop, then rename a copy)
    would otherwise delete every ON DELETE CASCADE child row. `PRAGMA foreign_key_check`
    runs before commit instead. The write lock is waited for up to `busy_timeout` (another
    worker migrating); once held, waits for readers are short (READER_WAIT).
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
        if connection.get_execution_options().get(READ_ONLY, False):
            connection.exec_driver_sql("BEGIN")
        else:
            take_write_lock(connection.connection.dbapi_connection, busy_timeout)

    return engine


def take_write_lock(dbapi_connection: Any, busy_timeout: float) -> None:
    """BEGIN IMMEDIATE, waiting up to `busy_timeout` for another writer; then short waits."""
    deadline = time.monotonic() + busy_timeout
    while True:
        remaining = max(0.0, deadline - time.monotonic())
        dbapi_connection.execute(f"PRAGMA busy_timeout = {int(min(remaining, WRITER_POLL) * 1000)}")
        try:
            dbapi_connection.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError as error:
            if not getattr(error, "sqlite_errorname", "").startswith("SQLITE_BUSY") or remaining <= 0:
                raise
    dbapi_connection.execute(f"PRAGMA busy_timeout = {int(min(READER_WAIT, busy_timeout) * 1000)}")


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
    if path.with_name(path.name + "-journal").exists() or path.with_name(path.name + "-wal").exists():
        # After a crash the file's bytes are not its content: SQLite rolls the journal back
        # (or replays the log) first, and says so itself if the file is damaged.
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
    """Turn whatever goes wrong into one sentence for the operator (app.refusals)."""
    with refusals.boundary(refusals.Attempt(where=path, busy_timeout=busy_timeout, action="reading")):
        yield


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
            if backup.strip().lower() not in ("true", "yes", "1", "on", "false", "no", "0", "off"):
                raise UpgradeRefused(f"-x backup={backup} is neither true nor false; use -x backup=false to skip the backup.")
            backup = backup.strip().lower() in ("true", "yes", "1", "on")
        given = attributes.get("busy_timeout", arguments.get("busy_timeout", DEFAULT_BUSY_TIMEOUT))
        try:
            busy_timeout = float(given)
        except (TypeError, ValueError):
            busy_timeout = -1.0
        if not 0 <= busy_timeout < float("inf"):
            shown = f"-x busy_timeout={given}" if "busy_timeout" not in attributes else f"busy_timeout {given!r}"
            raise UpgradeRefused(
                f"{shown} is not a number of seconds; give one, e.g. -x busy_timeout={DEFAULT_BUSY_TIMEOUT:g}."
            )
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
    committed: bool = False
    _step_started: float = 0.0
    _steps: list[Any] = field(default_factory=list)
    _attempt: refusals.Attempt | None = None

    def start_steps(self, steps: list[Any] | None = None, attempt: refusals.Attempt | None = None) -> None:
        self._step_started = time.perf_counter()
        self._steps, self._attempt = list(steps or []), attempt
        self._announce_running()

    def _announce_running(self) -> None:
        """Tell the boundary which revision runs now, so a failure can name it."""
        if self._attempt is None:
            return
        upcoming = self._steps[len(self.applied)] if len(self.applied) < len(self._steps) else None
        script = getattr(upcoming, "revision", None)
        if script is None:
            self._attempt.running = None
            return
        description = (script.doc or "").strip().splitlines()[0] if script.doc else ""
        self._attempt.running = f"revision {script.revision}" + (f" ({description})" if description else "")

    def step_applied(self, *, ctx: MigrationContext, step: MigrationInfo, heads: Any, run_args: Any) -> None:
        now = time.perf_counter()
        script = step.up_revision
        applied = AppliedRevision(
            revision=", ".join(step.destination_revision_ids) if step.is_stamp else step.up_revision_id,
            description=(script.doc or "").strip().splitlines()[0] if script is not None and not step.is_stamp else "",
            upgrade=step.is_upgrade,
            seconds=now - self._step_started,
        )
        self._step_started = now
        self.applied.append(applied)
        verb = "stamped" if step.is_stamp else "applied" if applied.upgrade else "reverted"
        log.info("%s %s  %s  (%.3f s)", verb, applied.revision, applied.description, applied.seconds)
        self._announce_running()


@contextlib.contextmanager
def _connection(context: EnvironmentContext, options: UpgradeOptions, path: Path | None, writes: bool) -> Iterator[Connection]:
    """The connection to work on: the one a caller handed in, else our own engine's (a
    read-only view of the file for the commands that only read)."""
    handed = context.config.attributes.get("connection")
    if isinstance(handed, Connection):
        yield handed
        return
    if handed is not None:
        engine_context: Any = contextlib.nullcontext(handed)
    elif writes:
        engine_context = _disposed_after(create_engine(context.config.attributes["database_url"], options.busy_timeout))
    else:
        engine_context = reading.read_only_engine(path, options.busy_timeout)
    with engine_context as engine, engine.connect() as connection:
        yield connection


@contextlib.contextmanager
def _disposed_after(engine: Engine) -> Iterator[Engine]:
    try:
        yield engine
    finally:
        engine.dispose()


def require_database_file(database_url: str) -> Path:
    """StarPunk's database is a SQLite file: anything else is refused before it is touched."""
    path = database_file(database_url)
    if path is not None:
        return path
    try:
        backend = sqlalchemy.make_url(database_url).get_backend_name()
    except Exception:
        raise UpgradeRefused(f"{database_url!r} is neither a file path nor a database URL; give the path of StarPunk's database file.") from None
    if backend == "sqlite":
        raise UpgradeRefused(
            f"{database_url} is an in-memory database, gone when the command ends; give the path of StarPunk's database file."
        )
    raise UpgradeRefused(
        f"{sqlalchemy.make_url(database_url).render_as_string(hide_password=True)} is not a SQLite file, and StarPunk's "
        "database is one; set DATABASE_PATH (or DATABASE_URL=sqlite:///PATH) to StarPunk's database file."
    )


def run_online(context: EnvironmentContext, configure: Callable[..., None]) -> None:
    """env.py's online mode: detect, back up, repair, stamp, migrate, in one transaction.

    Everything that goes wrong, Ctrl-C and SIGTERM included, leaves as `UpgradeRefused`
    (app.refusals) with the database as it was and nothing new beside it.
    """
    config = context.config
    attempt = refusals.Attempt()
    report = UpgradeReport(database="")
    config.attributes["report"] = report
    with refusals.interrupts_as_exceptions(), refusals.boundary(attempt):
        writes = plan.writes(context)
        if "database_url" not in config.attributes:  # resolving the default creates data/
            config.attributes["database_url"] = resolve_database_url(create_folder=writes)
        report.database = config.attributes["database_url"]
        attempt.where = report.database
        attempt.foreign_exceptions_pass = "connection" in config.attributes
        path = None if "connection" in config.attributes else require_database_file(report.database)
        attempt.where = path or report.database
        options = UpgradeOptions.from_context(context)
        attempt.busy_timeout = options.busy_timeout
        if path is not None:
            check_database_file(path)
        new_file = path is not None and not path.exists()
        try:
            _run(context, configure, options, path, writes, report, attempt)
        except BaseException:
            with refusals.interrupts_held():
                _roll_back_left_journal(path)
                if new_file and path.exists() and path.stat().st_size == 0:
                    path.unlink()  # SQLite created it to find it empty; a refusal leaves nothing new
                if report.backup is not None and not report.committed:
                    # The database is as it was: a copy of it is only clutter (and fills disks
                    # when a container restarts in a loop).
                    discard_backup(report.backup)
                    report.backup = None
            raise


def _roll_back_left_journal(path: Path | None) -> None:
    """After a failed write (disk full, file-size limit) SQLite leaves its journal for the
    next opener to roll back; be that opener now, so that the file is as it was, byte for byte."""
    if path is None or not path.with_name(path.name + "-journal").exists():
        return
    try:
        database = sqlite3.connect(sqlite_uri(path), uri=True, timeout=1)
        try:
            database.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        finally:
            database.close()
    except sqlite3.Error:
        log.debug("could not roll back the journal of %s", path, exc_info=True)


def _run(context: EnvironmentContext, configure: Callable[..., None], options: UpgradeOptions, path: Path | None,
         writes: bool, report: UpgradeReport, attempt: refusals.Attempt) -> None:
    with _connection(context, options, path, writes) as connection:
        # dont_mutate: Alembic would otherwise create alembic_version even for `check`.
        configure(connection=connection, on_version_apply=report.step_applied, **({} if writes else {"dont_mutate": True}))
        migration_context = context.get_context()
        if not writes:
            connection.execution_options(**{READ_ONLY: True})
            with connection.begin() if not connection.in_transaction() else contextlib.nullcontext():
                # check and autogenerate report a schema unlike its stamp as operations.
                state = bookkeeping.inspect_database(
                    connection, Path(context.script.dir), compare_schema=not plan.compares_with_models(context)
                )
                report.state = state
                if not state.managed:
                    context.config.print_stdout(_detected_sentence(state, read_only=True))
                context.run_migrations()
            return
        if connection.in_transaction():  # a caller's transaction: theirs to commit
            _migrate(connection, context, migration_context, options, path, report, attempt)
            return
        patience = min(options.busy_timeout, READER_PATIENCE)
        started = time.monotonic()
        while True:
            transaction = connection.begin()  # waits for another migrating worker (busy timeout)
            try:
                _migrate(connection, context, migration_context, options, path, report, attempt)
                with refusals.interrupts_held():  # a signal now must not undo the record of a commit
                    transaction.commit()
                    report.committed = True
                    refusals.change_committed()
                return
            except (sqlalchemy.exc.OperationalError, sqlite3.OperationalError) as error:
                original = getattr(error, "orig", error)
                if not getattr(original, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
                    raise
            finally:
                if not report.committed:
                    _roll_back(connection, transaction)
            # Readers kept SQLite from writing: everything is released; try again shortly.
            log.info("readers still hold %s; trying again", attempt.subject)
            if time.monotonic() - started + READER_PAUSE > patience:
                raise UpgradeRefused(
                    f"{attempt.subject} is open in another program that keeps reading it (a running StarPunk worker, "
                    f"in rollback-journal mode), so the upgrade could not be written in {patience:g} seconds; nothing "
                    "was changed: stop StarPunk during the upgrade (or switch the database to WAL: "
                    "PRAGMA journal_mode=WAL), then try again."
                )
            time.sleep(READER_PAUSE)


def _roll_back(connection: Connection, transaction: Any) -> None:
    """Release every lock, whatever state SQLAlchemy thinks the transaction is in (after a
    failed COMMIT SQLite keeps the transaction and its locks)."""
    transaction.rollback()  # also forgets a transaction whose COMMIT failed
    raw = connection.connection.dbapi_connection if not connection.invalidated else None
    if raw is not None and raw.in_transaction:
        raw.rollback()


def _migrate(connection: Connection, context: EnvironmentContext, migration_context: MigrationContext,
             options: UpgradeOptions, path: Path | None, report: UpgradeReport, attempt: refusals.Attempt) -> None:
    """One attempt, inside the caller's transaction: nothing here commits."""
    report.applied.clear()
    attempt.running = None
    if path is not None:
        remove_stale_partials(path)
    state = bookkeeping.inspect_database(connection, Path(context.script.dir))
    report.state = state
    steps = plan.planned_steps(state, migration_context)
    has_work = bool(steps) or state.needs_stamp
    if state.needs_stamp:
        log.info("%s", _detected_sentence(state))
    if has_work and path is not None:
        check_writable(path)
        if path.exists() and path.stat().st_size > 0:
            require_room(path, backup=options.backup and report.backup is None)
            if options.backup and report.backup is None:
                journal_mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
                report.backup = backup_path(path, state)  # named first: the clean-up knows it whatever happens
                try:
                    write_backup(path, report.backup, write_ahead_log=journal_mode == "wal")
                except BaseException:
                    report.backup = None  # nothing of it is left; a retry writes it again
                    raise
                log.info("backup written to %s", report.backup)
    if state.needs_stamp:
        adoption.adopt(connection, state, migration_context)
    # Only violations the upgrade itself introduces count (StarPunk ran with keys off).
    violations_before = foreign_keys.violations(connection, state, context) if has_work else set()
    report.start_steps(steps, attempt)
    # Refuses a revision that loses what SQLite hides (triggers, AUTOINCREMENT, CHECKs...).
    with guarding(connection, migration_context):
        context.run_migrations()
    attempt.running = None
    broken = foreign_keys.violations(connection, state, context) - violations_before if has_work else set()
    if broken:
        raise foreign_keys.refusal_for(broken, state, context)
    heads = migration_context.get_current_heads()
    report.revision = heads[0] if heads else None


def _detected_sentence(state: adoption.DatabaseState, read_only: bool = False) -> str:
    if state.revision is None:
        return "Detected an empty database: every revision " + ("would" if read_only else "will") + " run from the start."
    parts = [f"Detected StarPunk state '{state.name}', which is revision {state.revision}"]
    if state.repairs:
        parts.append(f"after {len(state.repairs)} repair(s) ({'; '.join(state.repairs)})")
    if state.missing_migration_rows:
        parts.append(f"adding {len(state.missing_migration_rows)} schema_migrations row(s)")
    if state.unknown_tables:
        parts.append(f"leaving non-StarPunk table(s) {', '.join(state.unknown_tables)} alone")
    if read_only:
        return ", ".join(parts) + f"; an upgrade would stamp {state.revision} (nothing was written)."
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
    attempt = refusals.Attempt(where=database_file(database_url) or database_url, busy_timeout=busy_timeout)
    with refusals.interrupts_as_exceptions(), refusals.boundary(attempt):
        from alembic import command  # a few tenths of a second: Ctrl-C meanwhile gets the sentence too

        config = alembic_config(database_url, backup=backup, busy_timeout=busy_timeout)
        command.upgrade(config, target)
    return config.attributes["report"]
