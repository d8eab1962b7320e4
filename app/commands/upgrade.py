"""Running Alembic on a StarPunk database safely: one locked transaction, a backup, clear refusals.

`run_online` is what `alembic/env.py` calls; `upgrade_database` is how `ensure_schema` and
`starpunk-db` call Alembic. Either way the work is the same:

1. check the file is a sound SQLite database (else refuse, touching nothing);
2. `BEGIN IMMEDIATE`: take SQLite's write lock first, so that of several workers starting
   at once one migrates and the others wait for it, then find nothing to do;
3. detect the state (adoption.detection) and, if there is work, check every page of the file
   (foundation.integrity: a damaged file is refused) and write a backup next to it;
4. repair and stamp a file Alembic has never seen, then run the revisions;
5. check no foreign key was broken, and commit. Any failure rolls all of it back.

SQLite's Python driver commits DDL on its own; here it is put in autocommit mode and the
transaction is begun explicitly, so that the DDL of every revision is part of it.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy
from sqlalchemy.engine import Connection, Engine

from ..adoption import bookkeeping, repairs
from ..evolution.schema_guard import guarding
from ..foundation import advice, interrupts, reading, refusals
from ..foundation.backup import discard_backup, remove_leftovers, require_room, reserve_backup, write_backup
from ..foundation.database_files import check_database_file, check_writable, require_database_file, roll_back_left_journal
from ..foundation.engines import READ_ONLY, READER_PATIENCE, READER_PAUSE, create_engine
from ..foundation.errors import UpgradeRefused
from ..foundation.integrity import refuse_damaged
from ..foundation.locations import DEFAULT_BUSY_TIMEOUT, database_file, resolve_database_url
from ..foundation.scripts import alembic_config
from ..schema.credentials import plaintext_credentials, private_backup_notice
from . import foreign_keys, plan
from .planned_state import PlannedState
from .upgrade_report import UpgradeReport, detected_sentence

if TYPE_CHECKING:
    from alembic.runtime.environment import EnvironmentContext
    from alembic.runtime.migration import MigrationContext

log = logging.getLogger(__name__)


@dataclass
class UpgradeOptions:
    backup: bool = True
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    planned: PlannedState | None = None  # what a command's plan saw (downgrade, stamp): checked under the lock

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
            raise UpgradeRefused(f"{shown} is not a number of seconds; give one, e.g. -x busy_timeout={DEFAULT_BUSY_TIMEOUT:g}.")
        return cls(backup=bool(backup), busy_timeout=busy_timeout, planned=attributes.get("planned_state"))


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


def run_online(context: EnvironmentContext, configure: Callable[..., None]) -> None:
    """env.py's online mode: detect, back up, repair, stamp, migrate, in one transaction.

    Everything that goes wrong, Ctrl-C and SIGTERM included, leaves as `UpgradeRefused`
    (app.refusals) with the database as it was and nothing new beside it.
    """
    config = context.config
    attempt = refusals.Attempt()
    report = UpgradeReport(database="")
    config.attributes["report"] = report
    with interrupts.interrupts_as_exceptions(), refusals.boundary(attempt):
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
        # `alembic` found the file through the environment: advice names it, to run anywhere
        # (a caller's connection names no file: its advice stays as the caller set it).
        naming = (
            advice.advising_as(advice.program_name(), advice.named_for_advice(report.database))
            if path is not None
            else contextlib.nullcontext()
        )
        try:
            with naming:
                _run(context, configure, options, path, writes, report, attempt)
        except BaseException as error:
            if report.committed and isinstance(error, Exception):
                # The change is committed and the report says what it is (backup included): what
                # failed after it (closing the connection, say) undoes nothing: not a refusal.
                log.warning("%s: the change is committed; afterwards: %s", attempt.subject, error, exc_info=error)
                return
            with interrupts.interrupts_held():
                roll_back_left_journal(path)
                if new_file and path is not None and path.exists() and path.stat().st_size == 0:
                    path.unlink()  # SQLite created it to find it empty; a refusal leaves nothing new
                if report.backup is not None and not report.committed:
                    # The database is as it was: a copy of it is only clutter (and fills disks
                    # when a container restarts in a loop).
                    discard_backup(report.backup)
                    report.backup = None
            raise


def _run(
    context: EnvironmentContext,
    configure: Callable[..., None],
    options: UpgradeOptions,
    path: Path | None,
    writes: bool,
    report: UpgradeReport,
    attempt: refusals.Attempt,
) -> None:
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
                    missing = path if path is not None and not path.exists() else None
                    context.config.print_stdout(detected_sentence(state, read_only=True, missing=missing))
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
                with interrupts.interrupts_held():  # a signal now must not undo the record of a commit
                    transaction.commit()
                    report.committed = True
                    interrupts.change_committed()
                if report.backup is not None and report.backup_credentials:
                    change = getattr(migration_context.opts.get("fn"), "__name__", "upgrade")
                    log.warning("%s", private_backup_notice(report.backup, report.backup_credentials, change))
                return
            except (sqlalchemy.exc.OperationalError, sqlite3.OperationalError) as error:
                original = getattr(error, "orig", error)
                if not getattr(original, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
                    raise
            finally:
                if not report.committed:
                    _roll_back(connection, transaction)
            # Readers kept SQLite from writing: everything is released; try again shortly.
            log.info("readers still hold %s; trying again", attempt.named)
            if report.backup is not None:
                # Other programs may write while the lock is released: the next attempt copies
                # the file as it then is, under its own lock.
                with interrupts.interrupts_held():
                    discard_backup(report.backup)
                    log.info("removed %s; the next attempt writes the backup again", report.backup)
                    report.backup = None
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


def _migrate(
    connection: Connection,
    context: EnvironmentContext,
    migration_context: MigrationContext,
    options: UpgradeOptions,
    path: Path | None,
    report: UpgradeReport,
    attempt: refusals.Attempt,
) -> None:
    """One attempt, inside the caller's transaction: nothing here commits."""
    report.applied.clear()
    attempt.running = None
    if path is not None:
        remove_leftovers(path)
    state = bookkeeping.inspect_database(connection, Path(context.script.dir))
    report.state = state
    if options.planned is not None:
        options.planned.check(state, attempt.subject)  # before the target is judged from a state the plan never saw
    steps = plan.planned_steps(state, migration_context)
    repairs.require_adopted_revisions(state, steps)
    has_work = bool(steps) or state.needs_stamp
    if state.needs_stamp:
        log.info("%s", detected_sentence(state))
    if has_work and path is not None:
        check_writable(path)
        if path.exists() and path.stat().st_size > 0:
            refuse_damaged(connection, path)  # before the backup: a copy of damage helps no one
            require_room(path, backup=options.backup)
            if options.backup:
                journal_mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
                credentials = plaintext_credentials(connection)
                with interrupts.interrupts_held():  # reserved and recorded at once: the clean-up knows it
                    report.backup = reserve_backup(path, state.label, private=bool(credentials))
                write_backup(path, report.backup, write_ahead_log=journal_mode == "wal")
                log.info("backup written to %s", report.backup)
                report.backup_credentials = credentials
    # Only violations the upgrade itself introduces count (StarPunk ran with keys off); read
    # before the repairs, which may set a table aside until its revision creates it.
    violations_before = foreign_keys.violations(connection, state, context) if has_work else Counter()
    if state.needs_stamp:
        repairs.adopt(connection, state, migration_context)
    report.start_steps(steps, attempt)
    # Adopted tables get their rows back as their revision runs; the guard refuses a revision
    # that loses what SQLite hides (triggers, AUTOINCREMENT, CHECKs...).
    with repairs.taking_back(connection, state, migration_context), guarding(connection, migration_context):
        context.run_migrations()
    attempt.running = None
    broken = foreign_keys.violations(connection, state, context) - violations_before if has_work else Counter()
    if broken:
        raise foreign_keys.refusal_for(broken, state, context)
    heads = migration_context.get_current_heads()
    report.revision = heads[0] if heads else None


def upgrade_database(
    database_url: str,
    target: str = "head",
    *,
    backup: bool = True,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    planned: PlannedState | None = None,
) -> UpgradeReport:
    """`alembic upgrade TARGET` on this database, with detection, stamping and backup; with
    `planned`, only if the file is still in the state a plan shown to the operator saw."""
    attempt = refusals.Attempt(where=database_file(database_url) or database_url, busy_timeout=busy_timeout)
    with interrupts.interrupts_as_exceptions(), refusals.boundary(attempt):
        from alembic import command  # a few tenths of a second: Ctrl-C meanwhile gets the sentence too

        config = alembic_config(database_url, backup=backup, busy_timeout=busy_timeout, planned_state=planned)
        command.upgrade(config, target)
    report: UpgradeReport = config.attributes["report"]
    return report
