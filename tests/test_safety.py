"""The upgrade is the safest moment in a database's life: refusals, backups, workers, crashes.

Real files and real subprocesses throughout: `alembic`, `starpunk-db` and a Python
process calling `ensure_schema`, as gunicorn workers would.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from starpunk_migrations import UpgradeRefused, ensure_schema
from starpunk_migrations.commands.upgrade import upgrade_database

from conftest import BIN, CHAIN, HEAD, PROJECT, digest, run, versions
from starpunk_history import assert_rows_kept, build, sha256_hex, stamped, table_rows

# Real processes, several per test: the full suite runs these, `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow

ENSURE_SCHEMA = "import sys; from starpunk_migrations import ensure_schema; ensure_schema(sys.argv[1])"
ENSURE_SCHEMA_REPORTING = (
    "import sys\nfrom starpunk_migrations import ensure_schema, UpgradeRefused\n"
    "try:\n    ensure_schema(sys.argv[1], busy_timeout=float(sys.argv[2]))\n"
    "except UpgradeRefused as refusal:\n    sys.exit(f'refused: {refusal}')\n"
)


def entry_points(database: Path, busy_timeout: float = 120) -> dict[str, list[str]]:
    """The three ways a StarPunk database gets upgraded, as command lines."""
    return {
        "alembic": [
            str(BIN / "alembic"),
            "-c",
            str(PROJECT / "alembic.ini"),
            "-x",
            f"busy_timeout={busy_timeout}",
            "upgrade",
            "head",
        ],
        "starpunk-db": [str(BIN / "starpunk-db"), "upgrade", "--busy-timeout", str(busy_timeout), str(database)],
        "ensure_schema": [sys.executable, "-c", ENSURE_SCHEMA_REPORTING, f"sqlite:///{database}", str(busy_timeout)],
    }


def run_entry_point(name: str, database: Path, busy_timeout: float = 120) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DATABASE_PATH": str(database)}
    environment.pop("DATABASE_URL", None)
    return subprocess.run(
        entry_points(database, busy_timeout)[name],
        env=environment,
        cwd=database.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_refused_plainly(result: subprocess.CompletedProcess, name: str, fragment: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    if name == "starpunk-db":
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("starpunk-db: ") and fragment in lines[0], result.stderr
    elif name == "alembic":
        assert "FAILED: " in result.stdout and fragment in result.stdout, result.stdout + result.stderr
    else:
        assert result.stderr.strip().startswith("refused: ") and fragment in result.stderr, result.stderr


def not_a_database(folder: Path) -> Path:
    path = folder / "starpunk.db"
    path.write_text("# my notes\nnot a database at all\n" * 50)
    return path


def truncated(folder: Path) -> Path:
    path = build(folder / "starpunk.db", "v1.4")
    sqlite3.connect(path).executemany(
        "INSERT INTO notes (slug, file_path) VALUES (?, ?)", [(f"n{i}", f"n{i}.md") for i in range(3000)]
    ).connection.commit()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def folder_instead_of_file(folder: Path) -> Path:
    path = folder / "starpunk.db"
    path.mkdir()
    return path


def other_application(folder: Path) -> Path:
    path = folder / "starpunk.db"
    sqlite3.connect(path).execute("CREATE TABLE pages (id INTEGER PRIMARY KEY, body TEXT)").connection.close()
    return path


def schema_no_release_had(folder: Path) -> Path:
    path = build(folder / "starpunk.db", "v1.0")
    sqlite3.connect(path).execute("ALTER TABLE sessions ADD COLUMN remember_me INTEGER").connection.close()
    return path


def unknown_revision(folder: Path) -> Path:
    path = folder / "starpunk.db"
    upgrade_database(f"sqlite:///{path}", "head", backup=False)
    return stamped(path, "999")


BAD_INPUTS = {
    not_a_database: "is not a SQLite database",
    truncated: "is truncated",
    folder_instead_of_file: "is a folder",
    other_application: "another application",
    schema_no_release_had: "matches no StarPunk release",
    unknown_revision: "revision '999'",
}


@pytest.mark.parametrize("name", ["alembic", "starpunk-db", "ensure_schema"])
@pytest.mark.parametrize("make", BAD_INPUTS, ids=lambda make: make.__name__)
def test_bad_input_is_refused_in_one_sentence_and_left_byte_identical(tmp_path, make, name):
    database = make(tmp_path)
    before = digest(database) if database.is_file() else None

    result = run_entry_point(name, database)

    assert_refused_plainly(result, name, BAD_INPUTS[make])
    assert (digest(database) if database.is_file() else None) == before
    assert not list(tmp_path.glob("*.backup-*"))


def test_ensure_schema_raises_one_exception_type_for_bad_input(tmp_path):
    for make, fragment in BAD_INPUTS.items():
        folder = tmp_path / make.__name__
        folder.mkdir()
        database = make(folder)
        with pytest.raises(UpgradeRefused, match=re.escape(fragment)):
            ensure_schema(f"sqlite:///{database}")


@pytest.mark.parametrize("name", ["alembic", "starpunk-db", "ensure_schema"])
def test_a_database_locked_beyond_the_timeout_is_refused(tmp_path, name):
    database = build(tmp_path / "starpunk.db", "legacy v0.9.5")
    before = digest(database)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time; db = sqlite3.connect(sys.argv[1], isolation_level=None); "
            "db.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(30)",
            str(database),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        result = run_entry_point(name, database, busy_timeout=0.5)
        assert time.monotonic() - started < 20
    finally:
        holder.kill()
        holder.wait()
    assert_refused_plainly(result, name, "is locked by another program")
    assert digest(database) == before


@contextlib.contextmanager
def made_read_only(path: Path):
    """Read-only for whoever runs the tests. Root writes through any permission bit, so
    there the file or folder is made immutable (`chattr +i`), which binds root too."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("this file system cannot make a file immutable, and root ignores permission bits")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.mark.parametrize("name", ["alembic", "starpunk-db", "ensure_schema"])
