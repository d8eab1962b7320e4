"""Damaged files: refused untouched by every command that writes, before its backup.

A damaged page SQLite never happens to read passes every other check (the file opens, its
schema reads, the revisions run on the tables they touch), so only SQLite's own check of
every page finds it. A journal left beside a file is no reason to skip the file's own checks
unless SQLite will really roll it back (a hot journal).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from conftest import BIN, CHAIN, wrongly_stamped
from faults import ENTRY_POINTS, assert_refused, run_command, snapshot, upgrade
from starpunk_history import build

# Real processes, several per test: the full suite runs these, `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow

DAMAGED = "is damaged (On tree page "
# The command names the database when the operator named it: `starpunk-db backups PATH`.
RESTORE_ADVICE = "nothing was changed: restore it from a backup (`starpunk-db backups"


def with_damaged_sessions(path: Path) -> Path:
    """`path` with the root page of its sessions table overwritten: no revision from v1.2 on
    reads sessions, so only a check of every page sees it."""
    db = sqlite3.connect(path)
    db.executemany(
        "INSERT INTO sessions (session_token_hash, me, expires_at) VALUES (?, 'https://example.org/', '2099')",
        ((f"{number:064x}",) for number in range(200)),
    )
    db.commit()
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'sessions'").fetchone()[0]
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with path.open("r+b") as file:
        file.seek((root - 1) * page_size + 8)  # the interior page's first child pointers
        file.write(b"\xff" * 64)
    return path


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_an_upgrade_refuses_a_damaged_file_before_its_backup(tmp_path, name):
    database = with_damaged_sessions(build(tmp_path / "starpunk.db", "v1.2"))
    before = snapshot(tmp_path)

    result = upgrade(name, database)

    sentence = assert_refused(result, name, f"{database} {DAMAGED}", RESTORE_ADVICE)
    assert "\n" not in sentence
    assert snapshot(tmp_path) == before  # byte-identical, and no backup beside it


def managed_and_damaged(folder: Path) -> Path:
    database = build(folder / "starpunk.db", "v1.4")
    assert run_command([str(BIN / "starpunk-db"), "upgrade", "--no-backup", str(database)], database).returncode == 0
    return with_damaged_sessions(database)


@pytest.mark.parametrize(
    "arguments",
    [["downgrade", "--to", CHAIN[-2], "--yes"], ["stamp", "--force", CHAIN[-2]], ["stamp"]],
    ids=["downgrade", "stamp --force", "stamp"],
)
def test_downgrade_and_stamp_refuse_a_damaged_file_untouched(tmp_path, arguments):
    if arguments == ["stamp"]:  # a stamp that does not tell the truth: `stamp` would correct it
        database = with_damaged_sessions(wrongly_stamped(tmp_path / "starpunk.db"))
    else:
        database = managed_and_damaged(tmp_path)
    before = snapshot(tmp_path)

    result = run_command([str(BIN / "starpunk-db"), *arguments, str(database)], database)

    assert_refused(result, "starpunk-db", f"{database} {DAMAGED}", RESTORE_ADVICE)
    assert snapshot(tmp_path) == before


def test_stamping_a_damaged_file_never_stamped_is_refused_untouched(tmp_path):
    database = with_damaged_sessions(build(tmp_path / "starpunk.db", "v1.2"))
    before = snapshot(tmp_path)

    result = run_command([str(BIN / "starpunk-db"), "stamp", str(database)], database)

    assert_refused(result, "starpunk-db", f"{database} {DAMAGED}", RESTORE_ADVICE)
    assert snapshot(tmp_path) == before


def truncated_beside(path: Path, journal: bytes) -> Path:
    """A legacy file missing the end of its last page (its sessions rows, which no revision
    reads), with a `-journal` that is not hot: empty (journal_mode TRUNCATE leaves one) or
    with its header zeroed (PERSIST does)."""
    build(path, "legacy v0.9.5")
    db = sqlite3.connect(path)
    db.executemany(
        "INSERT INTO sessions (session_token_hash, me, expires_at) VALUES (?, 'https://example.org/', '2099')",
        ((f"{number:064x}",) for number in range(400)),
    )
    db.commit()
    db.close()
    path.write_bytes(path.read_bytes()[:-1000])
    path.with_name(path.name + "-journal").write_bytes(journal)
    return path


@pytest.mark.parametrize("name", ENTRY_POINTS)
@pytest.mark.parametrize("journal", [b"", bytes(512)], ids=["empty journal", "zeroed journal"])
def test_a_journal_that_is_not_hot_never_skips_the_file_checks(tmp_path, name, journal):
    database = truncated_beside(tmp_path / "starpunk.db", journal)
    before = snapshot(tmp_path)

    result = upgrade(name, database)

    assert_refused(result, name, f"{database} is truncated (", "restore it from a backup")
    assert snapshot(tmp_path) == before
