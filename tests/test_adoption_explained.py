"""Files no release defined, explained difference by difference from the revision chain.

The three examples of issue 13, built by StarPunk's own start-ups: `status` names each file
plainly and lists every repair, the upgrade does what it listed, and files the history does not
explain are refused untouched, with the difference that nothing explains.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from starpunk_migrations.cli import main as cli

from conftest import CHAIN, HEAD, NEXT_REVISION, digest, run, versions
from schema_copies import add_revision, execute, populated_head, project_copy, run_in_copy
from starpunk_history import HOTFIX_OPTION_1, Reading, Road, assert_rows_kept, build, table_rows

# 1. rc.2 skipped: rc.1 crashed, the operator ran hotfix option 1, rc.3 then created
#    authorization_codes and built idx_tokens_* on the old tokens, and recorded 002.
SKIPPED_RC2 = Road(("v0.9.5", "v1.0.0-rc.1", HOTFIX_OPTION_1, "v1.0.0-rc.3"))
# 2. A v0.4 file that rc.1 crashed on, with the hotfix column.
V04_HOTFIX = Road(("v0.4.0", "v1.0.0-rc.1", HOTFIX_OPTION_1))
# 3. A v1.x runner that took a file for a fresh install recorded 001..004 without running them:
#    the old tokens and code_verifier are still there under v1.4's tables.
LEFT_BEHIND = Road(
    ("v0.8.0", "v1.0.0-rc.1", HOTFIX_OPTION_1, "v1.0.0-rc.4", "v1.4.0"), (), Reading(current_v1="always").changes()
)
# 3'. v1.1 recorded 005 without creating notes_fts; v1.3 then ran 006..008.
SEARCH_MISSING = Road(("v1.1.0", "v1.3.0"), (), Reading(current_v1="v1.0").changes())


def status(database: Path, capsys) -> tuple[dict, str]:
    assert cli.main(["status", "--json", str(database)]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert cli.main(["status", str(database)]) == 0
    return facts, capsys.readouterr().out


def repairs(facts: dict) -> set[tuple[str, str, str | None]]:
    return {(repair["action"], repair["name"], repair["revision"]) for repair in facts["repairs"]}


def test_rc2_skipped_is_legacy_with_the_hotfix_and_rc3s_tables_created_early(tmp_path, capsys):
    database = build(tmp_path / "starpunk.db", SKIPPED_RC2)
    before = digest(database)

    facts, text = status(database, capsys)

    assert facts["revision"] == "001" and facts["pending"][0] == "002"
    assert facts["state"] == "v0.8 / legacy v0.9.x with authorization_codes created early; tokens.token_hash added"
    assert repairs(facts) >= {
        ("adopt", "authorization_codes", "002"),
        ("adopt", "idx_tokens_hash", "002"),
        ("keep", "tokens.token_hash", "002"),
    }
    assert "Repair:    adopt the table authorization_codes, with its 1 row(s), for revision 002, which creates it" in text
    assert "Repair:    keep the column tokens.token_hash until revision 002 replaces its table" in text
    assert digest(database) == before


def test_an_adopted_table_keeps_its_rows_in_the_table_its_revision_creates(tmp_path, capsys):
    database = build(tmp_path / "starpunk.db", SKIPPED_RC2)
    codes = table_rows(database)["authorization_codes"]

    assert cli.main(["upgrade", "--to", "002", str(database)]) == 0

    assert versions(database) == ["002"]
    assert table_rows(database)["authorization_codes"] == codes
    names = {row[0] for row in sqlite3.connect(database).execute("SELECT name FROM sqlite_master")}
    assert not {name for name in names if name.startswith("_starpunk")}


def test_an_upgrade_that_stops_before_the_adopting_revision_is_refused_untouched(tmp_path, capsys):
    database = build(tmp_path / "starpunk.db", SKIPPED_RC2)
    before = digest(database)

    assert cli.main(["upgrade", "--to", "001", str(database)]) == 1
    assert cli.main(["stamp", str(database)]) == 1

    assert "upgrade to 002 or later" in capsys.readouterr().err
    assert digest(database) == before and sorted(tmp_path.iterdir()) == [database]


def test_a_v04_file_with_the_hotfix_column_lands_on_v0_4_0(tmp_path, capsys):
    database = build(tmp_path / "starpunk.db", V04_HOTFIX)
    rows = table_rows(database)

    facts, _ = status(database, capsys)
    assert facts["revision"] == "v0_4_0" and repairs(facts) == {("keep", "tokens.token_hash", "002")}

    assert cli.main(["upgrade", str(database)]) == 0
    assert versions(database) == [HEAD]
    assert_rows_kept(rows, table_rows(database))


def test_tables_left_behind_by_migrations_recorded_but_never_run_are_removed_as_their_revisions_did(tmp_path, capsys):
    database = build(tmp_path / "starpunk.db", LEFT_BEHIND)
    rows = table_rows(database)

    facts, text = status(database, capsys)

    # v1.4's schema, whatever revisions came after it (the test suite passes with a new one present).
    assert facts["revision"] == "009" and facts["pending"] == CHAIN[CHAIN.index("009") + 1 :]
    assert "tokens" in facts["state"] and "left behind" in facts["state"]
    assert repairs(facts) == {("remove", "tokens", "004"), ("remove", "auth_state.code_verifier", "003")}
    assert "Repair:    remove the table tokens, which revision 004 removed (it held 1 row(s), kept in the backup)" in text

    assert cli.main(["upgrade", str(database)]) == 0
    assert versions(database) == [HEAD]
    assert "tokens" not in table_rows(database)
    assert_rows_kept(rows, table_rows(database))
    (backup,) = tmp_path.glob("starpunk.db.backup-*")
    assert table_rows(backup)["tokens"] == rows["tokens"]  # the backup holds what was removed


@pytest.mark.parametrize(
    "change",
    [
        'with op.rebuild_table("notes") as batch_op:\n'
        '    batch_op.alter_column("content_hash", existing_type=sa.TEXT(), type_=sa.VARCHAR(length=64))',
        'op.execute("UPDATE notes SET content_hash = lower(content_hash)")',
    ],
    ids=["a type", "rows only"],
)
def test_a_revision_that_changes_no_name_leaves_a_repaired_file_one_reading(tmp_path, change):
    # Such a revision reads exactly as the one before it; the file StarPunk made is at the
    # earlier one, and the new revision must still run.
    project = project_copy(tmp_path, with_app=True)
    add_revision(project, NEXT_REVISION, HEAD, change)
    database = build(tmp_path / "starpunk.db", LEFT_BEHIND)
    rows = table_rows(database)

    found = run_in_copy(project, "starpunk-db", "status", "--json", str(database), database=database)

    assert found.returncode == 0, found.stderr
    facts = json.loads(found.stdout)
    assert facts["revision"] == "009" and facts["pending"][-1] == NEXT_REVISION
    assert repairs(facts) == {("remove", "tokens", "004"), ("remove", "auth_state.code_verifier", "003")}
    upgraded = run_in_copy(project, "starpunk-db", "upgrade", "--no-backup", str(database), database=database)
    assert upgraded.returncode == 0, upgraded.stderr
    assert versions(database) == [NEXT_REVISION]
    assert_rows_kept(rows, table_rows(database))


def test_a_revision_that_records_its_own_row_is_told_from_a_look_alike_by_that_row(tmp_path):
    # Both revisions match the schema exactly: StarPunk's schema_migrations says which ran.
    project = project_copy(tmp_path, with_app=True)
    add_revision(
        project,
        NEXT_REVISION,
        HEAD,
        "op.execute(\"UPDATE notes SET slug = slug || '-v'\")\n"
        f"op.execute(\"INSERT INTO schema_migrations (migration_name) VALUES ('{NEXT_REVISION}_suffix_slugs.sql')\")",
    )
    # A file StarPunk's runner took to the head and then ran that migration file on.
    database = populated_head(tmp_path)
    execute(
        database,
        "DROP TABLE alembic_version",
        "UPDATE notes SET slug = slug || '-v'",
        f"INSERT INTO schema_migrations (migration_name) VALUES ('{NEXT_REVISION}_suffix_slugs.sql')",
    )

    found = run_in_copy(project, "starpunk-db", "status", "--json", str(database), database=database)

    assert json.loads(found.stdout)["revision"] == NEXT_REVISION, found.stdout + found.stderr


def test_a_search_index_recorded_but_never_created_is_created(tmp_path, capsys):
    database = build(tmp_path / "starpunk.db", SEARCH_MISSING)

    facts, _ = status(database, capsys)

    assert facts["revision"] == "008"
    assert repairs(facts) == {("create", "notes_fts", "008"), ("create", "notes_fts_delete", "008")}
    assert cli.main(["upgrade", str(database)]) == 0
    assert versions(database) == [HEAD]


def test_dry_run_and_sql_show_the_repairs_and_write_nothing(tmp_path, capsys):
    database = build(tmp_path / "starpunk.db", SKIPPED_RC2)
    before = digest(database)

    assert cli.main(["upgrade", "--dry-run", str(database)]) == 0
    planned = capsys.readouterr().out
    assert cli.main(["upgrade", "--sql", str(database)]) == 0
    sql = capsys.readouterr().out

    assert "Repair:    adopt the table authorization_codes" in planned
    set_aside = sql.index('ALTER TABLE "authorization_codes" RENAME TO "_starpunk_adopting_authorization_codes"')
    created = sql.index("CREATE TABLE authorization_codes")
    taken_back = sql.index('INSERT INTO "authorization_codes" (')
    assert set_aside < created < taken_back < sql.index("UPDATE alembic_version SET version_num='003'")
    assert digest(database) == before and sorted(tmp_path.iterdir()) == [database]


def refused_untouched(database: Path, capsys) -> str:
    """status and every writing entry point refuse; the file is byte-identical, nothing beside it."""
    before, folder = digest(database), sorted(database.parent.iterdir())
    assert cli.main(["status", str(database)]) == 1
    message = capsys.readouterr().err
    assert cli.main(["upgrade", str(database)]) == 1
    result = run("alembic", "upgrade", "head", database=database)
    assert result.returncode != 0 and "Traceback" not in result.stdout + result.stderr
    assert digest(database) == before and sorted(database.parent.iterdir()) == folder
    return message


def test_a_notes_table_whose_id_is_no_longer_its_key_is_refused_at_detection(tmp_path, capsys):
    database = build(tmp_path / "starpunk.db", "v1.3")
    db = sqlite3.connect(database)
    columns = ", ".join(row[1] for row in db.execute("PRAGMA table_info(notes)"))
    db.executescript(
        f"""
        CREATE TABLE notes_copy AS SELECT {columns} FROM notes;
        INSERT INTO notes_copy SELECT {columns.replace("slug", "slug || '-again'", 1).replace("file_path", "file_path || '.2'", 1)}
            FROM notes WHERE id = 1;
        DROP TABLE notes;
        ALTER TABLE notes_copy RENAME TO notes;
        """
    )
    db.close()

    message = refused_untouched(database, capsys)

    assert "table notes's primary key is (none), where every release has (id)" in message


def test_a_column_no_revision_ever_had_is_refused_with_it(tmp_path, capsys):
    database = build(tmp_path / "starpunk.db", SKIPPED_RC2)
    sqlite3.connect(database).execute("ALTER TABLE authorization_codes ADD COLUMN mood TEXT").connection.close()

    message = refused_untouched(database, capsys)

    assert "matches no StarPunk release" in message


def test_two_readings_that_explain_the_file_equally_well_are_refused_with_both(tmp_path, capsys):
    # A v1.0 file whose schema_migrations is gone, with a search table and no trigger: either
    # 004 with 005's notes_fts created early, or 005 missing its trigger. No rows to tell.
    database = build(tmp_path / "starpunk.db", "v1.0")
    db = sqlite3.connect(database)
    db.executescript(
        "DROP TABLE schema_migrations; CREATE VIRTUAL TABLE notes_fts USING fts5(slug UNINDEXED, title, content, tokenize='porter unicode61');"
    )
    db.close()

    message = refused_untouched(database, capsys)

    assert "can be read two ways" in message
    assert "revision 004" in message and "revision 005" in message


@pytest.mark.parametrize("road", [SKIPPED_RC2, V04_HOTFIX, LEFT_BEHIND, SEARCH_MISSING], ids=lambda road: road.name)
def test_each_example_is_clean_for_alembic_check_after_the_upgrade(tmp_path, road):
    database = build(tmp_path / "starpunk.db", road)
    assert run("alembic", "upgrade", "head", database=database).returncode == 0
    result = run("alembic", "check", database=database)
    assert result.returncode == 0 and "No new upgrade operations detected" in result.stdout + result.stderr
