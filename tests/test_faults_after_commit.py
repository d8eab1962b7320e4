"""A change that has committed is said, whatever fails after it: never "nothing was changed".

The failure here is the most ordinary one: the command's output cannot be written (its
standard output is /dev/full, as a log file on a full disk would be). `downgrade` and `stamp`
print their plan before they change anything, so there it stops them before the change.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import BIN, HEAD, digest, versions
from faults import environment
from starpunk_history import build, table_rows

# Real processes, several per test: the full suite runs these, `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow


def at_head(folder: Path) -> Path:
    database = build(folder / "starpunk.db", "v1.4")
    assert (
        subprocess.run([str(BIN / "starpunk-db"), "upgrade", "--no-backup", str(database)], capture_output=True).returncode == 0
    )
    return database


def with_output_to_a_full_disk(arguments: list[str], database: Path) -> subprocess.CompletedProcess:
    with open("/dev/full", "w") as full:
        return subprocess.run(
            [str(BIN / "starpunk-db"), *arguments],
            env=environment(database),
            cwd=database.parent,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )


def the_one_sentence(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("starpunk-db: ") and "nothing was changed" not in line, line
    assert line.endswith("; then what followed failed (No space left on device), which undoes none of it."), line
    return line.removeprefix("starpunk-db: ")


def only_backup(folder: Path) -> Path:
    (backup,) = folder.glob("starpunk.db.backup-*")
    return backup


def test_an_upgrade_whose_output_fails_says_what_it_changed(tmp_path):
    database = build(tmp_path / "starpunk.db", "legacy v0.9.5")
    before = digest(database)

    sentence = the_one_sentence(with_output_to_a_full_disk(["upgrade", str(database)], database))

    backup = only_backup(tmp_path)
    assert sentence.startswith(f"{database} was upgraded to revision {HEAD} (its backup is {backup})")
    assert versions(database) == [HEAD] and digest(backup) == before


def test_a_restore_whose_output_fails_names_the_restore_and_its_undo_backup(tmp_path):
    database = at_head(tmp_path)
    kept = build(tmp_path / "kept.db", "v1.3")
    before = digest(database)

    sentence = the_one_sentence(with_output_to_a_full_disk(["restore", str(kept), str(database)], database))

    undo = only_backup(tmp_path)
    assert re.fullmatch(
        rf"{re.escape(str(database))} was restored from {re.escape(str(kept))} "
        rf"\({re.escape(str(database))} as it was is kept as {re.escape(str(undo))}\); then .*",
        sentence,
    )
    assert table_rows(database) == table_rows(kept) and digest(undo) == before
