"""`starpunk-db`: the StarPunk database, for operators: state, history, check, upgrade,
downgrade, stamp, backups, restore. `starpunk-db` alone, or `starpunk-db COMMAND --help`, says more.

This module runs a parsed command line and prints what it did; the arguments are in
cli.arguments, the wording of states and plans in cli.printing, the work in commands/.
`flask db` runs the same command lines here (the `flask` module), under its own name and
with the application's database as the default.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..commands.status import MISSING, read_status
from ..commands.upgrade import upgrade_database
from ..foundation import advice, interrupts, refusals
from ..foundation.database_files import require_database_file
from ..foundation.errors import UpgradeRefused
from ..foundation.locations import as_database_url, database_file, resolve_database_url
from ..foundation.scripts import head_revision
from ..schema.credentials import private_backup_notice
from .arguments import FROM_THE_ENVIRONMENT, build_parser
from .printing import described, print_plan, print_sql, print_status, progress_on_stdout, say, size


def _from_the_environment(create_folder: bool) -> str:
    return resolve_database_url(create_folder=create_folder)


def main(
    argv: list[str] | None = None,
    *,
    program: str = advice.STARPUNK_DB,
    advised_program: str | None = None,
    default_database: Callable[[bool], str] = _from_the_environment,
    database_default: str = FROM_THE_ENVIRONMENT,
) -> int:
    """Run one command line; the exit status. `default_database(create_folder)` is the
    database when the command line names none (`database_default` says which, for the help).
    `advised_program`: the program as suggested commands spell it, if not as `program`."""
    parser = build_parser(program, database_default)
    arguments = parser.parse_args(argv)
    if arguments.command is None:
        parser.print_help()
        return 0
    attempt = refusals.Attempt(action=arguments.command)
    try:
        with (
            advice.advising_as(program, arguments.database),
            interrupts.interrupts_as_exceptions(),
            refusals.boundary(attempt),
        ):
            # Only an upgrade creates the default's folder, data/.
            writes = arguments.command == "upgrade" and not (arguments.dry_run or arguments.sql)
            named = arguments.database
            url = as_database_url(named) if named is not None else default_database(writes)
            with advice.advising_as(advised_program or program, advice.named_for_advice(url)):
                return _run(arguments, url, attempt)
    except UpgradeRefused as refusal:
        say(f"{program}: {refusal}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Output piped into a reader that stopped early (`| head`): stop quietly, as cat does;
        # Python would otherwise complain again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _run(arguments: argparse.Namespace, database_url: str, attempt: refusals.Attempt) -> int:
    if arguments.command == "status":
        status = read_status(database_url)
        if arguments.json:
            print(json.dumps(status.as_dict(), indent=2))
        else:
            print_status(status)
    elif arguments.command == "history":
        run_history(database_url)
    elif arguments.command == "check":
        run_check(database_url)
    elif arguments.command == "downgrade":
        return run_downgrade(database_url, arguments, attempt)
    elif arguments.command == "stamp":
        return run_stamp(database_url, arguments, attempt)
    elif arguments.command == "backups":
        run_backups(_file(database_url), arguments.json)
    elif arguments.command == "restore":
        run_restore(Path(arguments.backup), _file(database_url), arguments.busy_timeout, attempt)
    elif arguments.dry_run:
        print_plan(read_status(database_url), arguments.to, backup=not arguments.no_backup)
    elif arguments.sql:
        print_sql(database_url, read_status(database_url), arguments.to)
    else:
        started = time.perf_counter()
        with progress_on_stdout():
            report = upgrade_database(
                database_url, arguments.to, backup=not arguments.no_backup, busy_timeout=arguments.busy_timeout
            )
        elapsed = time.perf_counter() - started
        shown = database_file(database_url) or database_url
        if report.committed:
            attempt.done = f"{shown} was upgraded to revision {report.revision}" + _backup_clause(report.backup)
        if report.applied or (report.state and report.state.needs_stamp):
            say(f"Done: {shown} is at revision {report.revision}, {len(report.applied)} revision(s) applied in {elapsed:.2f} s.")
        else:
            say(f"Nothing to do: {shown} is at revision {report.revision}.")
    return 0


def _backup_clause(backup: Path | None) -> str:
    return f" (its backup is {backup})" if backup else ""


def _file(database_url: str) -> Path:
    path = database_file(database_url)
    if path is None:
        raise UpgradeRefused(f"{database_url} is not a SQLite file; backups and restore work on a database file's path.")
    return path


def run_history(database_url: str) -> None:
    from ..evolution.revision_history import revision_history

    try:
        status = read_status(database_url)
        current, note = status.state.revision, described(status.state)
        database = status.database
    except UpgradeRefused as refusal:
        current, note, database = None, f"not known: {refusal}", str(database_file(database_url) or database_url)
    head = head_revision()
    say(f"Database:  {database}: {note}")
    say(f"  {'revision':<9} {'release':<12} what it does")
    for entry in revision_history():
        mark = "*" if entry.revision == current else " "
        tail = "  (head)" if entry.revision == head else ""
        say(f"{mark} {entry.revision:<9} {entry.release:<12} {entry.summary}{tail}")
    if current is not None:
        say(f"* the database's revision{'' if status.state.managed else ' (detected, not yet stamped)'}")


def run_check(database_url: str) -> None:
    from ..commands.check import check_database

    report = check_database(database_url)
    say(f"Checked:   {report.database} is at head ({report.revision}), and its schema is what the models declare.")


def run_downgrade(database_url: str, arguments: argparse.Namespace, attempt: refusals.Attempt) -> int:
    from ..commands.downgrade import downgrade_database, plan_downgrade

    status = read_status(database_url)
    if status.state.name == MISSING:
        raise UpgradeRefused(f"There is no database at {status.database}; nothing to downgrade.")
    plan = plan_downgrade(status.state.revision, arguments.to)
    if not plan.reverted:
        say(f"Nothing to do: {status.database} is at revision {status.state.revision}.")
        return 0
    say(f"Database:  {status.database}: {described(status.state)}")
    say(f"Target:    {plan.target or 'base (no table left)'}")
    for entry in plan.reverted:
        say(f"Revert:    {entry.revision}  {entry.summary}")
        if entry.downgrade_loses:
            say(f"           cannot bring back: {entry.downgrade_loses}")
    goes_ahead = arguments.yes or not plan.losses
    if status.path is not None and goes_ahead:
        say(f"Backup:    written first, next to the database ({status.path.name}.backup-...)")
    if arguments.dry_run:
        say("Dry run: nothing was written.")
        return 0
    if not goes_ahead:
        raise UpgradeRefused(
            "this downgrade loses what is listed above and nothing was changed; "
            f"run {advice.command(f'downgrade --to {arguments.to} --yes')} to go ahead (a backup is written first)."
        )
    with progress_on_stdout():
        report = downgrade_database(database_url, arguments.to, planned=plan, busy_timeout=arguments.busy_timeout)
    if report.committed:
        attempt.done = f"{status.database} was downgraded to revision {report.revision or 'base'}" + _backup_clause(report.backup)
    say(
        f"Done: {status.database} is at revision {report.revision or 'base'}, "
        f"{len(report.applied)} revision(s) reverted" + (f"; the backup is {report.backup}." if report.backup else ".")
    )
    return 0


def run_stamp(database_url: str, arguments: argparse.Namespace, attempt: refusals.Attempt) -> int:
    from ..commands.stamp import examine, require_known_revision, restamp, stamp_detected

    if arguments.force:
        require_known_revision(arguments.force)  # before anything is announced
    path = require_database_file(database_url)
    if not path.exists():
        raise UpgradeRefused(f"There is no database at {path}; nothing to stamp.")
    found = examine(database_url, arguments.busy_timeout)
    detected = found.detected
    if arguments.force:
        placed = (
            f"detection finds {described(detected)}"
            if detected
            else f"detection cannot place it: {(found.undetectable or '').split('; ')[0].rstrip('.')}"
        )
        say(f"Stamping {arguments.force} on {path}, whatever its schema ({found.describe_stamp()}; {placed}).")
        if arguments.dry_run:
            say("Dry run: nothing was written.")
            return 0
        report = restamp(database_url, arguments.force, seen=found, busy_timeout=arguments.busy_timeout)
    else:
        if found.newer_release:  # what detection finds would hide what that release changed
            raise UpgradeRefused(found.newer_release)
        if detected is None:
            raise UpgradeRefused(found.undetectable)
        if found.versions is not None and detected.alike and not found.stamp_is_right:
            # It has run this project's revisions, so it may be at any of those that look alike.
            raise UpgradeRefused(
                f"{path}'s schema is {detected.schema_phrase()}, and {found.describe_stamp()}: which of them it is at, "
                f"its schema cannot tell; nothing was changed: stamp the one it is at with {advice.command('stamp --force REV')}."
            )
        if detected.revision is None:
            say(f"Nothing to stamp: {path} holds no StarPunk table; {advice.command('upgrade')} creates the schema.")
            return 0
        if found.stamp_is_right:
            say(f"Nothing to do: {path} is stamped {(found.versions or ('',))[0]}, and its schema is that revision's.")
            return 0
        why = "" if found.versions is None else f"{found.describe_stamp()}; "
        say(
            f"Stamping {detected.revision} on {path}: {why}detected {described(detected)}"
            + (f", after {len(detected.repairs)} repair(s)" if detected.repairs else "")
            + (
                f", adding {len(detected.missing_migration_rows)} schema_migrations row(s)"
                if detected.missing_migration_rows
                else ""
            )
            + "; no revision is run."
        )
        if arguments.dry_run:
            say("Dry run: nothing was written.")
            return 0
        if found.versions is None:
            with progress_on_stdout():
                adopted = stamp_detected(database_url, detected, busy_timeout=arguments.busy_timeout)
            attempt.done = f"{path} was stamped {detected.revision}" + _backup_clause(adopted.backup)
            say(f"Done: {path} is stamped {detected.revision}.")
            return 0
        report = restamp(database_url, detected.revision, seen=found, adopting=detected, busy_timeout=arguments.busy_timeout)
    attempt.done = f"{report.database} was stamped {report.revision}" + _backup_clause(report.backup)
    if report.backup:
        say(f"backup written to {report.backup}")
        if report.credentials:
            say(private_backup_notice(report.backup, report.credentials, "stamp"))
    before = ", ".join(report.previous) or "no stamp"
    say(f"Done: {report.database} is stamped {report.revision} (was: {before}); no revision was run.")
    return 0


def run_backups(database: Path, as_json: bool) -> None:
    from ..commands.backup_listing import list_backups

    entries = list_backups(database)
    if as_json:
        print(json.dumps([entry.as_dict() for entry in entries], indent=2))
        return
    if not entries:
        say(f"No backups of {database} (they are written next to it, as {database.name}.backup-*).")
        return
    say(f"Backups of {database}, newest first:")
    for entry in entries:
        say(
            f"  {entry.created:%Y-%m-%d %H:%M:%S} UTC  {entry.revision or '-':<7} {size(entry.size):>9}  "
            f"{entry.path}  {entry.state}"
        )


def run_restore(backup: Path, database: Path, busy_timeout: float, attempt: refusals.Attempt) -> None:
    from ..commands.restore import restore_database

    report = restore_database(backup, database, busy_timeout)
    attempt.done = f"{database} was restored from {backup}" + (
        f" ({database} as it was is kept as {report.undo_backup})" if report.undo_backup else ""
    )
    say(f"Checked:   {backup} is sound (integrity check ok) and holds {described(report.state)}.")
    if report.undo_backup:
        say(
            f"Backup:    {database} as it was ({report.previous_state}) is kept as {report.undo_backup}; "
            "restore that to undo this restore."
        )
        if report.credentials:
            say(f"Private:   {private_backup_notice(report.undo_backup, report.credentials, 'restore')}")
    else:
        say(f"Backup:    none needed: there was no database at {database}.")
    say(f"Restored:  {database} now holds the backup's content (journal mode {report.journal_mode}).")
    if report.afterwards:
        say(f"Warning:   {report.afterwards}.")
    if report.state.revision != head_revision():
        say(f"Next:      StarPunk upgrades it at its next start; or run {advice.command('upgrade')} now.")


if __name__ == "__main__":
    sys.exit(main())
