"""`starpunk-db restore`: back to a backup, with the live file backed up first, in place,
through SQLite; damaged or foreign backups refused with the live file untouched."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from starpunk_migrations.cli import main as cli

from conftest import HEAD, digest, run, versions
from starpunk_history import build, table_rows, with_note

# Real processes, several per test: the full suite runs these, `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow


def dump(path: Path) -> list[str]:
    """The whole content of a database as SQL: equal dumps, equal databases."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(db.iterdump())
    finally:
        db.close()


def backups(folder: Path) -> set[Path]:
    return set(folder.glob("starpunk.db.backup-*"))


@pytest.fixture
def upgraded(tmp_path) -> tuple[Path, Path]:
    """A legacy file upgraded by starpunk-db: the live file at head, and the backup it wrote."""
    database = build(tmp_path / "starpunk.db", "legacy v0.9.5")
    assert cli.main(["upgrade", str(database)]) == 0
    (backup,) = backups(tmp_path)
    return database, backup


def test_restore_round_trip_keeps_the_file_and_the_pre_restore_content(upgraded, capsys):
    database, backup = upgraded
    with_note(database, "written-after-the-upgrade")
    database.chmod(0o640)
    inode = database.stat().st_ino
    before_restore = dump(database)
    capsys.readouterr()

    assert cli.main(["restore", str(backup), str(database)]) == 0

    assert dump(database) == dump(backup)
    (undo,) = backups(database.parent) - {backup}
    assert dump(undo) == before_restore
    assert database.stat().st_ino == inode and database.stat().st_mode & 0o777 == 0o640
    out = capsys.readouterr().out.splitlines()
    assert (
        out[0]
        == f"Checked:   {backup} is sound (integrity check ok) and holds v0.8 / legacy v0.9.x (revision 001, detected from its schema)."
    )
    assert out[1].startswith(f"Backup:    {database} as it was (") and out[1].endswith(
        f"is kept as {undo}; restore that to undo this restore."
    )
    assert out[2] == f"Restored:  {database} now holds the backup's content (journal mode delete)."
    assert out[3] == f"Next:      StarPunk upgrades it at its next start; or run `starpunk-db upgrade {database}` now."

    # and the restore itself can be undone
    assert cli.main(["restore", str(undo), str(database)]) == 0
    assert dump(database) == before_restore
    assert versions(database) == [HEAD]


@pytest.mark.parametrize("live_mode, backup_mode", [("wal", "delete"), ("delete", "wal")])
def test_restore_keeps_the_live_files_journal_mode(tmp_path, live_mode, backup_mode):
    database = build(tmp_path / "starpunk.db", "v1.4")
    backup = build(tmp_path / "elsewhere.db", "v1.3")
    for path, mode in ((database, live_mode), (backup, backup_mode)):
        db = sqlite3.connect(path)
        db.execute(f"PRAGMA journal_mode = {mode}")
        db.close()

    assert cli.main(["restore", str(backup), str(database)]) == 0

    db = sqlite3.connect(database)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == live_mode
    db.close()
    assert table_rows(database) == table_rows(backup)


def test_a_reader_sees_the_old_content_or_the_new_never_a_mix(tmp_path):
    database = build(tmp_path / "starpunk.db", "v1.4")
    backup = build(tmp_path / "older.db", "v1.0")
    reader = sqlite3.connect(database, isolation_level=None)
    reader.execute("PRAGMA journal_mode = wal")
    reader.execute("BEGIN")
    old_tables = {row[0] for row in reader.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    result = run("starpunk-db", "restore", str(backup), str(database))

    assert result.returncode == 0, result.stderr
    # inside its transaction, the reader still sees the whole of the old content
    assert {row[0] for row in reader.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} == old_tables
    assert reader.execute("SELECT count(*) FROM media_variants").fetchone()[0] == 2
    reader.execute("COMMIT")
    # its next transaction sees the whole of the new
    assert "media_variants" not in {row[0] for row in reader.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert reader.execute("SELECT count(*) FROM notes").fetchone()[0] == 3
    reader.close()


def damaged(folder: Path) -> Path:
    """A StarPunk backup whose notes pages were overwritten: the header and schema read fine."""
    path = build(folder / "damaged.db", "v1.4")
    db = sqlite3.connect(path)
    db.executemany(
        "INSERT INTO notes (slug, file_path, created_at, updated_at) VALUES (?, ?, '', '')",
        [(f"n{i}", f"{i}" + "x" * 500) for i in range(200)],
    )
    db.commit()
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'notes'").fetchone()[0]
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with path.open("r+b") as file:
        file.seek((root - 1) * page_size + 8)
        file.write(b"\xff" * 64)
    return path


def wrongly_stamped(folder: Path) -> Path:
    """A v1.1 file (revision 005's schema) whose alembic_version says 003."""
    path = build(folder / "starpunk.db.backup-003-20260101T000000Z", "v1.1")
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY);INSERT INTO alembic_version VALUES ('003');"
    )
    db.close()
    return path


