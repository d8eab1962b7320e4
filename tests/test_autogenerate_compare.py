"""What `alembic check` and autogenerate compare beyond SQLAlchemy's reflection: the
triggers, views and virtual tables the models declare, and nothing of the user's."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import command

from starpunk_migrations.schema.sqlite_objects import View, declare

from conftest import HEAD, NEXT_REVISION, run, versions
from schema_copies import execute, models_copy, populated_head, project_config, project_copy, without_layout


def head_file(tmp_path, *statements: str):
    database = populated_head(tmp_path)
    execute(database, *statements)
    return database


def check(database):
    return run("alembic", "check", database=database)


def test_check_reports_a_missing_trigger(tmp_path):
    database = head_file(tmp_path, "DROP TRIGGER notes_fts_delete")

    result = check(database)

    assert result.returncode != 0
    assert "('add_trigger', 'notes_fts_delete'" in result.stderr


def test_check_reports_a_search_table_with_another_tokenizer(tmp_path):
    database = head_file(
        tmp_path,
        "DROP TABLE notes_fts",
        "CREATE VIRTUAL TABLE notes_fts USING fts5(slug UNINDEXED, title, content, tokenize='unicode61')",
    )

    result = check(database)

    assert result.returncode != 0
    assert "('remove_virtual_table', 'notes_fts'" in result.stderr and "('add_virtual_table', 'notes_fts'" in result.stderr


def test_the_users_own_table_index_view_and_trigger_are_never_proposed_for_dropping(tmp_path):
    database = head_file(
        tmp_path,
        "CREATE TABLE my_stats (day TEXT PRIMARY KEY, visits INTEGER)",
        "CREATE INDEX my_stats_visits ON my_stats (visits)",
        "CREATE INDEX my_notes_by_hash ON notes (content_hash)",
        "CREATE VIEW my_published AS SELECT slug FROM notes WHERE published = 1",
        "CREATE TRIGGER my_visit AFTER INSERT ON notes BEGIN INSERT INTO my_stats VALUES (NEW.slug, 0); END",
    )

    result = check(database)

    assert result.returncode == 0, result.stderr
    assert "No new upgrade operations detected" in result.stdout


def test_a_view_declared_with_the_models_is_created_and_dropped_by_the_generated_revision(tmp_path):
    database, project = head_file(tmp_path), project_copy(tmp_path)
    metadata = models_copy()
    declare(metadata, View("published_notes", "CREATE VIEW published_notes AS SELECT id, slug FROM notes WHERE published = 1"))

    command.revision(
        project_config(project, database, target_metadata=metadata),
        message="published notes view",
        autogenerate=True,
        rev_id=NEXT_REVISION,
    )

    written = next((project / "alembic" / "versions").glob(f"{NEXT_REVISION}_*.py")).read_text()
    code = without_layout(written)
    assert without_layout('op.create_view("published_notes", """CREATE VIEW published_notes AS SELECT') in code
    assert without_layout('op.drop_view("published_notes")') in code
    upgraded = run("alembic", "-x", "backup=false", "upgrade", "head", database=database, cwd=project)
    assert upgraded.returncode == 0, upgraded.stderr
    assert execute(database, "SELECT slug FROM published_notes ORDER BY id") == [("hello",), ("gone",)]
    downgraded = run("alembic", "-x", "backup=false", "downgrade", "-1", database=database, cwd=project)
    assert downgraded.returncode == 0, downgraded.stderr
    assert versions(database) == [HEAD]
    assert execute(database, "SELECT name FROM sqlite_master WHERE type = 'view'") == []


def test_a_column_dropped_and_another_added_is_flagged_as_a_possible_rename(tmp_path, caplog):
    database, project = head_file(tmp_path), project_copy(tmp_path)
    metadata = models_copy()
    tags = metadata.tables["tags"]
    tags._columns.remove(tags.c.display_name)
    tags.append_column(sa.Column("label", sa.TEXT(), nullable=False))

    with caplog.at_level(logging.WARNING, logger="starpunk_migrations.evolution.autogenerate"):
        command.revision(
            project_config(project, database, target_metadata=metadata), message="label", autogenerate=True, rev_id=NEXT_REVISION
        )

    hint = "alter_column('display_name', new_column_name='label')"
    assert any(hint in record.getMessage() for record in caplog.records)
    written = next((project / "alembic" / "versions").glob(f"{NEXT_REVISION}_*.py")).read_text()
    assert "# NOTE: tags loses column(s) display_name and gains label." in written
    assert f"#     batch_op.{hint}" in written
