"""What operators type: URLs that are not StarPunk's file, bad options and targets, and the
commands that only read, which must not write a byte or create a file."""

from __future__ import annotations

import pytest

from starpunk_migrations import UpgradeRefused, ensure_schema
from starpunk_migrations.commands.upgrade import upgrade_database

from conftest import BIN, CHAIN, PROJECT, versions
from faults import ENTRY_POINTS, assert_refused, run_command, snapshot, upgrade
from starpunk_history import build

ALEMBIC = [str(BIN / "alembic"), "-c", str(PROJECT / "alembic.ini")]

NOT_A_FILE = {
    "postgresql://starpunk:secret@db.example/starpunk": ("is not a SQLite file", "DATABASE_PATH"),
    "mysql://starpunk@db.example/starpunk": ("is not a SQLite file", "DATABASE_PATH"),
    "sqlite://": ("in-memory database", "path of StarPunk's database file"),
    "sqlite:///:memory:": ("in-memory database", "path of StarPunk's database file"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", ENTRY_POINTS)
@pytest.mark.parametrize("url", NOT_A_FILE)
def test_a_url_that_is_not_a_sqlite_file_is_refused(tmp_path, url, name):
    result = upgrade(name, tmp_path / "unused.db", url=url, cwd=tmp_path)

    sentence = assert_refused(result, name, *NOT_A_FILE[url])
    assert "secret" not in sentence
    assert list(tmp_path.iterdir()) == []


def test_status_refuses_a_url_that_is_not_a_sqlite_file(tmp_path):
    result = run_command([str(BIN / "starpunk-db"), "status", "postgresql://db.example/starpunk"], cwd=tmp_path)
    assert_refused(result, "starpunk-db", "is not a SQLite file")


def test_a_busy_timeout_that_is_not_a_number_is_refused(tmp_path):
    database = build(tmp_path / "starpunk.db", "legacy v0.9.5")
    before = snapshot(tmp_path)

    result = run_command([*ALEMBIC, "-x", "busy_timeout=abc", "upgrade", "head"], database)

    assert_refused(result, "alembic", "busy_timeout=abc", "number of seconds")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", ["alembic", "starpunk-db"])
def test_a_target_that_does_not_exist_is_refused_before_any_write(tmp_path, name):
    database = build(tmp_path / "starpunk.db", "legacy v0.9.5")
    before = snapshot(tmp_path)

    result = upgrade(name, database, target="nonsense")

    assert_refused(result, name, "There is no revision 'nonsense'")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", ["alembic", "starpunk-db"])
@pytest.mark.parametrize("managed", [True, False], ids=["managed", "unmanaged"])
def test_an_older_target_points_to_downgrade_before_any_write(tmp_path, name, managed):
    database = tmp_path / "starpunk.db"
    if managed:
        upgrade_database(f"sqlite:///{database}", "head", backup=False)
    else:
        build(database, "v1.4")
    before = snapshot(tmp_path)

    result = upgrade(name, database, target="005")

    assert_refused(result, name, "past 005", "downgrade 005")
    assert snapshot(tmp_path) == before


def test_the_current_revision_as_target_writes_nothing(tmp_path):
    database = tmp_path / "starpunk.db"
    upgrade_database(f"sqlite:///{database}", "005", backup=False)
    before = snapshot(tmp_path)

    result = upgrade("starpunk-db", database, target="005")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"Nothing to do: {database} is at revision 005."
    assert snapshot(tmp_path) == before


def test_ensure_schema_refuses_other_databases_with_its_one_exception():
    with pytest.raises(UpgradeRefused, match="is not a SQLite file"):
        ensure_schema("postgresql://db.example/starpunk")
    with pytest.raises(UpgradeRefused, match="in-memory database"):
        ensure_schema("sqlite://")


READ_ONLY_COMMANDS = {
    "alembic current": [*ALEMBIC, "current"],
    "alembic check": [*ALEMBIC, "check"],
    "alembic history -i": [*ALEMBIC, "history", "-i"],
    "alembic heads": [*ALEMBIC, "heads"],
    "alembic upgrade --sql": [*ALEMBIC, "upgrade", "head", "--sql"],
    "starpunk-db status": [str(BIN / "starpunk-db"), "status"],
    "starpunk-db status --json": [str(BIN / "starpunk-db"), "status", "--json"],
    "starpunk-db upgrade --dry-run": [str(BIN / "starpunk-db"), "upgrade", "--dry-run"],
    "starpunk-db upgrade --sql": [str(BIN / "starpunk-db"), "upgrade", "--sql"],
}


@pytest.mark.slow
@pytest.mark.parametrize("state", ["legacy v0.9.5", "v1.4", "rc.2 hybrid"])
@pytest.mark.parametrize("command", READ_ONLY_COMMANDS)
def test_read_only_commands_write_nothing(tmp_path, command, state):
    database = build(tmp_path / "starpunk.db", state)
    before = snapshot(tmp_path)

    result = run_command(READ_ONLY_COMMANDS[command], database)

    assert "Traceback" not in result.stdout + result.stderr
    assert "stamping" not in result.stdout + result.stderr
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", READ_ONLY_COMMANDS)
def test_read_only_commands_create_no_database_and_no_data_folder(tmp_path, command):
    result = run_command(READ_ONLY_COMMANDS[command], cwd=tmp_path)  # the default: data/starpunk.db

    assert "Traceback" not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []


def test_alembic_current_on_an_unmanaged_file_says_what_an_upgrade_would_do(tmp_path):
    database = build(tmp_path / "starpunk.db", "legacy v0.9.5")
    result = run_command([*ALEMBIC, "current"], database)
    assert result.returncode == 0, result.stderr
    assert "an upgrade would stamp 001 (nothing was written)" in result.stdout


def test_alembic_check_on_an_unmanaged_file_neither_stamps_nor_backs_up(tmp_path):
    database = build(tmp_path / "starpunk.db", "v1.4")  # detected as head: nothing for autogenerate to add
    before = snapshot(tmp_path)

    result = run_command([*ALEMBIC, "check"], database)

    assert "Traceback" not in result.stdout + result.stderr
    assert snapshot(tmp_path) == before


def test_alembic_stamp_says_stamped(tmp_path):
    database = tmp_path / "starpunk.db"
    upgrade_database(f"sqlite:///{database}", "head", backup=False)
    previous = CHAIN[-2]

    result = run_command([*ALEMBIC, "-x", "backup=false", "stamp", previous], database)

    assert result.returncode == 0, result.stderr
    assert f"stamped {previous}" in result.stderr and "applied" not in result.stderr
    assert versions(database) == [previous]