@pytest.mark.parametrize("read_only", ["file", "folder"])
def test_a_read_only_file_or_folder_is_refused(tmp_path, name, read_only):
    database = build(tmp_path / "starpunk.db", "legacy v0.9.5")
    before = digest(database)

    with made_read_only(database if read_only == "file" else tmp_path):
        result = run_entry_point(name, database)

    assert_refused_plainly(result, name, "read-only")
    assert digest(database) == before


def test_backup_is_a_consistent_copy_written_before_the_first_change(tmp_path, capsys):
    from starpunk_migrations.cli import main as cli

    database = build(tmp_path / "starpunk.db", "legacy v0.9.5")
    original = table_rows(database)

    assert cli.main(["upgrade", str(database)]) == 0

    backups = list(tmp_path.glob("starpunk.db.backup-*"))
    assert len(backups) == 1
    assert re.fullmatch(r"starpunk\.db\.backup-v0\.8-legacy-v0\.9\.x-\d{8}T\d{6}Z", backups[0].name)
    assert f"backup written to {backups[0]}" in capsys.readouterr().out
    assert table_rows(backups[0]) == original
    assert not _has_alembic_version(backups[0])  # taken before the stamp, the first change
    assert sqlite3.connect(backups[0]).execute("PRAGMA integrity_check").fetchone() == ("ok",)

    assert cli.main(["upgrade", str(database)]) == 0  # already at head: no second backup
    assert len(list(tmp_path.glob("starpunk.db.backup-*"))) == 1


def test_backup_of_a_wal_database_includes_what_is_still_in_the_log(tmp_path):
    database = build(tmp_path / "starpunk.db", "legacy v0.9.5")
    keeper = sqlite3.connect(database)  # held open, so the log is not checkpointed away
    keeper.execute("PRAGMA journal_mode = WAL")
    keeper.execute("INSERT INTO notes (slug, file_path) VALUES ('only-in-the-log', 'log.md')")
    keeper.commit()
    try:
        result = run("starpunk-db", "upgrade", str(database))
        assert result.returncode == 0, result.stderr
    finally:
        keeper.close()
    backup = next(tmp_path.glob("starpunk.db.backup-*"))
    slugs = {row[0] for row in sqlite3.connect(backup).execute("SELECT slug FROM notes")}
    assert "only-in-the-log" in slugs


def test_a_managed_file_backup_is_named_after_its_revision(tmp_path):
    database = tmp_path / "starpunk.db"
    upgrade_database(f"sqlite:///{database}", "005", backup=False)
    report = upgrade_database(f"sqlite:///{database}", "head")
    assert report.backup is not None and report.backup.name.startswith("starpunk.db.backup-005-")
    assert versions(report.backup) == ["005"]


