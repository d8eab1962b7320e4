"""`starpunk-db`'s command line: every command, its options and its help."""

from __future__ import annotations

import argparse
import textwrap

from ..foundation.advice import STARPUNK_DB
from ..foundation.locations import DEFAULT_BUSY_TIMEOUT
from ..foundation.scripts import head_revision

# Where the database comes from when the command line names none.
FROM_THE_ENVIRONMENT = "$DATABASE_URL, else $DATABASE_PATH, else data/starpunk.db in the current folder"


# Every command and what it does, in a few words (also the `flask db` commands' help).
SUMMARIES = {
    "status": "what the database is and what an upgrade would do",
    "history": "every revision, with the StarPunk release it belongs to; the database's own marked *",
    "check": "whether the database is at head and its schema is what the models declare",
    "upgrade": "bring the database to head (or --to REV)",
    "downgrade": "go back to an earlier revision (--to REV, or base)",
    "stamp": "record the database's revision without running any",
    "backups": "the backups next to the database, newest first",
    "restore": "replace the database's content with a backup's",
}


def _database_help(default: str) -> str:
    return (
        "Database: the SQLite file named on the command line (a path, whatever characters it holds, "
        f"or a sqlite:/// URL), else {default}."
    )


def _backup_help(program: str) -> str:
    return (
        "Backups:  written next to the database file, as <file>.backup-<revision or state>-<UTC time>, "
        f"never deleted for you; `{program} backups` lists them, `{program} restore` goes back to one."
    )


def _overview(program: str, database_default: str) -> str:
    return f"""\
Read only:  status, history, check, backups (and upgrade --dry-run / --sql, any --dry-run).
Writes:     upgrade, downgrade, stamp, restore; each backs the file up first (upgrade: unless --no-backup).

{textwrap.fill(_database_help(database_default), 96, subsequent_indent="          ")}
{textwrap.fill(_backup_help(program), 96, subsequent_indent="          ")}

Exit status: 0 done, or nothing to do; 1 refused: one sentence on stderr says what was found and
what to do, and the database was not changed (or, if it says the change was made, what failed
after it); 2 the command line itself is wrong.
`{program} COMMAND --help` says what a command reads and writes."""


def _version(program: str) -> str:
    from importlib import metadata

    try:
        installed = metadata.version("starpunk-migrations")
    except metadata.PackageNotFoundError:
        installed = "(not installed)"
    return f"{program} {installed}, schema head {head_revision()}"


def build_parser(program: str = STARPUNK_DB, database_default: str = FROM_THE_ENVIRONMENT) -> argparse.ArgumentParser:
    """The command line of `program` (`starpunk-db`, or `flask db`, whose database comes from
    the application's configuration first: `database_default` says so in the help)."""
    parser = argparse.ArgumentParser(
        prog=program,
        description="StarPunk's database: what it is, and every change to it, for operators.",
        epilog=_overview(program, database_default),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version(program))
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, details: str) -> argparse.ArgumentParser:
        summary = SUMMARIES[name]
        description = "\n\n".join(
            [
                summary[0].upper() + summary[1:] + ".",
                textwrap.fill(details, 96),
                textwrap.fill(_database_help(database_default), 96, subsequent_indent="          ")
                + "\n"
                + textwrap.fill(_backup_help(program), 96, subsequent_indent="          "),
            ]
        )
        return commands.add_parser(
            name, help=summary, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
        )

    def busy_timeout(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--busy-timeout",
            type=float,
            default=DEFAULT_BUSY_TIMEOUT,
            metavar="SECONDS",
            help=f"how long to wait for another writer (default {DEFAULT_BUSY_TIMEOUT:g})",
        )

    status = command(
        "status",
        "Read-only: never writes, creates nothing (a missing file is reported as missing).",
    )
    status.add_argument("--json", action="store_true", help="one JSON object instead of a report")
    status.add_argument("database", nargs="?", metavar="PATH_OR_URL")

    history = command(
        "history",
        "Read-only: never writes.",
    )
    history.add_argument("database", nargs="?", metavar="PATH_OR_URL")

    check = command(
        "check",
        "Read-only: never writes. Exit status 0 when both hold; else 1, with a sentence saying what "
        "differs (revisions pending, or the schema's differences from the models).",
    )
    check.add_argument("database", nargs="?", metavar="PATH_OR_URL")

    upgrade = command(
        "upgrade",
        "Writes: detects and stamps a file Alembic has never seen, then runs the revisions, all in "
        "one transaction; a backup of an existing file is written first (unless --no-backup).",
    )
    upgrade.add_argument("--to", default="head", metavar="REV", help="target revision (default: head)")
    upgrade.add_argument("--no-backup", action="store_true", help="do not copy the database before changing it")
    busy_timeout(upgrade)
    mode = upgrade.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="show the plan and write nothing")
    mode.add_argument("--sql", action="store_true", help="print the SQL that would run and write nothing")
    upgrade.add_argument("database", nargs="?", metavar="PATH_OR_URL")

    downgrade = command(
        "downgrade",
        "Writes, after a backup (always). Lists what each reverted revision cannot bring back; when "
        "that is anything, nothing is done without --yes.",
    )
    downgrade.add_argument("--to", required=True, metavar="REV", help="the revision to go back to")
    downgrade.add_argument("--yes", action="store_true", help="go ahead although data listed as lost is lost")
    downgrade.add_argument("--dry-run", action="store_true", help="show what would be reverted and lost; write nothing")
    busy_timeout(downgrade)
    downgrade.add_argument("database", nargs="?", metavar="PATH_OR_URL")

    stamp = command(
        "stamp",
        "Writes alembic_version (and, for a file Alembic has never seen, the repairs and "
        "schema_migrations rows an upgrade would add), after a backup. Without --force: the revision "
        "detection finds from the schema. With --force REV: that revision, whatever the schema "
        "(for a file detection cannot place). It always says what it does first.",
    )
    stamp.add_argument("--force", metavar="REV", help="stamp this revision, whatever detection says")
    stamp.add_argument("--dry-run", action="store_true", help="say what would be stamped; write nothing")
    busy_timeout(stamp)
    stamp.add_argument("database", nargs="?", metavar="PATH_OR_URL")

    backups = command(
        "backups",
        "Read-only: never writes, not even beside the backups. For each: when it was taken, the "
        "revision and StarPunk state it holds, its size, its path.",
    )
    backups.add_argument("--json", action="store_true", help="a JSON list of objects instead of a table")
    backups.add_argument("database", nargs="?", metavar="PATH")

    restore = command(
        "restore",
        "Writes: checks the backup (SQLite's integrity check, a StarPunk state), takes the write lock "
        "like an upgrade, backs up the live file (so the restore can be undone), then copies the "
        "backup in through SQLite: the same file, permissions and journal mode; other connections see "
        "the old content or the new, never a mix. A damaged or foreign backup is refused, the live "
        "file untouched.",
    )
    restore.add_argument("backup", metavar="BACKUP", help="the backup file to go back to")
    busy_timeout(restore)
    restore.add_argument("database", nargs="?", metavar="PATH")
    return parser
