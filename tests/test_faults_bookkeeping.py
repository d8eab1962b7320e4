"""Files whose bookkeeping lies, and users' own objects in a revision's way: refused before
any change, naming what was found and the command that fixes it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from starpunk_migrations.commands.upgrade import upgrade_database

from conftest import BIN, DETECTED_AT_HEAD, HEAD, versions
from faults import ENTRY_POINTS, assert_refused, run_command, snapshot, upgrade
from starpunk_history import build, stamped

# Real processes, several per test: the full suite runs these, `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow


def at_head(folder: Path) -> Path:
    database = folder / "starpunk.db"
    upgrade_database(f"sqlite:///{database}", "head", backup=False)
    return database


def execute(database: Path, script: str) -> Path:
    db = sqlite3.connect(database)
    db.executescript(script)
    db.commit()
    db.close()
    return database


def two_version_rows(folder: Path) -> Path:
    return execute(at_head(folder), "INSERT INTO alembic_version VALUES ('005')")


def no_version_row(folder: Path) -> Path:
    return execute(at_head(folder), "DELETE FROM alembic_version")


def stamp_ahead_of_schema(folder: Path) -> Path:
    """A legacy file (revision 001's schema) someone stamped 005 by hand."""
    return stamped(build(folder / "starpunk.db", "legacy v0.9.5"), "005")


ANOMALIES = {
    two_version_rows: ("alembic_version holds 2 rows", f"revision {DETECTED_AT_HEAD}'s", "starpunk-db stamp"),
    no_version_row: ("alembic_version has no row", f"revision {DETECTED_AT_HEAD}'s", "starpunk-db stamp"),
    stamp_ahead_of_schema: ("stamped 005", "revision 001's", "table notes_fts is missing", "starpunk-db stamp"),
}


@pytest.mark.parametrize("name", ENTRY_POINTS)
@pytest.mark.parametrize("make", ANOMALIES, ids=lambda make: make.__name__)
def test_bookkeeping_that_lies_is_refused_before_any_change(tmp_path, make, name):
    database = make(tmp_path)
    before = snapshot(tmp_path)

    result = upgrade(name, database)

    assert_refused(result, name, *ANOMALIES[make])
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("make", ANOMALIES, ids=lambda make: make.__name__)
def test_status_refuses_lying_bookkeeping_too(tmp_path, make):
    database = make(tmp_path)
    before = snapshot(tmp_path)

    result = run_command([str(BIN / "starpunk-db"), "status", str(database)], database)

    assert_refused(result, "starpunk-db", *ANOMALIES[make])
    assert snapshot(tmp_path) == before


def test_an_empty_alembic_version_on_an_empty_schema_is_simply_base(tmp_path):
    database = execute(tmp_path / "starpunk.db", "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
    assert upgrade("starpunk-db", database).returncode == 0
    assert versions(database) == [HEAD]


USERS_OWN = {
    "view": ("CREATE VIEW my_verifiers AS SELECT state, code_verifier FROM auth_state", "view my_verifiers", "revision 003"),
    "index": ("CREATE INDEX my_verifier_index ON auth_state(code_verifier)", "index my_verifier_index", "revision 003"),
    "foreign key": (
        "CREATE TABLE my_apps (id INTEGER PRIMARY KEY, token_id INTEGER REFERENCES tokens(id));INSERT INTO my_apps VALUES (1, 1)",
        "table my_apps has a foreign key to tokens",
        "revision 004",
    ),
}


@pytest.mark.parametrize("name", ENTRY_POINTS)
@pytest.mark.parametrize("kind", USERS_OWN)
def test_a_users_own_object_in_a_revisions_way_is_named(tmp_path, kind, name):
    script, *fragments = USERS_OWN[kind]
    database = execute(build(tmp_path / "starpunk.db", "legacy v0.9.5"), script)
    before = snapshot(tmp_path)

    result = upgrade(name, database)

    assert_refused(result, name, *fragments, "nothing was changed")
    assert snapshot(tmp_path) == before  # and the backup written before the failure is gone


def with_a_nameless_migration_row(path: Path, state: str) -> Path:
    """StarPunk's schema_migrations, rebuilt by hand without its NOT NULL, holding a row with no name."""
    return execute(
        build(path, state),
        "ALTER TABLE schema_migrations RENAME TO schema_migrations_old;"
        "CREATE TABLE schema_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, migration_name TEXT, applied_at TIMESTAMP);"
        "INSERT INTO schema_migrations SELECT * FROM schema_migrations_old;"
        "DROP TABLE schema_migrations_old;"
        "INSERT INTO schema_migrations (migration_name) VALUES (NULL);",
    )


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_a_schema_migrations_row_without_a_name_records_nothing_and_stops_nothing(tmp_path, name):
    database = with_a_nameless_migration_row(tmp_path / "starpunk.db", "v1.0")

    status = run_command([str(BIN / "starpunk-db"), "status", str(database)], database)
    result = upgrade(name, database)

    assert status.returncode == 0 and "State:     v1.0" in status.stdout, status.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    assert versions(database) == [HEAD]
