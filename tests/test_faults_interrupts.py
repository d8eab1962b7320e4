"""Ctrl-C and SIGTERM (a container stopping) during a real upgrade, and what a killed run left."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from test_safety import many_sessions

from conftest import BIN, CHAIN, HEAD, digest, versions
from faults import ENTRY_POINTS, assert_refused, command_line, environment, upgrade
from starpunk_history import build, table_rows

# Real processes, several per test: the full suite runs these, `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def slow_file(tmp_path_factory) -> Path:
    """A v0.1 file whose upgrade takes about a second: v0_4_0 rehashes 300,000 sessions."""
    return many_sessions(tmp_path_factory.mktemp("template") / "starpunk.db", 300_000)


def appears(fragment: str) -> Callable[[Path], bool]:
    return lambda folder: any(fragment in path.name for path in folder.iterdir())


def is_gone(fragment: str) -> Callable[[Path], bool]:
    return lambda folder: not appears(fragment)(folder)


# The database's rollback journal: it appears as the write transaction starts, and is gone
# once it commits.
JOURNAL = "starpunk.db-journal"


def signalled(
    arguments: list[str], database: Path, number: int, *moments: Callable[[Path], bool], pause: float = 0.0
) -> subprocess.CompletedProcess:
    """Run `arguments` and send signal `number` once each of `moments` (a condition on the
    database's folder) has come, in turn, and `pause` seconds more."""
    process = subprocess.Popen(
        arguments, env=environment(database), cwd=database.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    for moment in moments:
        while not moment(database.parent) and process.poll() is None:
            assert time.monotonic() < deadline, "the command never got that far"
            time.sleep(0.001)
    time.sleep(pause)
    process.send_signal(number)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_a_signal_mid_upgrade_says_so_and_leaves_the_folder_as_it_was(tmp_path, slow_file, name, number):
    database = tmp_path / "starpunk.db"
    shutil.copy(slow_file, database)
    before = digest(database)

    # The backup is written: the revisions run.
    result = signalled(command_line(name, database), database, number, appears(".backup-"), pause=0.1)

    assert_refused(result, name, "Interrupted; nothing was changed")
    assert digest(database) == before
    assert [path.name for path in tmp_path.iterdir()] == ["starpunk.db"]


def test_a_signal_during_the_backup_leaves_no_partial_file(tmp_path, slow_file):
    database = tmp_path / "starpunk.db"
    shutil.copy(slow_file, database)
    before = digest(database)

    result = signalled(command_line("starpunk-db", database), database, signal.SIGTERM, appears(".partial"))

    assert_refused(result, "starpunk-db", "Interrupted; nothing was changed")
    assert digest(database) == before
    assert [path.name for path in tmp_path.iterdir()] == ["starpunk.db"]


def assert_says_what_it_did(result: subprocess.CompletedProcess, name: str, database: Path, before: str) -> list[Path]:
    """Either nothing was changed, nothing is beside the file, and the command says so; or the
    change is whole, its backup kept, and the command does not claim otherwise."""
    beside = sorted(path for path in database.parent.iterdir() if path != database)
    if digest(database) == before:
        assert_refused(result, name, "Interrupted; nothing was changed")
        assert beside == []
    else:
        assert "nothing was changed" not in result.stdout + result.stderr
        assert "Traceback" not in result.stdout + result.stderr
        assert [path.name.split(".backup-")[0] for path in beside] == [database.name]  # one whole backup
        assert not beside[0].name.endswith(".partial")
    return beside


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_a_signal_as_the_upgrade_commits_never_deletes_the_backup_of_a_changed_file(tmp_path, slow_file, name, number):
    """The instant after COMMIT: too late to undo anything, so the command must not say it did."""
    database = tmp_path / "starpunk.db"
    shutil.copy(slow_file, database)
    before = digest(database)

    result = signalled(command_line(name, database), database, number, appears(JOURNAL), is_gone(JOURNAL))

    if assert_says_what_it_did(result, name, database, before):
        assert versions(database) == [HEAD]


def test_a_signal_as_a_stamp_commits_never_deletes_its_backup(tmp_path, slow_file):
    database = tmp_path / "starpunk.db"
    shutil.copy(slow_file, database)
    before = digest(database)

    result = signalled(
        [str(BIN / "starpunk-db"), "stamp", "--force", CHAIN[1], str(database)],
        database,
        signal.SIGTERM,
        appears(JOURNAL),
        is_gone(JOURNAL),
    )

    if assert_says_what_it_did(result, "starpunk-db", database, before):
        assert versions(database) == [CHAIN[1]]


@pytest.mark.parametrize("journal", ["appears", "commits"])
def test_a_signal_during_a_restore_leaves_the_old_content_or_the_new_with_its_undo_backup(tmp_path, slow_file, journal):
    (tmp_path / "live").mkdir()
    database = build(tmp_path / "live" / "starpunk.db", "legacy v0.9.5")
    backup = tmp_path / "kept.db"
    shutil.copy(slow_file, backup)  # a big backup: the copy takes a while
    before = digest(database)

    moments = (appears(JOURNAL),) if journal == "appears" else (appears(JOURNAL), is_gone(JOURNAL))
    result = signalled([str(BIN / "starpunk-db"), "restore", str(backup), str(database)], database, signal.SIGTERM, *moments)

    changed = assert_says_what_it_did(result, "starpunk-db", database, before)
    if changed:
        (undo,) = changed
        assert digest(undo) == before  # the restore can be undone
        assert table_rows(database) == table_rows(backup)
    if journal == "appears":
        assert not changed  # stopped mid-copy: the copy rolled back


def test_a_partial_backup_left_by_a_killed_run_is_removed_by_the_next(tmp_path):
    database = build(tmp_path / "starpunk.db", "legacy v0.9.5")
    stale = tmp_path / "starpunk.db.backup-v0.8-legacy-v0.9.x-20250101T000000Z.partial"
    stale.write_bytes(b"SQLite format 3\x00" + b"\x00" * 4000)  # the first pages of a copy, cut short

    result = upgrade("ensure_schema", database)

    assert result.returncode == 0, result.stderr
    assert versions(database) == [HEAD]
    names = [path.name for path in tmp_path.iterdir()]
    assert stale.name not in names and len(names) == 2


LOADING = """
import sys
from starpunk_migrations.executable import main
sys.argv = ["starpunk-db", "upgrade", sys.argv[1]]
print("loading the command", flush=True)
sys.exit(main())
"""


def handling_signals(pid: int) -> None:
    """Wait until process `pid` catches SIGTERM (Linux shows it in /proc; SIGINT's handler is
    put in place just before), so that the signal sent next is not one sent before main()
    began, which no program can answer."""
    status = Path(f"/proc/{pid}/status")
    if not status.exists():
        pytest.skip("needs /proc to see when the command's handler is in place")
    deadline = time.monotonic() + 30
    while not int(re.findall(r"^SigCgt:\s*([0-9a-f]+)$", status.read_text(), re.M)[0], 16) >> (signal.SIGTERM - 1) & 1:
        assert time.monotonic() < deadline, "the command never began"
        time.sleep(0.001)


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_starpunk_db_is_still_loading_says_so_too(tmp_path, number):
    """The first tenths of a second: SQLAlchemy and Alembic are being imported."""
    import sys
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="starpunk-db")
    assert script.value == "starpunk_migrations.executable:main"  # what the installed command runs
    database = build(tmp_path / "starpunk.db", "legacy v0.9.5")
    before = digest(database)
    process = subprocess.Popen(
        [sys.executable, "-c", LOADING, str(database)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "loading the command\n"
    handling_signals(process.pid)  # main() has begun, the imports are under way

    process.send_signal(number)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 1
    assert stderr == "starpunk-db: Interrupted; nothing was changed (the database is as it was).\n"
    assert digest(database) == before and list(tmp_path.iterdir()) == [database]


LOADING_FROM_AN_APPLICATION = """
import sys
from starpunk_migrations import UpgradeRefused, ensure_schema
print("calling ensure_schema", flush=True)
try:
    ensure_schema(sys.argv[1])
except UpgradeRefused as refusal:
    print(refusal, flush=True)
print("loaded" if "starpunk_migrations.commands.upgrade" in sys.modules else "still loading", flush=True)
"""


def test_a_signal_while_ensure_schema_is_still_loading_raises_upgrade_refused(tmp_path):
    """An application calling ensure_schema at start-up: SQLAlchemy and Alembic load inside it."""
    import sys

    database = build(tmp_path / "starpunk.db", "legacy v0.9.5")
    before = digest(database)
    process = subprocess.Popen(
        [sys.executable, "-c", LOADING_FROM_AN_APPLICATION, str(database)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "calling ensure_schema\n"
    handling_signals(process.pid)

    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)

    assert (process.returncode, stderr) == (0, "")
    assert stdout == "Interrupted; nothing was changed (the database is as it was).\nstill loading\n"
    assert digest(database) == before and list(tmp_path.iterdir()) == [database]


def test_a_signal_during_a_step_that_must_finish_is_answered_once_it_has():
    """Starting `cp` for the backup is such a step: a signal inside `Popen` would lose the
    child, which would go on writing its copy after ours was removed."""
    import os

    from starpunk_migrations.foundation import interrupts

    steps = []
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        with interrupts.interrupts_as_exceptions(), interrupts.interrupts_held():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # Python runs the handler here, in the middle of the step
            steps.append("finished")

    assert steps == ["finished"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the process's own handling is back