def foreign(folder: Path) -> Path:
    path = folder / "other-app.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    db.commit()
    db.close()
    return path


def not_a_database(folder: Path) -> Path:
    path = folder / "notes.txt"
    path.write_text("not a database\n" * 20)
    return path


def truncated(folder: Path) -> Path:
    path = folder / "truncated.db"
    path.write_bytes(build(folder / "whole.db", "v1.4").read_bytes()[:6000])
    (folder / "whole.db").unlink()
    return path


@pytest.mark.parametrize(
    "make_backup, reason",
    [
        (damaged, "SQLite's integrity check finds it damaged ("),
        (foreign, "it holds no StarPunk table (it has invoices)"),
        (wrongly_stamped, "stamped 003, but its schema is not that revision's"),
        (not_a_database, "it is not a SQLite database"),
        (truncated, "it is truncated"),
    ],
)
def test_a_damaged_or_foreign_backup_is_refused_and_the_live_file_untouched(tmp_path, make_backup, reason):
    backup_folder = tmp_path / "kept"
    backup_folder.mkdir()
    bad = make_backup(backup_folder)
    database = build(tmp_path / "starpunk.db", "v1.4")
    before, listing = digest(database), sorted(tmp_path.rglob("*"))

    result = run("starpunk-db", "restore", str(bad), str(database))

    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"starpunk-db: Refusing to restore {bad}: ") and reason in line
    assert line.endswith("the live database was not touched.")
    assert digest(database) == before
    assert sorted(tmp_path.rglob("*")) == listing


def test_a_live_file_of_another_application_is_never_restored_over(upgraded):
    """A wrong DATABASE_PATH: the file there is someone else's data, not StarPunk's to replace."""
    database, backup = upgraded
    other = database.with_name("invoices.db")
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total INTEGER)")
    db.execute("INSERT INTO invoices (total) VALUES (42)")
    db.commit()
    db.close()
    before, listing = digest(other), sorted(database.parent.iterdir())

    result = run("starpunk-db", "restore", str(backup), str(other))

    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"starpunk-db: Nothing was restored: {other} holds no StarPunk table (it has invoices)")
    assert "another application" in line
    assert digest(other) == before and sorted(database.parent.iterdir()) == listing


def test_restore_waits_for_a_writer_and_gives_up_touching_nothing(upgraded):
    database, backup = upgraded
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"db = sqlite3.connect({str(database)!r}, isolation_level=None)\n"
            "db.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        before, listing = digest(database), sorted(database.parent.iterdir())
        started = time.monotonic()
        result = run("starpunk-db", "restore", "--busy-timeout", "0.5", str(backup), str(database))
        assert time.monotonic() - started < 20
    finally:
        holder.kill()
        holder.wait()

    assert result.returncode == 1
    assert "is locked by another program writing to it" in result.stderr and "still after 0.5 seconds" in result.stderr
    assert digest(database) == before
    assert sorted(database.parent.iterdir()) == listing


def test_a_damaged_live_file_is_left_for_the_operator_to_move_aside(tmp_path):
    backup = build(tmp_path / "kept.db", "v1.4")
    database = tmp_path / "starpunk.db"
    database.write_bytes(build(tmp_path / "whole.db", "v1.4").read_bytes()[:5000])
    before, listing = digest(database), sorted(tmp_path.iterdir())

    result = run("starpunk-db", "restore", str(backup), str(database))

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"starpunk-db: {database} is truncated (5000 bytes, but its header says "
        f"{(tmp_path / 'whole.db').stat().st_size}); move it aside first "
        f"(mv {database} {database}.damaged), then restore again."
    )
    assert digest(database) == before and sorted(tmp_path.iterdir()) == listing

    database.rename(tmp_path / "starpunk.db.damaged")
    assert run("starpunk-db", "restore", str(backup), str(database)).returncode == 0
    assert dump(database) == dump(backup)


def test_page_sizes_a_wal_file_cannot_take_are_refused_before_anything_is_written(tmp_path):
    backup = build(tmp_path / "kept.db", "v1.4")
    db = sqlite3.connect(backup)
    db.execute("PRAGMA page_size = 8192")
    db.execute("VACUUM")
    db.close()
    database = build(tmp_path / "starpunk.db", "v1.4")
    db = sqlite3.connect(database)
    db.execute("PRAGMA journal_mode = wal")
    db.close()
    before, listing = digest(database), sorted(tmp_path.iterdir())

    result = run("starpunk-db", "restore", str(backup), str(database))

    assert result.returncode == 1
    assert "has 8192-byte pages and" in result.stderr and "Nothing was changed." in result.stderr
    assert digest(database) == before and sorted(tmp_path.iterdir()) == listing


