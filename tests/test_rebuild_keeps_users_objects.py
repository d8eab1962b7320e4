"""A rebuild keeps the user's own triggers and views whatever they are called and whatever
their SQL holds, is not stopped by orphans that were there before it, and a row the new
table cannot take is named by its table and key.

Each test adds a revision rebuilding a StarPunk table to a copy of the scripts and upgrades
a populated head file with the real `alembic` command.
"""

from __future__ import annotations

import pytest

from conftest import HEAD, NEXT_REVISION, digest, run, versions
from schema_copies import add_revision, execute, populated_head, project_copy

pytestmark = pytest.mark.slow

NOTES_GAIN_A_SUMMARY = """
with op.rebuild_table("notes") as batch_op:
    batch_op.add_column(sa.Column("summary", sa.TEXT(), nullable=False, server_default=sa.text("''")))
"""
NOTE_TAGS_GAIN_A_WEIGHT = """
with op.rebuild_table("note_tags") as batch_op:
    batch_op.add_column(sa.Column("weight", sa.INTEGER(), nullable=False, server_default=sa.text("1")))
"""


def upgraded(tmp_path, rebuild: str, *statements: str):
    """A populated head file holding `statements`' objects, upgraded through a revision that runs `rebuild`."""
    database, project = populated_head(tmp_path), project_copy(tmp_path)
    execute(database, *statements, foreign_keys=False)
    add_revision(project, NEXT_REVISION, HEAD, rebuild)
    result = run("alembic", "-x", "backup=false", "upgrade", "head", database=database, cwd=project)
    return database, result


@pytest.mark.parametrize("view", ['"pub-view"', "[pub view]", "`pub``view`", '"Pub ""View"""'])
def test_a_trigger_on_a_view_with_a_quoted_name_survives_a_rebuild_of_its_table(tmp_path, view):
    database, result = upgraded(
        tmp_path,
        NOTES_GAIN_A_SUMMARY,
        f"CREATE VIEW {view} AS SELECT slug FROM notes WHERE published = 1",
        # On the view, and naming no table the rebuild touches: only its view ties it to notes.
        f"CREATE TRIGGER tag_through_the_view INSTEAD OF INSERT ON {view} BEGIN "
        "INSERT INTO tags (name, display_name) VALUES (NEW.slug, NEW.slug); END",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert versions(database) == [NEXT_REVISION]
    execute(database, f"INSERT INTO {view} (slug) VALUES ('through-the-view')")
    assert execute(database, "SELECT display_name FROM tags WHERE name = 'through-the-view'") == [("through-the-view",)]


def test_user_sql_that_looks_like_a_bind_parameter_is_kept_as_written(tmp_path):
    trigger = (
        "CREATE TRIGGER stamp_new_notes AFTER INSERT ON notes BEGIN "
        "UPDATE notes SET file_path = NEW.slug || ':time' WHERE id = NEW.id; END"
    )
    view = "CREATE VIEW labelled AS SELECT slug || ':time' AS label FROM notes"
    index = "CREATE INDEX slug_with_time ON notes(slug) WHERE slug <> ':time'"
    database, result = upgraded(tmp_path, NOTES_GAIN_A_SUMMARY, trigger, view, index)

    assert result.returncode == 0, result.stdout + result.stderr
    kept = dict(
        execute(database, "SELECT name, sql FROM sqlite_master WHERE name IN ('stamp_new_notes', 'labelled', 'slug_with_time')")
    )
    assert kept == {"stamp_new_notes": trigger, "labelled": view, "slug_with_time": index}
    execute(database, "INSERT INTO notes (slug, file_path) VALUES ('late', 'late.md')")
    assert execute(database, "SELECT file_path FROM notes WHERE slug = 'late'") == [("late:time",)]


def test_an_orphan_that_was_there_before_does_not_block_a_rebuild(tmp_path):
    # StarPunk ran with foreign keys off: a tag link to a deleted note, after a gap in the rowids
    # that the rebuild's copy closes up.
    database, result = upgraded(
        tmp_path,
        NOTE_TAGS_GAIN_A_WEIGHT,
        "INSERT INTO note_tags (note_id, tag_id) VALUES (1, 2)",
        "DELETE FROM note_tags WHERE note_id = 1 AND tag_id = 1",
        "INSERT INTO note_tags (note_id, tag_id) VALUES (99, 1)",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert versions(database) == [NEXT_REVISION]
    assert execute(database, "SELECT note_id, tag_id, weight FROM note_tags WHERE note_id = 99") == [(99, 1, 1)]


def test_an_orphan_the_rebuild_makes_is_still_refused(tmp_path):
    database, project = populated_head(tmp_path), project_copy(tmp_path)
    add_revision(
        project, NEXT_REVISION, HEAD, NOTE_TAGS_GAIN_A_WEIGHT + 'op.execute("UPDATE note_tags SET note_id = 77 WHERE tag_id = 2")'
    )
    before = digest(database)

    result = run("alembic", "-x", "backup=false", "upgrade", "head", database=database, cwd=project)

    assert result.returncode != 0 and "Traceback" not in result.stdout + result.stderr
    assert "would leave 1 row(s) of note_tags whose foreign key points nowhere" in result.stdout
    assert "note_id = 77" in result.stdout
    assert digest(database) == before


def test_a_row_the_rebuilt_table_cannot_take_is_named_by_its_table_and_key(tmp_path):
    database, project = populated_head(tmp_path), project_copy(tmp_path)
    add_revision(
        project,
        NEXT_REVISION,
        HEAD,
        """
with op.rebuild_table("notes") as batch_op:
    batch_op.alter_column("content_hash", existing_type=sa.TEXT(), nullable=False)
""",
    )
    before = digest(database)

    result = run("alembic", "-x", "backup=false", "upgrade", "head", database=database, cwd=project)

    assert result.returncode != 0 and "Traceback" not in result.stdout + result.stderr
    (sentence,) = [line.removeprefix("FAILED: ") for line in result.stdout.splitlines() if line.startswith("FAILED: ")]
    assert "_alembic_tmp" not in sentence
    assert f"Revision {NEXT_REVISION} cannot copy" in sentence and "notes.content_hash" in sentence
    assert "the row of notes with id = 3" in sentence  # the deleted note, which has no content hash
    assert digest(database) == before
