"""Backups of files that hold plaintext credentials (v0.1's session cookies, the Micropub tokens
kept until 002) are readable by their owner only, whatever the database's own mode, and the
operator is told so, with the advice to delete them once the change is confirmed."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run
from faults import environment
from starpunk_history import build

# Real processes, several per test: the full suite runs these, `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow

LOGGING_ENSURE_SCHEMA = (
    "import logging, sys\nfrom starpunk_migrations import ensure_schema\n"
    "logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(message)s')\nensure_schema(sys.argv[1])\n"
)


def readable_by_all(path: Path) -> Path:
    path.chmod(0o644)
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def the_backup(folder: Path, *besides: Path) -> Path:
    (backup,) = set(folder.glob("starpunk.db.backup-*")) - set(besides)
    return backup


def notice(backup: Path, credentials: str, change: str) -> str:
    return (
        f"{backup} holds plaintext credentials ({credentials}), so it is readable by its owner only (mode 0600); "
        f"delete it once the {change} is confirmed: "
    )


@pytest.mark.parametrize(
    "state, credentials", [("v0.1", "sessions.session_token, tokens.token"), ("legacy v0.9.5", "tokens.token")]
)
def test_an_upgrade_backs_plaintext_credentials_up_privately_and_says_so(tmp_path, state, credentials):
    database = readable_by_all(build(tmp_path / "starpunk.db", state))

    result = run("starpunk-db", "upgrade", str(database))

    assert result.returncode == 0, result.stderr
    backup = the_backup(tmp_path)
    assert mode(backup) == 0o600 and mode(database) == 0o644
    assert notice(backup, credentials, "upgrade") in result.stdout


def test_ensure_schema_logs_that_its_backup_holds_plaintext_session_cookies(tmp_path):
    database = readable_by_all(build(tmp_path / "starpunk.db", "v0.1"))

    result = subprocess.run(
        [sys.executable, "-c", LOGGING_ENSURE_SCHEMA, str(database)],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    backup = the_backup(tmp_path)
    assert mode(backup) == 0o600
    assert result.stderr == (
        "WARNING " + notice(backup, "sessions.session_token, tokens.token", "upgrade") + "the plaintext session cookies "
        "in it stay valid.\n"
    )


def test_a_stamp_backs_plaintext_credentials_up_privately_and_says_so(tmp_path):
    database = readable_by_all(build(tmp_path / "starpunk.db", "v0.1"))

    result = run("starpunk-db", "stamp", "--force", "v0_1_0", str(database))

    assert result.returncode == 0, result.stderr
    backup = the_backup(tmp_path)
    assert mode(backup) == 0o600
    assert notice(backup, "sessions.session_token, tokens.token", "stamp") in result.stdout


def test_a_restore_over_a_file_with_plaintext_credentials_keeps_it_privately_and_says_so(tmp_path):
    database = readable_by_all(build(tmp_path / "starpunk.db", "v0.1"))
    kept = build(tmp_path / "kept.db", "v1.4")

    result = run("starpunk-db", "restore", str(kept), str(database))

    assert result.returncode == 0, result.stderr
    undo = the_backup(tmp_path)
    assert mode(undo) == 0o600 and mode(database) == 0o644
    assert f"Private:   {notice(undo, 'sessions.session_token, tokens.token', 'restore')}" in result.stdout
