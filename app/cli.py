"""`starpunk-db`: the StarPunk database, for operators: state, history, upgrade, downgrade,
stamp, backups, restore. `starpunk-db` alone, or `starpunk-db COMMAND --help`, says more.

This module parses arguments and prints; the work is done in app.upgrade, app.downgrade,
app.stamp, app.backup_listing and app.restore.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from app import adoption, bookkeeping, reading, refusals
from app.backup import backup_path
from app.db import DEFAULT_BUSY_TIMEOUT, UpgradeRefused, as_database_url, database_file, head_revision, resolve_database_url
from app.upgrade import (
    require_database_file,
    alembic_config,
    check_database_file,
    refusing_sqlite_errors,
    upgrade_database,
)

def _database_url(argument: str | None, *, create_folder: bool = True) -> str:
    if argument is None:
        return resolve_database_url(create_folder=create_folder)
    return as_database_url(argument)


MISSING = "missing"


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
    if not path.exists() and not path.is_symlink():
        return Status(str(path), adoption.DatabaseState(MISSING, None, managed=False), path)
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
    if status.state.name == MISSING:
        how = "no file at this path; StarPunk's first start or `starpunk-db upgrade` creates it"
        # Only the default's folder, data/, is created by an upgrade.
        if status.path is not None and not status.path.parent.is_dir() and str(status.path) != "data/starpunk.db":
            how = f"no file at this path, nor its folder {status.path.parent}: create the folder, or check the path"
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


DATABASE_HELP = (
    "Database: the SQLite file named on the command line (a path, whatever characters it holds, "
    "or a sqlite:/// URL), else $DATABASE_URL, else $DATABASE_PATH, else data/starpunk.db in the "
    "current folder."
)
BACKUP_HELP = (
    "Backups:  written next to the database file, as <file>.backup-<revision or state>-<UTC time>, "
    "never deleted for you; `starpunk-db backups` lists them, `starpunk-db restore` goes back to one."
)
OVERVIEW = f"""\
Read only:  status, history, backups (and upgrade --dry-run / --sql, any --dry-run).
Writes:     upgrade, downgrade, stamp, restore; each backs the file up first (upgrade: unless --no-backup).

{textwrap.fill(DATABASE_HELP, 96, subsequent_indent="          ")}
{textwrap.fill(BACKUP_HELP, 96, subsequent_indent="          ")}

