"""Read-only commands on a write-ahead-log (WAL) file read what its log holds, and write nothing.

In WAL mode the newest committed pages are in `<file>-wal`, indexed by `<file>-shm`. A crashed
StarPunk leaves both; opening the file, even read-only, makes SQLite rebuild that index in
place. A symlinked database keeps its log next to the real file, not next to the link.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from conftest import BIN
from faults import run_command, snapshot
from starpunk_history import build

# A StarPunk worker in WAL mode that commits a table into the log (never checkpointed), then
# either dies (SIGKILL: the -wal and -shm stay) or keeps the file open until stdin closes.
WRITE_TO_THE_LOG = """
import os, signal, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode = WAL")
db.execute("PRAGMA wal_autocheckpoint = 0")
db.execute("CREATE TABLE guestbook (entry TEXT)")
if sys.argv[2] == "crash":
    os.kill(os.getpid(), signal.SIGKILL)
print("written", flush=True)
sys.stdin.read()
"""


def status(path: Path) -> str:
    result = run_command([str(BIN / "starpunk-db"), "status", str(path)], path)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_status_of_a_crashed_wal_file_reads_its_log_and_leaves_log_and_index_as_they_were(tmp_path):
    database = build(tmp_path / "starpunk.db", "v1.4")
    crashed = subprocess.run([sys.executable, "-c", WRITE_TO_THE_LOG, str(database), "crash"], check=False)
    assert crashed.returncode == -signal.SIGKILL
    before = snapshot(tmp_path)
    assert sorted(before) == ["starpunk.db", "starpunk.db-shm", "starpunk.db-wal"]

    shown = status(database)

    assert "Not StarPunk's (left alone): guestbook" in shown  # committed in the log only
    assert snapshot(tmp_path) == before  # not a byte of the file, its log or its index rewritten


def test_status_through_a_symlink_reads_the_log_next_to_the_real_file(tmp_path):
    (tmp_path / "data").mkdir()
    real = build(tmp_path / "data" / "real.db", "v1.4")
    link = tmp_path / "starpunk.db"
    link.symlink_to(real)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITE_TO_THE_LOG, str(real), "stay"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    try:
        assert writer.stdout.readline().strip() == "written"

        shown = status(link)
    finally:
        writer.communicate("", timeout=30)

    assert "Not StarPunk's (left alone): guestbook" in shown
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data", "starpunk.db"]  # no log beside the link
