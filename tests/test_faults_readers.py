"""A StarPunk worker still serving while the upgrade runs: its read transactions must neither
take the site down (new readers locked out) nor be mistaken for another writer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HEAD, versions
from faults import ENTRY_POINTS, assert_refused, command_line, environment, snapshot, upgrade
from starpunk_history import build

# Real processes, several per test: the full suite runs these, `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow

# A worker in the middle of serving a page: a read transaction held for argv[2] seconds.
HOLD_A_READ = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN")
db.execute("SELECT count(*) FROM notes").fetchall()
print("reading", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
time.sleep(120)
"""
# New visitors: a read every 50 ms, each allowed 5 seconds (StarPunk's own busy timeout).
KEEP_READING = """
import sqlite3, sys, time
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    try:
        db = sqlite3.connect(sys.argv[1], timeout=5)
        db.execute("SELECT count(*) FROM sqlite_master").fetchall()
        db.close()
    except sqlite3.Error as error:
        print(f"reader failed: {error}", flush=True)
    time.sleep(0.05)
print("visitors done", flush=True)
"""


def start(script: str, database: Path, seconds: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, str(database), str(seconds)], stdout=subprocess.PIPE, text=True)


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_a_reader_that_never_lets_go_is_named_and_never_locks_visitors_out(tmp_path, name):
    database = build(tmp_path / "starpunk.db", "legacy v0.9.5")
    before = snapshot(tmp_path)
    worker = start(HOLD_A_READ, database, 600)
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "reading"
        visitors = start(KEEP_READING, database, 8)
        result = subprocess.run(
            command_line(name, database, busy_timeout=4),
            env=environment(database),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        visits, _ = visitors.communicate(timeout=60)
    finally:
        worker.kill()
        worker.wait()

    assert_refused(result, name, "keeps reading it", "stop StarPunk", "WAL")
    assert "writing" not in result.stdout + result.stderr
    assert visits.strip() == "visitors done"  # not one visitor got "database is locked"
    assert snapshot(tmp_path) == before


def test_a_reader_that_lets_go_soon_does_not_stop_the_upgrade(tmp_path):
    database = build(tmp_path / "starpunk.db", "legacy v0.9.5")
    worker = start(HOLD_A_READ, database, 2.5)
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "reading"
        result = upgrade("starpunk-db", database)
    finally:
        worker.kill()
        worker.wait()

    assert result.returncode == 0, result.stdout + result.stderr
    assert versions(database) == [HEAD]
    assert len(list(tmp_path.glob("starpunk.db.backup-*"))) == 1
