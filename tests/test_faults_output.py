"""What the commands say must be so, whatever the file holds.

Names from a file reach the terminal escaped, so that a table named with a newline and
terminal codes cannot forge a line; and a refusal says what it found: another application's
alembic_version is called that, not a newer StarPunk's.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from starpunk_migrations import UpgradeRefused, ensure_schema

from conftest import BIN, HEAD, SETTLED, digest, settled, versions
from faults import ENTRY_POINTS, assert_refused, run_command, snapshot, upgrade
from starpunk_history import build, stamped

pytestmark = pytest.mark.slow

FORGED = "guestbook\n\x1b[2K\rDone: nothing to see here, at revision 009"
ESCAPED = "guestbook\\n\\x1b[2K\\rDone: nothing to see here, at revision 009"


def with_table(path: Path, name: str, state: str | None = "v1.4") -> Path:
    """A StarPunk file in `state` (None: a file of another application's) with a table called `name`."""
    if state is not None:
        build(path, state)
    db = sqlite3.connect(path)
    db.execute('CREATE TABLE "{}" (entry TEXT)'.format(name.replace('"', '""')))
    db.commit()
    db.close()
    return path


def assert_no_forged_line(output: str) -> None:
    assert "\x1b" not in output and "\r" not in output
    assert not any(line.startswith("Done: nothing to see here") for line in output.splitlines())


@pytest.mark.parametrize("command", [["status"], ["upgrade", "--dry-run"], ["upgrade"]])
def test_a_table_name_with_a_newline_and_terminal_codes_is_printed_escaped(tmp_path, command):
    database = with_table(tmp_path / "starpunk.db", FORGED)

    result = run_command([str(BIN / "starpunk-db"), *command, str(database)], database)

    assert result.returncode == 0, result.stderr
    assert_no_forged_line(result.stdout + result.stderr)
    assert ESCAPED in result.stdout


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_a_refusal_quoting_a_forged_name_is_one_escaped_line(tmp_path, name):
    database = with_table(tmp_path / "starpunk.db", FORGED, state=None)

    result = upgrade(name, database)

    sentence = assert_refused(result, name, "belongs to another application", ESCAPED)
    assert_no_forged_line(result.stdout + result.stderr + sentence)


def test_ensure_schema_refuses_with_an_escaped_sentence_a_host_can_log(tmp_path):
    database = with_table(tmp_path / "starpunk.db", FORGED, state=None)

    with pytest.raises(UpgradeRefused) as refused:
        ensure_schema(database)

    assert ESCAPED in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_another_applications_alembic_version_in_a_legacy_file_is_called_so(tmp_path, name):
    database = stamped(build(tmp_path / "starpunk.db", "legacy v0.9.5"), "3f2a9c1b7d4e")  # another application's Alembic id
    before = snapshot(tmp_path)

    result = upgrade(name, database)

    sentence = assert_refused(result, name, "another application's alembic_version", "3f2a9c1b7d4e", "starpunk-db stamp")
    assert "newer release" not in sentence
    assert "v0.8 / legacy v0.9.x" in sentence  # what its schema is
    assert snapshot(tmp_path) == before


def test_status_calls_it_so_too_and_stamp_replaces_it(tmp_path):
    database = stamped(settled(tmp_path / "starpunk.db"), "3f2a9c1b7d4e")

    status = run_command([str(BIN / "starpunk-db"), "status", str(database)], database)
    restamped = run_command([str(BIN / "starpunk-db"), "stamp", str(database)], database)

    assert_refused(status, "starpunk-db", "another application's alembic_version")
    assert restamped.returncode == 0, restamped.stderr
    assert versions(database) == [SETTLED]


def test_a_newer_starpunk_revision_is_still_called_a_newer_release(tmp_path):
    database = stamped(build(tmp_path / "starpunk.db", "v1.4"), f"{int(HEAD) + 5:03}")
    before = digest(database)

    result = upgrade("starpunk-db", database)

    assert_refused(result, "starpunk-db", "newer release")
    assert digest(database) == before
