"""Every state StarPunk's own start-ups reach is adopted and upgraded to head with nothing lost.

`simulate()` (tests/starpunk_history.py) runs StarPunk's start-ups along every road of issue 13:
a fresh install at any release, later releases in order, crashes retried, the rc.1 hotfix
steps, under every plausible reading of what StarPunk never published. Every one of
them is a file StarPunk itself ran on: each must be adopted, whatever road led to it.
"""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy
from alembic import command
from alembic.config import Config

from starpunk_migrations import ensure_schema
from starpunk_migrations.adoption.detection import detect_state
from starpunk_migrations.commands.upgrade import upgrade_database

from conftest import HEAD, PROJECT, versions
from starpunk_history import (
    DEFAULT_READING,
    HOTFIX_OPTION_1,
    MAX_STARTS,
    STATES,
    Reading,
    Road,
    StateKey,
    assert_rows_kept,
    build,
    simulate,
    table_rows,
)

SIMULATED = simulate()
BY_KEY = {state.key: state for state in SIMULATED}


def project_config(database) -> Config:
    config = Config(str(PROJECT / "alembic.ini"))
    config.attributes["database_url"] = f"sqlite:///{database}"
    return config


def _params():
    for state in SIMULATED:
        yield pytest.param(state, id=state.name.replace("→", "->"))  # (pytest escapes non-ASCII ids)


@pytest.fixture(scope="module")
def head_key(tmp_path_factory) -> StateKey:
    database = tmp_path_factory.mktemp("fresh") / "starpunk.db"
    upgrade_database(f"sqlite:///{database}", "head", backup=False)
    return StateKey.of(database)


@pytest.mark.slow
@pytest.mark.parametrize("state", list(_params()))
def test_every_simulated_state_reaches_head_intact(tmp_path, state, head_key):
    database = state.build(tmp_path / "starpunk.db")
    assert StateKey.of(database) == state.key, "the road does not rebuild its state"  # (not an expected failure)
    before = table_rows(database)

    assert ensure_schema(database) == HEAD

    assert versions(database) == [HEAD]
    assert StateKey.of(database) == head_key
    assert_rows_kept(before, table_rows(database))
    db = sqlite3.connect(database)
    recorded = sorted(row[0][:3] for row in db.execute("SELECT migration_name FROM schema_migrations"))
    db.close()
    assert recorded == [f"{n:03}" for n in range(1, 10)]
    # Nothing for autogenerate to report: the file is what the models declare (raises otherwise).
    command.check(project_config(database))


@pytest.mark.parametrize("listed", STATES, ids=[state.name for state in STATES])
def test_the_simulator_reaches_every_state_of_the_history_table(tmp_path, listed):
    key = StateKey.of(build(tmp_path / "listed.db", listed, rows=False))
    assert key in BY_KEY, f"{listed.name}: no simulated road reaches it"
    simulated = BY_KEY[key]
    assert DEFAULT_READING in simulated.readings
    engine = sqlalchemy.create_engine(f"sqlite:///{simulated.build(tmp_path / 'road.db', rows=False)}")
    with engine.connect() as connection:
        assert detect_state(connection).revision == listed.revision
    engine.dispose()


def _reached(tmp_path, steps, reading=DEFAULT_READING):
    road = Road(tuple(steps), (), reading.changes())
    key = StateKey.of(build(tmp_path / f"example-{len(list(tmp_path.iterdir()))}.db", road, rows=False))
    assert key in BY_KEY, f"{' → '.join(steps)} reaches a state the simulator does not list"
    return key


def test_the_examples_of_issue_13_are_reached(tmp_path):
    # 1. v0.9.5 → rc.1 (crash) → hotfix option 1 → rc.3, and v0.8.0 → rc.1 (crash) → hotfix → rc.1
    first = _reached(tmp_path, ["v0.9.5", "v1.0.0-rc.1", HOTFIX_OPTION_1, "v1.0.0-rc.3"])
    assert _reached(tmp_path, ["v0.8.0", "v1.0.0-rc.1", HOTFIX_OPTION_1, "v1.0.0-rc.1"]) == first
    tables, indexes = dict(first.tables), dict(first.indexes)
    assert {"token", "token_hash"} <= tables["tokens"] and "id" not in tables["tokens"]
    assert {"idx_tokens_hash", "idx_tokens_me", "idx_tokens_expires"} <= indexes.keys()
    assert "authorization_codes" in tables and "code_verifier" in tables["auth_state"]
    assert first.migrations == ("001", "002")
    # 2. v0.4.x → rc.1 (crash) → hotfix option 1: the v0.4 schema plus tokens.token_hash
    second = dict(_reached(tmp_path, ["v0.4.0", "v1.0.0-rc.1", HOTFIX_OPTION_1]).tables)
    assert "token_hash" in second["tokens"] and "code_verifier" not in second["auth_state"]
    # 3. a v1.x runner recording files without running them: 005 recorded, notes_fts missing ...
    third = _reached(tmp_path, ["v1.1.0", "v1.3.0"], Reading(current_v1="v1.0"))
    assert "notes_fts" not in dict(third.tables) and "tags" in dict(third.tables) and third.migrations[-1] == "008"
    # ... or v1.x tables and rows up to 009 with the old tokens and code_verifier still there
    fourth = _reached(tmp_path, ["v0.8.0", "v1.0.0-rc.1", HOTFIX_OPTION_1, "v1.0.0-rc.4", "v1.4.0"], Reading(current_v1="always"))
    tables = dict(fourth.tables)
    assert {"tokens", "media_variants", "notes_fts"} <= tables.keys() and "code_verifier" in tables["auth_state"]
    assert fourth.migrations == tuple(f"{n:03}" for n in range(1, 10))


def test_one_more_start_reaches_no_new_state():
    assert {state.key for state in simulate(MAX_STARTS + 1)} == set(BY_KEY)
