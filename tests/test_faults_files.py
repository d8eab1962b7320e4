"""Files as real hosts have them: crashed writers' journals, private permissions, odd paths,
full disks, size limits, files the user cannot read."""

from __future__ import annotations

import json
import os
import resource
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BIN, HEAD, digest, versions
from faults import ENTRY_POINTS, assert_refused, command_line, run_command, snapshot, upgrade
from starpunk_history import NOTES, build

# Real processes, several per test: the full suite runs these, `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow

CRASH_MID_WRITE = """
import os, signal, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA cache_size = 1")  # spill changed pages into the file before the commit
db.execute("BEGIN")
db.execute("UPDATE notes SET slug = slug || '-never-committed'")
db.executemany("INSERT INTO notes (slug, file_path) VALUES (?, ?)", [(f"x{i}", f"x{i}" + "x" * 300) for i in range(3000)])
os.kill(os.getpid(), signal.SIGKILL)
"""


def crashed_mid_write(path: Path) -> Path:
    """A legacy StarPunk file whose writer was killed mid-transaction: a hot -journal beside it."""
    build(path, "legacy v0.9.5")
    subprocess.run([sys.executable, "-c", CRASH_MID_WRITE, str(path)], check=False)
    assert path.with_name(path.name + "-journal").stat().st_size > 0
    return path


def committed_slugs(path: Path) -> list[str]:
    db = sqlite3.connect(path)  # rolls a hot journal back, as StarPunk's next start would
    try:
        return [row[0] for row in db.execute("SELECT slug FROM notes ORDER BY id")]
    finally:
        db.close()


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_a_hot_journal_is_rolled_back_under_the_lock_and_the_file_upgraded(tmp_path, name):
    database = crashed_mid_write(tmp_path / "starpunk.db")

    result = upgrade(name, database)

    assert result.returncode == 0, result.stdout + result.stderr
    assert versions(database) == [HEAD]
    assert committed_slugs(database) == [note["slug"] for note in NOTES]
    backup = next(tmp_path.glob("starpunk.db.backup-*"))
    assert committed_slugs(backup) == [note["slug"] for note in NOTES]  # the committed content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["starpunk.db", backup.name]


def test_status_of_a_hot_journal_file_shows_the_recovered_state_and_writes_nothing(tmp_path):
    database = crashed_mid_write(tmp_path / "starpunk.db")
    before = snapshot(tmp_path)

    result = run_command([str(BIN / "starpunk-db"), "status", str(database)], database)

    assert result.returncode == 0, result.stderr
    assert "State:     v0.8 / legacy v0.9.x" in result.stdout
    assert snapshot(tmp_path) == before  # file and journal byte-identical, nothing new


def test_alembic_current_of_a_hot_journal_file_writes_nothing(tmp_path):
    database = crashed_mid_write(tmp_path / "starpunk.db")
    before = snapshot(tmp_path)

    result = run_command([str(BIN / "alembic"), "-c", str(Path(__file__).parent.parent / "alembic.ini"), "current"], database)

    assert result.returncode == 0, result.stderr
    assert "which is revision 001" in result.stdout and "nothing was written" in result.stdout
    assert snapshot(tmp_path) == before


def test_status_of_a_closed_wal_file_creates_no_log_or_shared_memory_file(tmp_path):
    database = build(tmp_path / "starpunk.db", "v1.4")
    sqlite3.connect(database).execute("PRAGMA journal_mode = WAL").connection.close()
    before = snapshot(tmp_path)
    assert list(before) == ["starpunk.db"]

    result = run_command([str(BIN / "starpunk-db"), "status", str(database)], database)

    assert result.returncode == 0, result.stderr
    assert "State:     v1.4 / v1.5" in result.stdout
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
def test_a_private_database_gets_a_private_backup(tmp_path, journal_mode):
    database = build(tmp_path / "starpunk.db", "v0.1")  # plaintext session cookies, Micropub tokens
    database.chmod(0o600)
    keeper = sqlite3.connect(database)
    keeper.execute(f"PRAGMA journal_mode = {journal_mode}")
    keeper.execute("SELECT 1 FROM notes").fetchall()
    try:
        result = upgrade("starpunk-db", database)
    finally:
        keeper.close()
    assert result.returncode == 0, result.stderr
    backup = next(tmp_path.glob("starpunk.db.backup-*"))
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600


