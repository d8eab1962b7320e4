"""How `starpunk-db` shows a state, a plan, sizes and progress."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from typing import TextIO

from ..adoption import repairs
from ..adoption.detection import DatabaseState
from ..commands.status import MISSING, Status, revisions_between
from ..foundation import advice
from ..foundation.backup import backup_name
from ..foundation.printable import printable
from ..foundation.scripts import alembic_config


def say(line: str, file: TextIO | None = None) -> None:
    """Print one line of a report. Names from the file are in it (tables, stamps, states), and
    reach the terminal only through foundation.printable: a name cannot forge a line."""
    print(printable(line), file=file if file is not None else sys.stdout)


def print_status(status: Status) -> None:
    facts = status.as_dict()
    how = "managed by Alembic" if status.state.managed else "not yet managed by Alembic: detected from its schema"
    if status.state.name == MISSING:
        how = f"no file at this path; StarPunk's first start or {advice.command('upgrade')} creates it"
        # Only the default's folder, data/, is created by an upgrade.
        if status.path is not None and not status.path.parent.is_dir() and str(status.path) != "data/starpunk.db":
            how = f"no file at this path, nor its folder {status.path.parent}: create the folder, or check the path"
    pending = facts["pending"]
    say(f"Database:  {facts['database']}")
    say(f"State:     {facts['state']} ({how})")
    say(f"Revision:  {facts['revision'] or '(none)'}")
    say(f"Head:      {facts['head']}")
    say(f"Pending:   {len(pending)} revision(s)" + (f": {' '.join(pending)}" if pending else " (up to date)"))
    if status.state.needs_stamp:
        say(
            f"On upgrade: stamp {status.state.revision}"
            + (f" after {len(status.state.repairs)} repair(s)" if status.state.repairs else "")
        )
    for repair in status.state.repairs if status.state.needs_stamp else ():
        say(f"Repair:    {repair.phrase()}")
    if status.state.unknown_tables:
        say(f"Not StarPunk's (left alone): {', '.join(status.state.unknown_tables)}")


def print_plan(status: Status, target: str, backup: bool) -> None:
    """`upgrade --dry-run`: what an upgrade would do, without doing any of it."""
    print_status(status)
    for name in status.state.missing_migration_rows:
        say(f"Record:    schema_migrations row {name}")
    steps = revisions_between(status.state.revision, target)
    for script in steps:
        say(f"Apply:     {script.revision}  {(script.doc or '').strip().splitlines()[0]}")
    path = status.path
    if backup and path is not None and path.exists() and path.stat().st_size > 0 and (steps or status.state.needs_stamp):
        say(f"Backup:    {backup_name(path, status.state.label).name} (next to the database)")
    say("Dry run: nothing was written.")


def print_sql(database_url: str, status: Status, target: str) -> None:
    """`upgrade --sql`: the SQL an upgrade would run, for a DBA to read. Writes nothing."""
    # An adopted table gets its rows back once the revision creating it has run: the SQL is
    # printed in stretches that end at those revisions, each one transaction; the adoption
    # (repairs, stamp) opens the first (alembic/env.py prints these statements inside it).
    take_backs = repairs.take_backs(status.state) if status.state.needs_stamp else {}
    start = status.state.revision
    first = repairs.adoption_sql(status.state)
    for script in revisions_between(start, target):
        if script.revision in take_backs:
            _print_upgrade_sql(database_url, start, script.revision, first=first, last=take_backs[script.revision])
            start, first = script.revision, []
    if not take_backs or revisions_between(start, target):
        _print_upgrade_sql(database_url, start, target, first=first)


def _print_upgrade_sql(
    database_url: str, start: str | None, target: str, *, first: Sequence[str] = (), last: Sequence[str] = ()
) -> None:
    from alembic import command

    config = alembic_config(database_url, statements_first=list(first), statements_last=list(last))
    command.upgrade(config, f"{start}:{target}" if start else target, sql=True)


class _ProgressHandler(logging.StreamHandler[TextIO]):
    def handleError(self, record: logging.LogRecord) -> None:
        """Output that cannot be written (a full disk, a closed pipe) does not stop the work,
        nor puts a traceback on the operator's screen: what the command did is said once it
        is done, on stderr if need be (refusals.boundary)."""


@contextlib.contextmanager
def progress_on_stdout() -> Iterator[None]:
    """Show the app's progress lines on stdout, as plain lines, for the length of the command;
    other loggers are untouched and the `starpunk_migrations` logger is left as it was found."""
    handler = _ProgressHandler(sys.stdout)
    handler.setFormatter(_PrintableLines("%(message)s"))
    logger = logging.getLogger("starpunk_migrations")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


class _PrintableLines(logging.Formatter):
    """Progress lines as `say` prints them."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


def described(state: DatabaseState) -> str:
    if state.revision is None:
        return state.name
    return f"{state.name} (revision {state.revision}" + ("" if state.managed else ", detected from its schema") + ")"


def size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)
