"""Two commands on one database at once never share, nor replace, each other's backup.

A restore looks at the live file, lets go of its lock, and takes the copy's own; whatever it
decided in between (the name of its undo backup, above all) may be stale by then. The moment is
held open with real means: a StarPunk writer holding the write lock makes both commands queue
(the second is then held still by SIGSTOP), and a program holding a Linux file lease on the
restore's backup makes the restore wait exactly as it opens that backup to copy from it, after
its first look and before its copy. The second command then runs whole, in the same second.
"""

from __future__ import annotations

import fcntl
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BIN, HEAD, versions
from faults import environment, has_open, stopped, wait_until, write_lock_held
from starpunk_history import build, with_note

# Real processes, several per test: the full suite runs these, `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow

# A program holding a write lease on a file (as a file server or a backup agent may): whoever
# opens the file waits until the lease is let go, and the holder is told (SIGIO).
HOLD_A_LEASE = """
import fcntl, os, signal, sys
signal.signal(signal.SIGIO, lambda *_: print("opened", flush=True))
descriptor = os.open(sys.argv[1], os.O_RDONLY)
fcntl.fcntl(descriptor, fcntl.F_SETLEASE, fcntl.F_WRLCK)
print("leased", flush=True)
sys.stdin.readline()
"""


def slugs(path: Path) -> set[str]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {slug for (slug,) in db.execute("SELECT slug FROM notes")}
    finally:
        db.close()


def starpunk_db(*arguments: str, database: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "starpunk-db"), *arguments, str(database)],
        env=environment(database),
        cwd=database.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen) -> str:
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stdout + stderr
    return stdout


def reported(pattern: str, output: str) -> str:
    """The path a command's output reports, found by `pattern`."""
    found = re.search(pattern, output, re.MULTILINE)
    assert found is not None, output
    return found.group(1)


@pytest.fixture
def lease_support(tmp_path):
    probe = tmp_path / "lease-probe"
    probe.write_bytes(b"")
    descriptor = open(probe)  # noqa: SIM115  (the lease lives as long as the descriptor)
    try:
        fcntl.fcntl(descriptor, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as error:
        pytest.skip(f"this file system gives no file leases ({error})")
    finally:
        descriptor.close()
        probe.unlink()


@pytest.mark.parametrize("second", ["upgrade", "restore"])
def test_a_command_that_runs_while_a_restore_is_between_its_look_and_its_copy_keeps_its_own_backup(
    tmp_path, lease_support, second
):
    database = with_note(build(tmp_path / "starpunk.db", "v1.4"), "only-in-the-live-file")
    (tmp_path / "kept").mkdir()
    kept = with_note(build(tmp_path / "kept" / "first.db", "v1.4"), "from-the-first-backup")
    other = with_note(build(tmp_path / "kept" / "second.db", "v1.4"), "from-the-second-backup")
    arguments = ["upgrade"] if second == "upgrade" else ["restore", str(other)]

    with write_lock_held(database) as release:  # a StarPunk worker writing: both commands queue
        restore = starpunk_db("restore", str(kept), database=database)
        wait_until(lambda: has_open(restore, database), "the restore waiting for the lock, its backup checked")
        lease = subprocess.Popen(
            [sys.executable, "-c", HOLD_A_LEASE, str(kept)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert lease.stdout is not None and lease.stdout.readline() == "leased\n"
        other_command = starpunk_db(*arguments, database=database)
        wait_until(lambda: has_open(other_command, database), f"the {second} waiting for the lock")
        with stopped(other_command):
            time.sleep(1.02 - time.time() % 1)  # at the start of a second: both name their backup within it
            release()
            # The restore has looked at the live file and chosen its undo backup's name; it
            # waits as it opens its backup to copy from it.
            assert lease.stdout.readline() == "opened\n"
        second_output = finished(other_command)  # the whole of the second command, meanwhile
        lease.communicate("\n", timeout=30)
    restore_output = finished(restore)

    kept_as = reported(r"is kept as (.+); restore that to undo", restore_output)
    written = reported(
        r"^backup written to (.+)$" if second == "upgrade" else r"is kept as (.+); restore that to undo", second_output
    )
    assert kept_as != written
    # The second command's backup holds the live file as it was; the restore's, what the
    # second command left.
    assert "only-in-the-live-file" in slugs(Path(written))
    if second == "upgrade":
        assert versions(Path(kept_as)) == [HEAD] and "only-in-the-live-file" in slugs(Path(kept_as))
    else:
        assert "from-the-second-backup" in slugs(Path(kept_as))
    assert "from-the-first-backup" in slugs(database)