ODD_NAMES = ["with space.db", "ünïcødé.db", "hash#tag.db", "what?mode=memory.db", "per%20cent.db", "all ?#% of them.db"]


@pytest.mark.parametrize("name", ENTRY_POINTS)
@pytest.mark.parametrize("file_name", ODD_NAMES)
def test_any_path_is_a_path(tmp_path, name, file_name):
    folder = tmp_path / "data folder #1"
    folder.mkdir()
    database = build(folder / file_name, "legacy v0.9.5")

    status = run_command([str(BIN / "starpunk-db"), "status", str(database)], database)
    assert "State:     v0.8 / legacy v0.9.x" in status.stdout, status.stdout + status.stderr

    result = upgrade(name, database)

    assert result.returncode == 0, result.stdout + result.stderr
    assert versions(database) == [HEAD]
    names = sorted(path.name for path in folder.iterdir())
    assert len(names) == 2 and names[0] == file_name and names[1].startswith(f"{file_name}.backup-v0.8-"), names
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data folder #1"]


def table_names(path: Path) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        db.close()


@pytest.mark.parametrize("file_name", ODD_NAMES)
def test_backups_and_restore_take_any_path_too(tmp_path, file_name):
    folder = tmp_path / "data folder #1"
    folder.mkdir()
    database = build(folder / file_name, "legacy v0.9.5")
    assert run_command([str(BIN / "starpunk-db"), "upgrade", str(database)], database).returncode == 0
    (backup,) = [path for path in folder.iterdir() if path != database]

    listed = run_command([str(BIN / "starpunk-db"), "backups", "--json", str(database)], database)
    restored = run_command([str(BIN / "starpunk-db"), "restore", str(backup), str(database)], database)

    assert [(entry["path"], entry["revision"]) for entry in json.loads(listed.stdout)] == [(str(backup), "001")]
    assert restored.returncode == 0, restored.stderr
    assert "tokens" in table_names(database) and table_names(database) == table_names(backup)  # the legacy content is back
    assert len(list(folder.iterdir())) == 3  # the file, its backup, the pre-restore backup
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data folder #1"]


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_a_symlink_upgrades_the_file_it_points_to(tmp_path, name):
    real = build(tmp_path / "real.db", "legacy v0.9.5")
    link = tmp_path / "starpunk.db"
    link.symlink_to(real)

    result = upgrade(name, link)

    assert result.returncode == 0, result.stdout + result.stderr
    assert link.is_symlink() and versions(real) == [HEAD]


