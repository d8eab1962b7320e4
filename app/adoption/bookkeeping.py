"""Whether a database's bookkeeping tells the truth, checked before anything is written.

Alembic trusts `alembic_version` blindly: with no row it runs every revision on a full
database (`table notes already exists`), with two rows it stops on overlapping heads, and a
file stamped `005` whose schema is `001`'s is "upgraded" into a hybrid labelled head. Here the
stamp is compared with the schema, by names and tolerant of the user's own tables and indexes,
as detection compares (adoption.detection); a stamp that does not match is refused with the
difference and the command that fixes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..evolution.chain import all_starpunk_names, revision_references
from ..foundation.advice import command
from ..foundation.errors import UpgradeRefused
from ..foundation.locations import SCRIPT_LOCATION
from ..schema.shape import SchemaShape, version_rows
from . import detection
from .explanation import ChainFacts, Unexplained, explain

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


def stamp_findings(connection: Connection, revision: str | None, script_location: Path = SCRIPT_LOCATION) -> list[str]:
    """How the schema differs from the one `revision` produces, as short phrases; empty when
    the stamp is right. The user's own tables and indexes do not count, nor what the chain
    explains as kept at that revision (the rc.1 hotfix column until 002 replaces tokens)."""
    references = revision_references(script_location)
    reference = next((r for r in references if r.revision == revision), None)
    if reference is None:
        return [f"revision {revision} is not one of this code's revisions"]
    starpunk = all_starpunk_names(references)
    actual = SchemaShape.read(connection).without_bookkeeping()
    difference = detection.SchemaDifference.between(reference.shape.without_bookkeeping(), actual, starpunk)
    try:
        explained = explain(connection, ChainFacts(references), references.index(reference), actual, starpunk, ())
    except Unexplained as reason:
        return difference.findings() or [str(reason)]
    if all(repair.action == "keep" for repair in explained.repairs):
        return []
    return difference.findings()


def _what_detection_finds(connection: Connection, script_location: Path) -> tuple[detection.DatabaseState | None, str]:
    """(state, phrase) for the schema as detection sees it, ignoring alembic_version."""
    try:
        state = detection.detect_state(connection, script_location)
    except UpgradeRefused:
        return None, "its schema matches no StarPunk release"
    if state.revision is None:
        return None, "it holds no StarPunk table"
    return state, f"its schema is {state.schema_phrase()}"


def _fix(detected: detection.DatabaseState | None) -> str:
    if detected is None:
        return f"restore a backup, or stamp the right revision with {command('stamp --force REV')}"
    if detected.alike:  # a file that has run this project's revisions may be at any of them
        return f"stamp the one it is at with {command('stamp --force REV')}"
    return f"run {command('stamp')} to stamp {detected.revision} (what detection finds), or {command('stamp --force REV')}"


def check_stamp(connection: Connection, script_location: Path = SCRIPT_LOCATION, *, compare_schema: bool = True) -> None:
    """Refuse a database whose alembic_version has no row or several while it holds a
    schema, or (unless `compare_schema` is false) names a revision whose schema is not the
    file's. Only reads."""
    versions = version_rows(connection)
    if versions is None:
        return
    try:
        references = revision_references(script_location)
    except Exception as error:
        raise UpgradeRefused(
            f"The revision files in {script_location} fail on an empty database ({error}), so the schema they "
            "expect cannot be known; nothing was changed: fix the newest revision file and try again."
        ) from error
    known = {reference.revision for reference in references}
    if any(version not in known for version in versions):
        return  # a newer release's revision: detection.inspect_database says so
    if len(versions) > 1:
        detected, found = _what_detection_finds(connection, script_location)
        raise UpgradeRefused(
            f"alembic_version holds {len(versions)} rows ({', '.join(sorted(versions))}) where a StarPunk database "
            f"has one, and {found}; nothing was changed: {_fix(detected)}."
        )
    claimed = versions[0] if versions else None
    if claimed is not None and not compare_schema:
        return
    findings = stamp_findings(connection, claimed, script_location)
    if not findings:
        return
    detected, found = _what_detection_finds(connection, script_location)
    stamp = f"stamped {claimed}" if claimed else "stamped as empty (alembic_version has no row)"
    shown = "; ".join(findings[:4]) + (f"; and {len(findings) - 4} more" if len(findings) > 4 else "")
    raise UpgradeRefused(
        f"The database is {stamp}, but its schema is not that revision's ({shown}), and {found}; "
        f"nothing was changed: {_fix(detected)}."
    )


def inspect_database(
    connection: Connection, script_location: Path = SCRIPT_LOCATION, *, compare_schema: bool = True
) -> detection.DatabaseState:
    """`detection.inspect_database`, after checking that the stamp tells the truth. Only reads."""
    check_stamp(connection, script_location, compare_schema=compare_schema)
    return detection.inspect_database(connection, script_location)
