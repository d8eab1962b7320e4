"""A user's own full-text or R*Tree index: its shadow tables are SQLite's, and only its.

SQLite keeps a virtual table's data in shadow tables named after it (`note_data`,
`note_idx`, ... for an FTS5 table `note`). Those are left out of every comparison; StarPunk's
own tables that merely start with the same word (`note_media`, `author_profile`,
`auth_state`) are not shadow tables, and must still count.
"""

from __future__ import annotations

import json

import pytest

from conftest import BIN, HEAD, versions
from faults import run_command
from schema_copies import execute
from starpunk_history import build

pytestmark = pytest.mark.slow


def status_of(database) -> dict:
    result = run_command([str(BIN / "starpunk-db"), "status", "--json", str(database)], database)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("virtual_table", ["note", "author", "auth"])
def test_a_users_fts5_table_named_like_the_start_of_a_starpunk_table_hides_nothing(tmp_path, virtual_table):
    database = build(tmp_path / "starpunk.db", "v1.4")
    execute(database, f"CREATE VIRTUAL TABLE {virtual_table} USING fts5(body)", f"INSERT INTO {virtual_table} VALUES ('hi')")

    detected = status_of(database)
    assert detected["state"] == "v1.4 / v1.5"
    assert detected["unknown_tables"] == [virtual_table]  # the virtual table itself, not its shadow tables
    upgraded = run_command([str(BIN / "starpunk-db"), "upgrade", str(database)], database)
    assert upgraded.returncode == 0, upgraded.stderr
    assert versions(database) == [HEAD]

    at_head = status_of(database)  # managed now: the stamp is compared with the schema
    assert at_head["revision"] == HEAD and at_head["pending"] == []
    assert execute(database, f"SELECT body FROM {virtual_table}") == [("hi",)]


@pytest.mark.parametrize(
    "definition", ["CREATE VIRTUAL TABLE places USING rtree(id, x0, x1)", "CREATE VIRTUAL TABLE places USING fts4(body)"]
)
def test_the_shadow_tables_of_other_modules_are_not_called_the_users_tables(tmp_path, definition):
    database = build(tmp_path / "starpunk.db", "v1.4")
    execute(database, definition, "CREATE TABLE places_notes (body TEXT)")

    assert status_of(database)["unknown_tables"] == ["places", "places_notes"]