@pytest.fixture
def small_file_system(tmp_path):
    """A real, nearly full file system: a 3 MB tmpfs (root can mount one)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount_point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.decode().strip() or 'not root'})")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def grown(path: Path, kilobytes: int) -> Path:
    """A legacy file of about `kilobytes` KB: notes with long file paths."""
    build(path, "legacy v0.9.5")
    db = sqlite3.connect(path)
    db.executemany(
        "INSERT INTO notes (slug, file_path) VALUES (?, ?)", ((f"n{i}", f"n{i}" + "p" * 900) for i in range(kilobytes))
    )
    db.commit()
    db.close()
    return path


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_no_room_for_backup_and_journal_is_refused_before_any_write(small_file_system, name):
    database = grown(small_file_system / "starpunk.db", 1200)  # 1.2 MB of 3 MB: no room for 2 more
    before = snapshot(small_file_system)

    result = upgrade(name, database)

    assert_refused(result, name, "not enough free space", "MB is needed")
    assert snapshot(small_file_system) == before


@pytest.mark.parametrize("command", ["restore", "stamp --force"])
def test_restore_and_stamp_check_the_room_for_their_backup_first(small_file_system, tmp_path, command):
    database = grown(small_file_system / "starpunk.db", 1200)
    kept = build(tmp_path / "starpunk.db.backup-v1.4-20260101T000000Z", "v1.4")  # on a roomier disk
    before = snapshot(small_file_system)
    arguments = ["restore", str(kept)] if command == "restore" else ["stamp", "--force", HEAD]

    result = run_command([str(BIN / "starpunk-db"), *arguments, str(database)], database)

    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "not enough free space" in result.stderr and "MB is needed" in result.stderr
    assert snapshot(small_file_system) == before


def test_a_full_disk_mid_backup_leaves_nothing_behind(small_file_system):
    database = grown(small_file_system / "starpunk.db", 1000)
    filler = small_file_system / "filler"
    before = digest(database)
    # The room check passes for the journal alone; the space goes while the copy is written.
    result = run_command(
        [
            sys.executable,
            "-c",
            (
                "import os, sys\nfrom starpunk_migrations.foundation import backup\nfrom starpunk_migrations import UpgradeRefused, ensure_schema\n"
                "real = backup._create_private\n"
                "def fill_the_disk(created, mode):\n"
                "    real(created, mode)\n"
                "    with open(sys.argv[2], 'wb') as f:\n"
                "        try:\n            f.write(b'x' * (8 << 20))\n        except OSError:\n            pass\n"
                "backup._create_private = fill_the_disk\nbackup.require_room = lambda path, backup: None\n"
                "try:\n    ensure_schema(sys.argv[1])\nexcept UpgradeRefused as refusal:\n    sys.exit(f'refused: {refusal}')\n"
            ),
            f"sqlite:///{database}",
            str(filler),
        ],
        database,
    )
    filler.unlink()

    assert_refused(result, "ensure_schema", "no room")
    assert digest(database) == before
    assert sorted(p.name for p in small_file_system.iterdir()) == ["starpunk.db"]


def _file_size_limit(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_a_file_size_limit_mid_upgrade_leaves_the_file_as_it_was(tmp_path, name):
    database = build(tmp_path / "starpunk.db", "v0.1")
    db = sqlite3.connect(database)  # v0.4 rehashes every session: the file must grow
    db.executemany(
        "INSERT INTO sessions (session_token, me, expires_at) VALUES (?, 'https://example.org/', '2099')",
        ((f"token-{i}",) for i in range(20000)),
    )
    db.commit()
    db.close()
    before = digest(database)

    result = upgrade(name, database, preexec_fn=_file_size_limit(database.stat().st_size + 8192))

    assert_refused(result, name, "nothing was changed")
    assert digest(database) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["starpunk.db"]


@pytest.fixture(scope="module")
def without_override() -> list[str]:
    """A command prefix under which permission bits bind: as root, `setpriv` drops the
    capabilities that let root read and write anything."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("root ignores permission bits and there is no setpriv to drop that power")
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}"]


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_a_file_the_user_cannot_read_is_refused(tmp_path, name, without_override):
    database = build(tmp_path / "starpunk.db", "legacy v0.9.5")
    before = snapshot(tmp_path)
    database.chmod(0)
    try:
        result = run_command([*without_override, *command_line(name, database)], database)
    finally:
        database.chmod(0o600)

    assert_refused(result, name, "permission denied")
    assert snapshot(tmp_path) == before


def test_ensure_schema_takes_a_plain_path_whatever_it_holds(tmp_path):
    from starpunk_migrations import ensure_schema

    folder = tmp_path / "data folder #1"
    folder.mkdir()
    database = build(folder / "what?mode=memory#x.db", "legacy v0.9.5")

    assert ensure_schema(str(database), backup=False) == HEAD
    assert ensure_schema(database) == HEAD  # a Path too, and at head now: one read

    assert versions(database) == [HEAD]
    assert sorted(path.name for path in folder.iterdir()) == [database.name]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data folder #1"]