def test_backups_can_be_turned_off(tmp_path):
    first = build(tmp_path / "first.db", "v1.0")
    second = build(tmp_path / "second.db", "v1.0")
    assert run("starpunk-db", "upgrade", "--no-backup", str(first)).returncode == 0
    assert ensure_schema(f"sqlite:///{second}", backup=False) == HEAD
    assert run("alembic", "-x", "backup=false", "upgrade", "head", database=build(tmp_path / "third.db", "v1.0")).returncode == 0
    assert not list(tmp_path.glob("*.backup-*"))


def many_sessions(path: Path, count: int) -> Path:
    """A v0.1 file with `count` plaintext sessions: v0_4_0 rewrites every one of them."""
    build(path, "v0.1")
    db = sqlite3.connect(path)
    db.executemany(
        "INSERT INTO sessions (session_token, me, expires_at) VALUES (?, 'https://example.org/', '2099-01-01')",
        ((f"token-{i}",) for i in range(count)),
    )
    db.commit()
    db.close()
    return path


def test_eight_workers_starting_at_once_all_succeed_and_one_migrates(tmp_path):
    database = many_sessions(tmp_path / "starpunk.db", 50_000)
    before = table_rows(database)
    names = ["alembic", "starpunk-db", "ensure_schema"] * 3
    environment = {**os.environ, "DATABASE_PATH": str(database)}
    workers = [
        subprocess.Popen(
            entry_points(database)[name], env=environment, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name in names[:8]
    ]
    results = [(worker.wait(timeout=120), worker.stderr.read() if worker.stderr else "") for worker in workers]

    assert [code for code, _ in results] == [0] * 8, results
    assert versions(database) == [HEAD]
    assert len(list(tmp_path.glob("starpunk.db.backup-*"))) == 1
    assert_rows_kept(before, table_rows(database))


@pytest.fixture(scope="module")
def slow_upgrade_file(tmp_path_factory) -> Path:
    """A v0.1 file whose upgrade takes about a second (a few hundred thousand sessions)."""
    return many_sessions(tmp_path_factory.mktemp("template") / "starpunk.db", 300_000)


def test_sigkill_at_any_moment_leaves_a_sound_database_that_a_rerun_finishes(tmp_path, slow_upgrade_file):
    randomness = random.Random(20261121)
    counts = _counts(slow_upgrade_file)
    chain = {None, *CHAIN}
    # Kill moments spread over the whole run (start-up, backup, rehashing, commit), jittered.
    moments = [0.3 + 0.45 * trial + randomness.uniform(0, 0.3) for trial in range(8)]
    killed_mid_write = 0
    for trial, moment in enumerate(moments):
        folder = tmp_path / f"trial-{trial}"
        folder.mkdir()
        database = folder / "starpunk.db"
        shutil.copy(slow_upgrade_file, database)
        name = ["starpunk-db", "alembic", "ensure_schema"][trial % 3]
        worker = subprocess.Popen(
            entry_points(database)[name],
            env={**os.environ, "DATABASE_PATH": str(database)},
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(moment)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        killed_mid_write += (folder / "starpunk.db-journal").exists()

        db = sqlite3.connect(database)  # opening rolls back a hot journal, as StarPunk's next start would
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        db.close()
        revision = versions(database)[0] if _has_alembic_version(database) else None
        assert revision in chain
        assert _counts(database) == counts
        # A backup cut short keeps its ".partial" name (beside the empty file that reserved its
        # name); one named as a backup, with content, is whole.
        for backup in folder.glob("starpunk.db.backup-*"):
            if not backup.name.endswith(".partial") and backup.stat().st_size > 0:
                assert _counts(backup) == counts

        assert ensure_schema(f"sqlite:///{database}", backup=False) == HEAD
        assert _counts(database) == counts
        token = sqlite3.connect(database).execute("SELECT session_token_hash FROM sessions WHERE id = 9").fetchone()[0]
        assert token == sha256_hex("token-6")  # ids 1 and 2 are the builder's sessions: hashed once, never twice
    assert killed_mid_write >= 1, "no kill landed while the upgrade was writing"


def _has_alembic_version(database: Path) -> bool:
    db = sqlite3.connect(database)
    try:
        return db.execute("SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'").fetchone() is not None
    finally:
        db.close()


def _counts(database: Path) -> dict[str, int]:
    db = sqlite3.connect(database)
    try:
        return {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in ("notes", "sessions", "auth_state")}
    finally:
        db.close()