def test_a_reader_that_will_not_let_go_makes_restore_give_up_leaving_nothing_behind(upgraded):
    database, backup = upgraded
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, time\n"
            f"db = sqlite3.connect({str(database)!r}, isolation_level=None)\n"
            "db.execute('BEGIN'); db.execute('SELECT count(*) FROM notes').fetchall()\n"
            "print('reading', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None
        assert reader.stdout.readline().strip() == "reading"
        before, listing = digest(database), sorted(database.parent.iterdir())
        result = run("starpunk-db", "restore", "--busy-timeout", "0.5", str(backup), str(database))
    finally:
        reader.kill()
        reader.wait()

    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"starpunk-db: {database} is ") and "by another program" in line
    assert line.endswith("still after 0.5 seconds; stop that program or wait for it to finish, then try again.")
    assert digest(database) == before
    assert sorted(database.parent.iterdir()) == listing  # the undo backup went with the attempt


# A StarPunk that keeps writing during the restore: a note every few milliseconds, each
# reported once committed, waiting for locks as StarPunk does (5 seconds).
KEEP_WRITING = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)
print("writing", flush=True)
for number in range(100_000):
    slug = f"{sys.argv[2]}-{number}"
    db.execute("INSERT INTO notes (slug, file_path, published, created_at, updated_at) "
               "VALUES (?, ?, 1, '2026-01-01', '2026-01-01')", (slug, f"notes/{slug}.md"))
    print(slug, flush=True)
    time.sleep(0.002)
"""


def slugs(path: Path) -> set[str]:
    db = sqlite3.connect(path)  # rolls back the write the killed writer was in the middle of
    try:
        return {slug for (slug,) in db.execute("SELECT slug FROM notes")}
    finally:
        db.close()


@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
def test_no_write_made_while_starpunk_runs_during_a_restore_is_lost(upgraded, journal_mode):
    """Each write lands before the restore (and is in its undo backup) or after it (and is in
    the live file): the undo backup is written under the restore's own write lock."""
    database, backup = upgraded
    db = sqlite3.connect(database)
    db.execute(f"PRAGMA journal_mode = {journal_mode}")
    db.close()
    for attempt in range(3):
        writer = subprocess.Popen(
            [sys.executable, "-c", KEEP_WRITING, str(database), f"attempt-{attempt}"], stdout=subprocess.PIPE, text=True
        )
        try:
            assert writer.stdout is not None
            assert writer.stdout.readline().strip() == "writing"
            time.sleep(0.05)
            before = backups(database.parent)
            result = run("starpunk-db", "restore", str(backup), str(database))
            time.sleep(0.25)  # writes onto the restored content
        finally:
            writer.kill()
            reported, _ = writer.communicate()

        assert result.returncode == 0, result.stderr
        (undo,) = backups(database.parent) - before
        written = set(reported.split())
        assert written - slugs(undo), "no write came after the undo backup"
        assert written <= slugs(database) | slugs(undo)


def in_utf16(source: Path, path: Path) -> Path:
    """`source`'s schema and rows in a file that stores its text as UTF-16le: as sound as the
    original (its integrity check passes), only stored otherwise."""
    copy = sqlite3.connect(path)
    copy.execute("PRAGMA encoding = 'UTF-16le'")
    copy.executescript("\n".join(dump(source)))
    copy.close()
    return path


def test_a_backup_that_stores_its_text_otherwise_is_refused_before_a_page_is_copied(tmp_path):
    """SQLite would copy it and commit, then fail on every connection already open to the file."""
    (tmp_path / "kept").mkdir()
    backup = in_utf16(build(tmp_path / "kept" / "v1.0.db", "v1.0"), tmp_path / "kept" / "starpunk-utf16.db")
    database = build(tmp_path / "starpunk.db", "v1.4")
    before, listing = digest(database), sorted(tmp_path.rglob("*"))

    result = run("starpunk-db", "restore", str(backup), str(database))

    assert result.returncode == 1
    assert result.stderr == (
        f"starpunk-db: {backup} stores its text as UTF-16le and {database} as UTF-8, which SQLite cannot copy in "
        f"place; nothing was changed: stop StarPunk, move the live file aside (mv {database} {database}.old), "
        "then restore again.\n"
    )
    assert digest(database) == before and sorted(tmp_path.rglob("*")) == listing

    database.rename(tmp_path / "starpunk.db.old")  # as the sentence says
    assert run("starpunk-db", "restore", str(backup), str(database)).returncode == 0
    assert table_rows(database) == table_rows(backup)
