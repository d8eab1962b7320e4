"""Every StarPunk state found in the wild is detected, stamped and upgraded with nothing lost."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy

from starpunk_migrations import UpgradeRefused, ensure_schema
from starpunk_migrations.adoption.detection import detect_state
from starpunk_migrations.cli import main as cli
from starpunk_migrations.commands.upgrade import upgrade_database
from starpunk_migrations.schema.shape import SchemaShape

from conftest import CHAIN, HEAD, digest, run, versions
from starpunk_history import STATES, assert_rows_kept, build, stamped, table_rows

STATE_IDS = [state.name for state in STATES]


def shape_of(database: Path) -> SchemaShape:
    engine = sqlalchemy.create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        shape = SchemaShape.read(connection)
    engine.dispose()
    return shape


def names(shape: SchemaShape) -> tuple:
    return shape.tables, shape.indexes, shape.triggers, shape.foreign_keys


@pytest.fixture(scope="module")
def fresh_install(tmp_path_factory) -> SchemaShape:
    database = tmp_path_factory.mktemp("fresh") / "starpunk.db"
    upgrade_database(f"sqlite:///{database}", "head", backup=False)
    return shape_of(database)


def status_of(database: Path, capsys) -> dict:
    assert cli.main(["status", "--json", str(database)]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("state", STATES, ids=STATE_IDS)
def test_detected_revision_is_the_one_the_history_table_gives(tmp_path, state):
    database = build(tmp_path / "starpunk.db", state)
    engine = sqlalchemy.create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        assert detect_state(connection).revision == state.revision
    engine.dispose()


@pytest.mark.parametrize("state", STATES, ids=STATE_IDS)
def test_status_reports_the_state_and_leaves_the_file_byte_identical(tmp_path, state, capsys):
    database = build(tmp_path / "starpunk.db", state)
    before = digest(database)

    status = status_of(database, capsys)

    assert digest(database) == before
    assert (status["revision"], status["managed"], status["head"]) == (state.revision, False, HEAD)
    assert status["pending"] == (CHAIN[CHAIN.index(state.revision) + 1 :] if state.revision else CHAIN)


def upgrade_with_alembic(database: Path) -> None:
    result = run("alembic", "upgrade", "head", database=database)
    assert result.returncode == 0, result.stderr


def upgrade_with_starpunk_db(database: Path) -> None:
    assert cli.main(["upgrade", str(database)]) == 0


def upgrade_with_ensure_schema(database: Path) -> None:
    assert ensure_schema(f"sqlite:///{database}") == HEAD


UPGRADES = [upgrade_with_alembic, upgrade_with_starpunk_db, upgrade_with_ensure_schema]


@pytest.mark.slow
@pytest.mark.parametrize("upgrade", UPGRADES, ids=lambda f: f.__name__.removeprefix("upgrade_with_"))
@pytest.mark.parametrize("state", STATES, ids=STATE_IDS)
def test_every_state_reaches_head_intact(tmp_path, state, upgrade, fresh_install):
    database = build(tmp_path / "starpunk.db", state)
    before = table_rows(database)

    upgrade(database)

    assert versions(database) == [HEAD]
    assert names(shape_of(database)) == names(fresh_install)
    assert_rows_kept(before, table_rows(database))
    db = sqlite3.connect(database)
    recorded = [row[0][:3] for row in db.execute("SELECT migration_name FROM schema_migrations ORDER BY migration_name")]
    db.close()
    assert recorded == [f"{n:03}" for n in range(1, 10)]
    at_head = digest(database)
    upgrade(database)
    assert digest(database) == at_head, "a second upgrade changed the file"


@pytest.mark.slow
@pytest.mark.parametrize("state", STATES, ids=STATE_IDS)
def test_alembic_check_is_clean_after_upgrading_each_state(tmp_path, state):
    database = build(tmp_path / "starpunk.db", state)
    upgrade_with_alembic(database)
    result = run("alembic", "check", database=database)
    assert result.returncode == 0 and "No new upgrade operations detected" in result.stdout + result.stderr


def test_alembic_current_reports_the_detected_state_without_writing(tmp_path):
    database = build(tmp_path / "starpunk.db", "rc.2 hybrid")
    before = digest(database)
    result = run("alembic", "current", database=database)
    assert result.returncode == 0
    assert (
        "'v1.0.0-rc.1 .. rc.3 with idx_tokens_expires, idx_tokens_hash and idx_tokens_me missing', which is revision 002"
        in result.stdout
    )
    assert digest(database) == before


def test_a_table_and_an_index_of_the_users_own_are_left_alone(tmp_path, capsys):
    database = build(tmp_path / "starpunk.db", "legacy v0.9.5")
    db = sqlite3.connect(database)
    db.executescript(
        "CREATE TABLE guestbook (id INTEGER PRIMARY KEY, message TEXT);"
        "INSERT INTO guestbook (message) VALUES ('hi');"
        "CREATE INDEX my_notes_by_update ON notes(updated_at);"
    )
    db.close()

    assert status_of(database, capsys)["unknown_tables"] == ["guestbook"]
    upgrade_with_starpunk_db(database)

    db = sqlite3.connect(database)
    assert db.execute("SELECT message FROM guestbook").fetchall() == [("hi",)]
    assert db.execute("SELECT 1 FROM sqlite_master WHERE name = 'my_notes_by_update'").fetchone()
    db.close()
    assert versions(database) == [HEAD]


def refused(database: Path, capsys) -> str:
    """Every entry point refuses, and the file stays byte-identical; returns the message."""
    before = digest(database)
    with pytest.raises(UpgradeRefused) as refusal:
        ensure_schema(f"sqlite:///{database}")
    assert cli.main(["upgrade", str(database)]) == 1
    assert "starpunk-db: " + str(refusal.value) in capsys.readouterr().err
    result = run("alembic", "upgrade", "head", database=database)
    # Alembic's own convention: "FAILED: ..." on stdout, the message logged on stderr, exit 255.
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert str(refusal.value) in result.stderr and f"FAILED: {refusal.value}" in result.stdout
    assert digest(database) == before
    return str(refusal.value)


def test_a_schema_no_release_had_is_refused_with_the_nearest_revision(tmp_path, capsys):
    database = build(tmp_path / "starpunk.db", "legacy v0.9.5")
    db = sqlite3.connect(database)
    db.execute("ALTER TABLE notes ADD COLUMN mood TEXT")
    db.close()
    message = refused(database, capsys)
    assert "nearest is revision 001" in message and "column notes.mood should not be there" in message


def test_a_half_known_hybrid_is_refused(tmp_path, capsys):
    # The hotfix column is explained (002 replaces tokens), a missing table of rows is not.
    database = build(tmp_path / "starpunk.db", "legacy + hotfix option 1")
    sqlite3.connect(database).execute("DROP TABLE auth_state").connection.close()
    assert "table auth_state is missing" in refused(database, capsys)


def test_an_alembic_revision_we_do_not_know_is_refused(tmp_path, capsys):
    database = tmp_path / "starpunk.db"
    upgrade_database(f"sqlite:///{database}", "head", backup=False)
    stamped(database, "042")
    assert "revision '042'" in refused(database, capsys)


def test_another_applications_database_is_refused(tmp_path, capsys):
    database = tmp_path / "wiki.db"
    db = sqlite3.connect(database)
    db.execute("CREATE TABLE pages (id INTEGER PRIMARY KEY, body TEXT)")
    db.close()
    assert "another application" in refused(database, capsys)


def test_upgrade_to_a_revision_and_downgrade_also_adopt_an_unmanaged_file(tmp_path):
    upgraded = build(tmp_path / "upgraded.db", "v1.0")
    result = run("alembic", "upgrade", "006", database=upgraded)
    assert result.returncode == 0, result.stderr
    assert versions(upgraded) == ["006"]

    downgraded = build(tmp_path / "downgraded.db", "v1.2")
    before = table_rows(downgraded)
    result = run("alembic", "downgrade", "005", database=downgraded)
    assert result.returncode == 0, result.stderr
    assert versions(downgraded) == ["005"]
    after = table_rows(downgraded)
    assert "media" not in after and after["notes"] == before["notes"]