Exit status: 0 done, or nothing to do; 1 refused: one sentence on stderr says what was found and
what to do, and the database was not changed; 2 the command line itself is wrong.
`starpunk-db COMMAND --help` says what a command reads and writes."""


def _version() -> str:
    from importlib import metadata

    try:
        installed = metadata.version("starpunk-migrations")
    except metadata.PackageNotFoundError:
        installed = "(not installed)"
    return f"starpunk-db {installed}, schema head {head_revision()}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="starpunk-db",
        description="StarPunk's database: what it is, and every change to it, for operators.",
        epilog=OVERVIEW,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, summary: str, details: str) -> argparse.ArgumentParser:
        description = "\n\n".join([
            summary[0].upper() + summary[1:] + ".",
            textwrap.fill(details, 96),
            textwrap.fill(DATABASE_HELP, 96, subsequent_indent="          ")
            + "\n" + textwrap.fill(BACKUP_HELP, 96, subsequent_indent="          "),
        ])
        return commands.add_parser(name, help=summary, description=description,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)

    def busy_timeout(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--busy-timeout", type=float, default=DEFAULT_BUSY_TIMEOUT, metavar="SECONDS",
                         help=f"how long to wait for another writer (default {DEFAULT_BUSY_TIMEOUT:g})")

    status = command("status", "what the database is and what an upgrade would do",
                     "Read-only: never writes, creates nothing (a missing file is reported as missing).")
    status.add_argument("--json", action="store_true", help="one JSON object instead of a report")
    status.add_argument("database", nargs="?", metavar="PATH_OR_URL")

    history = command("history", "every revision, with the StarPunk release it belongs to; the database's own marked",
                      "Read-only: never writes.")
    history.add_argument("database", nargs="?", metavar="PATH_OR_URL")

    upgrade = command("upgrade", "bring the database to head (or --to REV)",
                      "Writes: detects and stamps a file Alembic has never seen, then runs the revisions, all in "
                      "one transaction; a backup of an existing file is written first (unless --no-backup).")
    upgrade.add_argument("--to", default="head", metavar="REV", help="target revision (default: head)")
    upgrade.add_argument("--no-backup", action="store_true", help="do not copy the database before changing it")
    busy_timeout(upgrade)
    mode = upgrade.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="show the plan and write nothing")
    mode.add_argument("--sql", action="store_true", help="print the SQL that would run and write nothing")
    upgrade.add_argument("database", nargs="?", metavar="PATH_OR_URL")

    downgrade = command("downgrade", "go back to an earlier revision (--to REV, or base)",
                        "Writes, after a backup (always). Lists what each reverted revision cannot bring back; when "
                        "that is anything, nothing is done without --yes.")
    downgrade.add_argument("--to", required=True, metavar="REV", help="the revision to go back to")
    downgrade.add_argument("--yes", action="store_true", help="go ahead although data listed as lost is lost")
    downgrade.add_argument("--dry-run", action="store_true", help="show what would be reverted and lost; write nothing")
    busy_timeout(downgrade)
    downgrade.add_argument("database", nargs="?", metavar="PATH_OR_URL")

    stamp = command("stamp", "record the database's revision without running any",
                    "Writes alembic_version (and, for a file Alembic has never seen, the repairs and "
                    "schema_migrations rows an upgrade would add), after a backup. Without --force: the revision "
                    "detection finds from the schema. With --force REV: that revision, whatever the schema "
                    "(for a file detection cannot place). It always says what it does first.")
    stamp.add_argument("--force", metavar="REV", help="stamp this revision, whatever detection says")
    stamp.add_argument("--dry-run", action="store_true", help="say what would be stamped; write nothing")
    busy_timeout(stamp)
    stamp.add_argument("database", nargs="?", metavar="PATH_OR_URL")

    backups = command("backups", "the backups next to the database, newest first",
                      "Read-only: never writes, not even beside the backups. For each: when it was taken, the "
                      "revision and StarPunk state it holds, its size, its path.")
    backups.add_argument("--json", action="store_true", help="a JSON list of objects instead of a table")
    backups.add_argument("database", nargs="?", metavar="PATH")

    restore = command("restore", "replace the database's content with a backup's",
                      "Writes: checks the backup (SQLite's integrity check, a StarPunk state), takes the write lock "
                      "like an upgrade, backs up the live file (so the restore can be undone), then copies the "
                      "backup in through SQLite: the same file, permissions and journal mode; other connections see "
                      "the old content or the new, never a mix. A damaged or foreign backup is refused, the live "
                      "file untouched.")
    restore.add_argument("backup", metavar="BACKUP", help="the backup file to go back to")
    busy_timeout(restore)
    restore.add_argument("database", nargs="?", metavar="PATH")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if arguments.command is None:
        parser.print_help()
        return 0
    try:
        with refusals.interrupts_as_exceptions(), refusals.boundary(refusals.Attempt(action=arguments.command)):
            return _run(arguments)
    except UpgradeRefused as refusal:
        print(f"starpunk-db: {refusal}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Output piped into a reader that stopped early (`| head`): stop quietly, as cat does;
        # Python would otherwise complain again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
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
    elif arguments.command == "history":
        run_history(database_url)
    elif arguments.command == "downgrade":
        return run_downgrade(database_url, arguments)
    elif arguments.command == "stamp":
        return run_stamp(database_url, arguments)
    elif arguments.command == "backups":
        run_backups(_file(database_url), arguments.json)
    elif arguments.command == "restore":
        run_restore(Path(arguments.backup), _file(database_url), arguments.busy_timeout)
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


def _file(database_url: str) -> Path:
    path = database_file(database_url)
    if path is None:
        raise UpgradeRefused(f"{database_url} is not a SQLite file; backups and restore work on a database file's path.")
    return path


def _described(state: adoption.DatabaseState) -> str:
    if state.revision is None:
        return state.name
    return f"{state.name} (revision {state.revision}" + ("" if state.managed else ", detected from its schema") + ")"


def run_history(database_url: str) -> None:
    from app.history import revision_history

    try:
        status = read_status(database_url)
        current, note = status.state.revision, _described(status.state)
        database = status.database
    except UpgradeRefused as refusal:
        current, note, database = None, f"not known: {refusal}", database_file(database_url) or database_url
    head = head_revision()
    print(f"Database:  {database}: {note}")
    print(f"  {'revision':<9} {'release':<12} what it does")
    for entry in revision_history():
        mark = "*" if entry.revision == current else " "
        tail = "  (head)" if entry.revision == head else ""
        print(f"{mark} {entry.revision:<9} {entry.release:<12} {entry.summary}{tail}")
    if current is not None:
        print(f"* the database's revision{'' if status.state.managed else ' (detected, not yet stamped)'}")


def run_downgrade(database_url: str, arguments: argparse.Namespace) -> int:
    from app.downgrade import downgrade_database, plan_downgrade

    status = read_status(database_url)
    if status.state.name == MISSING:
        raise UpgradeRefused(f"There is no database at {status.database}; nothing to downgrade.")
    plan = plan_downgrade(status.state.revision, arguments.to)
    if not plan.reverted:
        print(f"Nothing to do: {status.database} is at revision {status.state.revision}.")
        return 0
    print(f"Database:  {status.database}: {_described(status.state)}")
    print(f"Target:    {plan.target or 'base (no table left)'}")
    for entry in plan.reverted:
        print(f"Revert:    {entry.revision}  {entry.summary}")
        if entry.downgrade_loses:
            print(f"           cannot bring back: {entry.downgrade_loses}")
    if status.path is not None:
        print(f"Backup:    written first, next to the database ({status.path.name}.backup-...)")
    if arguments.dry_run:
        print("Dry run: nothing was written.")
        return 0
    if plan.losses and not arguments.yes:
        print("starpunk-db: this downgrade loses what is listed above and nothing was changed; "
              "run it again with --yes to go ahead (a backup is written first).", file=sys.stderr)
        return 1
    with progress_on_stdout():
        report = downgrade_database(database_url, arguments.to, busy_timeout=arguments.busy_timeout)
    print(f"Done: {status.database} is at revision {report.revision or 'base'}, "
          f"{len(report.applied)} revision(s) reverted" + (f"; the backup is {report.backup}." if report.backup else "."))
    return 0


def run_stamp(database_url: str, arguments: argparse.Namespace) -> int:
    from app.stamp import examine, restamp, stamp_detected

    path = require_database_file(database_url)
    if not path.exists():
        raise UpgradeRefused(f"There is no database at {path}; nothing to stamp.")
    found = examine(database_url, arguments.busy_timeout)
    detected = found.detected
    if arguments.force:
        placed = (f"detection finds {_described(detected)}" if detected
                  else f"detection cannot place it: {found.undetectable.split('; ')[0].rstrip('.')}")
        print(f"Stamping {arguments.force} on {path}, whatever its schema ({found.describe_stamp()}; {placed}).")
        if arguments.dry_run:
            print("Dry run: nothing was written.")
            return 0
        report = restamp(database_url, arguments.force, busy_timeout=arguments.busy_timeout)
    else:
        if detected is None:
            raise UpgradeRefused(found.undetectable)
        if detected.revision is None:
            print(f"Nothing to stamp: {path} holds no StarPunk table; `starpunk-db upgrade` creates the schema.")
            return 0
        if found.stamp_is_right:
            print(f"Nothing to do: {path} is stamped {found.versions[0]}, and its schema is that revision's.")
            return 0
        why = "" if found.versions is None else f"{found.describe_stamp()}; "
        print(f"Stamping {detected.revision} on {path}: {why}detected {_described(detected)}"
              + (f", after {len(detected.repairs)} repair(s)" if detected.repairs else "")
              + (f", adding {len(detected.missing_migration_rows)} schema_migrations row(s)" if detected.missing_migration_rows else "")
              + "; no revision is run.")
        if arguments.dry_run:
            print("Dry run: nothing was written.")
            return 0
        if found.versions is None:
            with progress_on_stdout():
                stamp_detected(database_url, detected, busy_timeout=arguments.busy_timeout)
            print(f"Done: {path} is stamped {detected.revision}.")
            return 0
        report = restamp(database_url, detected.revision, adopting=detected, busy_timeout=arguments.busy_timeout)
    if report.backup:
        print(f"backup written to {report.backup}")
    before = ", ".join(report.previous) or "no stamp"
    print(f"Done: {report.database} is stamped {report.revision} (was: {before}); no revision was run.")
    return 0


def _size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def run_backups(database: Path, as_json: bool) -> None:
    from app.backup_listing import list_backups

    entries = list_backups(database)
    if as_json:
        print(json.dumps([entry.as_dict() for entry in entries], indent=2))
        return
    if not entries:
        print(f"No backups of {database} (they are written next to it, as {database.name}.backup-*).")
        return
    print(f"Backups of {database}, newest first:")
    for entry in entries:
        print(f"  {entry.created:%Y-%m-%d %H:%M:%S} UTC  {entry.revision or '-':<7} {_size(entry.size):>9}  "
              f"{entry.path}  {entry.state}")


def run_restore(backup: Path, database: Path, busy_timeout: float) -> None:
    from app.restore import restore_database

    report = restore_database(backup, database, busy_timeout)
    print(f"Checked:   {backup} is sound (integrity check ok) and holds {_described(report.state)}.")
    if report.undo_backup:
        print(f"Backup:    {database} as it was ({report.previous_state}) is kept as {report.undo_backup}; "
              "restore that to undo this restore.")
    else:
        print(f"Backup:    none needed: there was no database at {database}.")
    print(f"Restored:  {database} now holds the backup's content (journal mode {report.journal_mode}).")
    if report.state.revision != head_revision():
        print("Next:      StarPunk upgrades it at its next start; or run `starpunk-db upgrade` now.")


if __name__ == "__main__":
    sys.exit(main())
