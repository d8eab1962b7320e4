"""`starpunk-db backups`: the backups next to a database, newest first, read without
writing anything beside them."""

from __future__ import annotations

import json
import shutil
import sqlite3

from starpunk_migrations.cli import main as cli

from conftest import CHAIN, HEAD
from starpunk_history import build


def test_backups_lists_newest_first_with_state_revision_time_and_size(tmp_path, capsys):
    database = build(tmp_path / "starpunk.db", "v1.3")
    older = shutil.copyfile(database, tmp_path / "starpunk.db.backup-v1.3-20250101T090000Z")
    assert cli.main(["upgrade", str(database)]) == 0
    same_second = shutil.copyfile(database, tmp_path / "starpunk.db.backup-009-20250102T090000Z")
    later_that_second = shutil.copyfile(database, tmp_path / "starpunk.db.backup-009-20250102T090000Z-2")
    (tmp_path / "starpunk.db.backup-009-20250103T090000Z.partial").write_bytes(b"half")  # never listed
    (tmp_path / "other.db.backup-009-20250104T090000Z").write_bytes(b"")  # another file's
    (upgrade_backup,) = [path for path in tmp_path.glob("starpunk.db.backup-v1.3-*") if path != older]
    capsys.readouterr()

    assert cli.main(["backups", "--json", str(database)]) == 0

    listed = json.loads(capsys.readouterr().out)
    assert [entry["path"] for entry in listed] == [str(path) for path in (upgrade_backup, later_that_second, same_second, older)]
    assert [entry["revision"] for entry in listed] == ["008", HEAD, HEAD, "008"]
    assert listed[-1] == {
        "path": str(older),
        "state": "v1.3",
        "revision": "008",
        "created": "2025-01-01T09:00:00Z",
        "size": older.stat().st_size,
        "readable": True,
    }

    assert cli.main(["backups", str(database)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"Backups of {database}, newest first:"
    assert lines[-1].split() == ["2025-01-01", "09:00:00", "UTC", "008", *lines[-1].split()[4:6], str(older), "v1.3"]
    assert len(lines) == 5


def test_backups_of_a_wal_database_and_damaged_ones_are_read_without_writing_beside_them(tmp_path, capsys):
    database = build(tmp_path / "starpunk.db", "v1.4")
    db = sqlite3.connect(database)
    db.execute("PRAGMA journal_mode = wal")
    db.close()
    assert cli.main(["upgrade", str(database)]) == 0  # stamps it, after a backup of the WAL file
    assert cli.main(["stamp", "--force", CHAIN[-2], str(database)]) == 0  # and another
    (tmp_path / "starpunk.db.backup-x-20200101T000000Z").write_bytes(b"garbage" * 100)
    files = sorted(tmp_path.iterdir())
    capsys.readouterr()

    assert cli.main(["backups", "--json", str(database)]) == 0

    listed = json.loads(capsys.readouterr().out)
    # The stamp's backup holds the file at head, the upgrade's the v1.4 file it started from
    # (both may be taken in the same second), and the garbage is the oldest.
    assert sorted((entry["revision"], entry["readable"]) for entry in listed[:2]) == sorted([(HEAD, True), ("009", True)])
    assert (listed[2]["revision"], listed[2]["readable"]) == (None, False)
    assert listed[2]["state"].startswith("unreadable: ")
    assert sorted(tmp_path.iterdir()) == files  # no -wal, no -shm, nothing


def test_no_backups_says_where_they_would_be(tmp_path, capsys):
    database = build(tmp_path / "starpunk.db", "v1.4")
    assert cli.main(["backups", str(database)]) == 0
    assert capsys.readouterr().out.strip() == f"No backups of {database} (they are written next to it, as starpunk.db.backup-*)."
