"""Something at the database path that is not a file: a named pipe, a device.

SQLite would block forever opening a FIFO for reading (no writer ever comes), and "write" a
whole upgrade into /dev/null before failing on a journal it cannot keep. Each is refused
before anything opens it, in one sentence, quickly, with nothing new beside it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from conftest import BIN
from faults import ENTRY_POINTS, assert_refused, command_line, run_command

pytestmark = pytest.mark.slow

# Seconds: far longer than a refusal takes, far shorter than forever.
PATIENCE = 30


def named_pipe(folder: Path) -> Path:
    path = folder / "starpunk.db"
    os.mkfifo(path)
    return path


def beside(path: Path) -> list[str]:
    """What is in the path's folder under its name: the path itself, and anything SQLite or a backup would add."""
    return sorted(entry for entry in os.listdir(path.parent) if entry.startswith(path.name))


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_a_named_pipe_is_refused_at_once_by_every_entry_point(tmp_path, name):
    database = named_pipe(tmp_path)

    result = run_command(command_line(name, database, busy_timeout=5), database, timeout=PATIENCE)

    assert_refused(result, name, f"{database} is not a regular file", "named pipe")
    assert stat.S_ISFIFO(database.stat().st_mode) and beside(database) == ["starpunk.db"]


@pytest.mark.parametrize("command", [["status"], ["upgrade", "--dry-run"], ["stamp"], ["history"]])
def test_the_read_only_and_stamp_commands_refuse_a_named_pipe_too(tmp_path, command):
    database = named_pipe(tmp_path)

    result = run_command([str(BIN / "starpunk-db"), *command, str(database)], database, timeout=PATIENCE)

    if command == ["history"]:  # the history is printed; the database's line says why it is not known
        assert result.returncode == 0 and f"not known: {database} is not a regular file" in result.stdout
    else:
        assert_refused(result, "starpunk-db", "is not a regular file")
    assert beside(database) == ["starpunk.db"]


def test_restore_onto_a_named_pipe_is_refused(tmp_path):
    from starpunk_history import build

    kept = build(tmp_path / "kept.db", "v1.4")
    database = named_pipe(tmp_path)

    result = run_command([str(BIN / "starpunk-db"), "restore", str(kept), str(database)], database, timeout=PATIENCE)

    assert_refused(result, "starpunk-db", "is not a regular file")
    assert beside(database) == ["starpunk.db"]


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_dev_null_is_refused_as_a_device_before_any_revision_runs(name):
    database = Path("/dev/null")

    result = run_command(command_line(name, database, busy_timeout=5), database, cwd=Path("/tmp"), timeout=PATIENCE)

    sentence = assert_refused(result, name, "/dev/null is not a regular file", "character device")
    assert "applied" not in result.stdout + result.stderr and "full" not in sentence
    assert beside(database) == ["null"]
