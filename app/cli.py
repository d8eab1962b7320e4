"""`starpunk-db`: the StarPunk database's state and upgrade, for operators.

    starpunk-db status [--json] [PATH_OR_URL]
    starpunk-db upgrade [--to REV] [--no-backup] [--dry-run | --sql] [PATH_OR_URL]

A plain path means a SQLite file; without one, the same database as `alembic` uses
(DATABASE_URL, else DATABASE_PATH, else data/starpunk.db).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from app import adoption, bookkeeping, reading, refusals
from app.backup import backup_path
from app.db import DEFAULT_BUSY_TIMEOUT, UpgradeRefused, database_file, head_revision, resolve_database_url, sqlite_url
from app.upgrade import (
    require_database_file,
    alembic_config,
    check_database_file,
    refusing_sqlite_errors,
    upgrade_database,
)

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _database_url(argument: str | None, *, create_folder: bool = True) -> str:
    """A URL stays a URL; anything else is a path, whatever characters it holds."""
    if argument is None:
        return resolve_database_url(create_folder=create_folder)
    return argument if _URL.match(argument) else sqlite_url(argument)


@dataclass(frozen=True)
class Status:
    database: str  # as the operator knows it: the file's path, else the URL
    state: adoption.DatabaseState
    path: Path | None = None

    @property
    def pending(self) -> list[str]:
        return [script.revision for script in revisions_between(self.state.revision, "head")]

    def as_dict(self) -> dict:
        return {
            "database": self.database,
            "state": self.state.name,
            "revision": self.state.revision,
            "managed": self.state.managed,
            "head": head_revision(),
            "pending": self.pending,
            "repairs": list(self.state.repairs),
            "schema_migrations": list(self.state.recorded_migrations),
            "unknown_tables": list(self.state.unknown_tables),
        }


def read_status(database_url: str) -> Status:
    """The database's state, read without writing a byte to the file or a file beside it
    (after a crash, from a private copy: app.reading)."""
    path = require_database_file(database_url)
    check_database_file(path)
    if not path.exists() or path.stat().st_size == 0:
        return Status(str(path), adoption.DatabaseState(adoption.release_name(None), None, managed=False), path)
    with refusing_sqlite_errors(path, DEFAULT_BUSY_TIMEOUT), reading.read_only_engine(path) as engine:
        with engine.connect() as connection, connection.begin():
            state = bookkeeping.inspect_database(connection)
    return Status(str(path), state, path)


def print_status(status: Status) -> None:
    facts = status.as_dict()
    how = "managed by Alembic" if status.state.managed else "not yet managed by Alembic: detected from its schema"
    pending = facts["pending"]
    print(f"Database:  {facts['database']}")
    print(f"State:     {facts['state']} ({how})")
    print(f"Revision:  {facts['revision'] or '(none)'}")
    print(f"Head:      {facts['head']}")
    print(f"Pending:   {len(pending)} revision(s)" + (f": {' '.join(pending)}" if pending else " (up to date)"))
    if status.state.needs_stamp:
        print(f"On upgrade: stamp {status.state.revision}" + (f" after {len(status.state.repairs)} repair(s)" if status.state.repairs else ""))
    if status.state.unknown_tables:
        print(f"Not StarPunk's (left alone): {', '.join(status.state.unknown_tables)}")


def print_plan(status: Status, target: str, backup: bool) -> None:
    """`upgrade --dry-run`: what an upgrade would do, without doing any of it."""
    print_status(status)
    for statement in status.state.repairs:
        print(f"Repair:    {statement}")
    for name in status.state.missing_migration_rows:
        print(f"Record:    schema_migrations row {name}")
    steps = revisions_between(status.state.revision, target)
    for script in steps:
        print(f"Apply:     {script.revision}  {(script.doc or '').strip().splitlines()[0]}")
    path = status.path
    if backup and path is not None and path.exists() and path.stat().st_size > 0 and (steps or status.state.needs_stamp):
        print(f"Backup:    {backup_path(path, status.state).name} (next to the database)")
    print("Dry run: nothing was written.")


def revisions_between(current: str | None, target: str) -> list:
    """The revision scripts an upgrade from `current` to `target` runs, in order."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(""))
    return list(reversed(list(script.iterate_revisions(target, current))))


def print_sql(database_url: str, status: Status, target: str) -> None:
    """`upgrade --sql`: the SQL an upgrade would run, for a DBA to read. Writes nothing."""
    from alembic import command

    for statement in adoption.adoption_sql(status.state):
        print(statement.strip() + ";\n")
    start = status.state.revision
    config = alembic_config(database_url, stdout=sys.stdout)
    command.upgrade(config, f"{start}:{target}" if start else target, sql=True)


@contextlib.contextmanager
def progress_on_stdout() -> Iterator[None]:
    """Show the app's progress lines on stdout, as plain lines, for the length of the command;
    other loggers are untouched and the `app` logger is left as it was found."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("app")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="starpunk-db", description="StarPunk's database: state and upgrades.")
    commands = parser.add_subparsers(dest="command", required=True)
    status_parser = commands.add_parser("status", help="what the database is and what an upgrade would do (read-only)")
    status_parser.add_argument("--json", action="store_true", help="one JSON object instead of a report")
    status_parser.add_argument("database", nargs="?", metavar="PATH_OR_URL")
    upgrade_parser = commands.add_parser("upgrade", help="bring the database to head (or --to REV)")
    upgrade_parser.add_argument("--to", default="head", metavar="REV", help="target revision (default: head)")
    upgrade_parser.add_argument("--no-backup", action="store_true", help="do not copy the database before changing it")
    upgrade_parser.add_argument("--busy-timeout", type=float, default=DEFAULT_BUSY_TIMEOUT, metavar="SECONDS",
                                help=f"how long to wait for another writer (default {DEFAULT_BUSY_TIMEOUT:g})")
    mode = upgrade_parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="show the plan and write nothing")
    mode.add_argument("--sql", action="store_true", help="print the SQL that would run and write nothing")
    upgrade_parser.add_argument("database", nargs="?", metavar="PATH_OR_URL")
    arguments = parser.parse_args(argv)
    try:
        with refusals.interrupts_as_exceptions(), refusals.boundary(refusals.Attempt(action=arguments.command)):
            return _run(arguments)
    except UpgradeRefused as refusal:
        print(f"starpunk-db: {refusal}", file=sys.stderr)
        return 1


def _run(arguments: argparse.Namespace) -> int:
    writes = arguments.command == "upgrade" and not (arguments.dry_run or arguments.sql)
    database_url = _database_url(arguments.database, create_folder=writes)
    if arguments.command == "status":
        status = read_status(database_url)
        if arguments.json:
            print(json.dumps(status.as_dict(), indent=2))
        else:
            print_status(status)
    elif arguments.dry_run:
        print_plan(read_status(database_url), arguments.to, backup=not arguments.no_backup)
    elif arguments.sql:
        print_sql(database_url, read_status(database_url), arguments.to)
    else:
        started = time.perf_counter()
        with progress_on_stdout():
            report = upgrade_database(database_url, arguments.to, backup=not arguments.no_backup,
                                      busy_timeout=arguments.busy_timeout)
        elapsed = time.perf_counter() - started
        shown = database_file(database_url) or database_url
        if report.applied or (report.state and report.state.needs_stamp):
            print(f"Done: {shown} is at revision {report.revision}, "
                  f"{len(report.applied)} revision(s) applied in {elapsed:.2f} s.")
        else:
            print(f"Nothing to do: {shown} is at revision {report.revision}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
