"""The guard in the upgrade transaction: a revision that loses what SQLite hides is refused.

Each test adds a revision the README does not recommend to a copy of the scripts, upgrades
a populated file at the head with the real `alembic` command, and expects one sentence
naming what would be lost and the revision, and the file byte-identical.
"""

from __future__ import annotations

from conftest import HEAD, NEXT_REVISION, digest, run, versions
from schema_copies import add_revision, execute, populated_head, project_copy


def refusal(database, project) -> str:
    """Upgrade to head; the one-line refusal, after checking the file was left exactly as it was."""
    before = digest(database)
    result = run("alembic", "-x", "backup=false", "upgrade", "head", database=database, cwd=project)
    assert result.returncode != 0, result.stdout + result.stderr
    assert digest(database) == before
    assert versions(database) == [HEAD]
    assert "Traceback" not in result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_a_plain_batch_rebuild_of_notes_is_refused_for_losing_the_search_trigger(tmp_path):
    database, project = populated_head(tmp_path), project_copy(tmp_path)
    add_revision(
        project,
        NEXT_REVISION,
        HEAD,
        """
with op.batch_alter_table("notes", recreate="always") as batch_op:
    batch_op.add_column(sa.Column("summary", sa.TEXT(), nullable=False, server_default=""))
""",
    )

    sentence = refusal(database, project)

    assert f"revision {NEXT_REVISION} would lose the trigger notes_fts_delete" in sentence
    assert "op.rebuild_table" in sentence


def test_a_plain_batch_rebuild_of_media_variants_is_refused_for_losing_autoincrement_and_check(tmp_path):
    database, project = populated_head(tmp_path), project_copy(tmp_path)
    add_revision(
        project,
        NEXT_REVISION,
        HEAD,
        """
with op.batch_alter_table("media_variants", recreate="always") as batch_op:
    batch_op.add_column(sa.Column("quality", sa.INTEGER(), nullable=False, server_default="85"))
""",
    )

    sentence = refusal(database, project)

    assert f"after revision {NEXT_REVISION} the database lacks AUTOINCREMENT of the table media_variants and CHECK (" in sentence


def test_a_hand_made_rebuild_without_the_cascade_is_refused(tmp_path):
    database, project = populated_head(tmp_path), project_copy(tmp_path)
    add_revision(
        project,
        NEXT_REVISION,
        HEAD,
        """
op.execute("CREATE TABLE note_tags_new (note_id INTEGER NOT NULL REFERENCES notes(id), tag_id INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE, PRIMARY KEY (note_id, tag_id))")
op.execute("INSERT INTO note_tags_new SELECT note_id, tag_id FROM note_tags")
op.execute("DROP TABLE note_tags")
op.execute("ALTER TABLE note_tags_new RENAME TO note_tags")
op.execute("CREATE INDEX idx_note_tags_note ON note_tags(note_id)")
op.execute("CREATE INDEX idx_note_tags_tag ON note_tags(tag_id)")
""",
    )

    sentence = refusal(database, project)

    assert f"after revision {NEXT_REVISION} the database lacks the foreign key note_id -> notes (ON DELETE CASCADE)" in sentence


def test_a_users_own_trigger_lost_in_a_plain_rebuild_is_refused(tmp_path):
    database, project = populated_head(tmp_path), project_copy(tmp_path)
    execute(
        database,
        "CREATE TABLE my_log (tag TEXT)",
        "CREATE TRIGGER my_tag_log AFTER INSERT ON tags BEGIN INSERT INTO my_log VALUES (NEW.name); END",
    )
    add_revision(
        project,
        NEXT_REVISION,
        HEAD,
        """
with op.batch_alter_table("tags", recreate="always") as batch_op:
    batch_op.add_column(sa.Column("color", sa.TEXT(), nullable=True))
""",
    )

    sentence = refusal(database, project)

    assert f"revision {NEXT_REVISION} would lose the trigger my_tag_log" in sentence


def test_a_trigger_dropped_on_purpose_and_recreated_later_passes(tmp_path):
    database, project = populated_head(tmp_path), project_copy(tmp_path)
    following = f"{int(NEXT_REVISION) + 1:03}"
    add_revision(project, NEXT_REVISION, HEAD, 'op.drop_trigger("notes_fts_delete")')
    add_revision(
        project,
        following,
        NEXT_REVISION,
        """
op.create_trigger("notes_fts_delete", "CREATE TRIGGER notes_fts_delete AFTER DELETE ON notes BEGIN DELETE FROM notes_fts WHERE rowid = OLD.id; END")
""",
    )

    halfway = run("alembic", "-x", "backup=false", "upgrade", NEXT_REVISION, database=database, cwd=project)
    assert halfway.returncode == 0, halfway.stderr
    assert execute(database, "SELECT name FROM sqlite_master WHERE type = 'trigger'") == []

    to_head = run("alembic", "-x", "backup=false", "upgrade", "head", database=database, cwd=project)

    assert to_head.returncode == 0, to_head.stderr
    assert execute(database, "SELECT name FROM sqlite_master WHERE type = 'trigger'") == [("notes_fts_delete",)]


def test_a_head_without_a_trigger_the_models_declare_is_refused(tmp_path):
    database, project = populated_head(tmp_path), project_copy(tmp_path)
    add_revision(project, NEXT_REVISION, HEAD, 'op.drop_trigger("notes_fts_delete")')

    sentence = refusal(database, project)

    assert f"after revision {NEXT_REVISION} the database lacks the trigger notes_fts_delete, which the models declare" in sentence


def test_a_plain_batch_rebuild_under_a_users_view_is_refused_in_one_sentence(tmp_path):
    database, project = populated_head(tmp_path), project_copy(tmp_path)
    execute(database, "CREATE VIEW my_tags AS SELECT name FROM tags")
    add_revision(
        project,
        NEXT_REVISION,
        HEAD,
        """
with op.batch_alter_table("tags", recreate="always") as batch_op:
    batch_op.add_column(sa.Column("color", sa.TEXT(), nullable=True))
""",
    )

    sentence = refusal(database, project)

    assert f"revision {NEXT_REVISION} rebuilds or renames a table that the view my_tags uses" in sentence


def test_a_refused_new_database_leaves_no_file_behind(tmp_path):
    """A fresh install whose head lacks what the models declare is refused, with both likely
    causes named, and the empty file SQLite opened for it is gone."""
    project = project_copy(tmp_path)
    add_revision(project, NEXT_REVISION, HEAD, 'op.execute("DROP TRIGGER notes_fts_delete")')
    database = tmp_path / "data" / "starpunk.db"
    database.parent.mkdir()

    result = run("alembic", "upgrade", "head", database=database, cwd=project)

    assert result.returncode != 0 and "Traceback" not in result.stdout + result.stderr
    assert "which the models declare" in result.stdout and "alembic revision --autogenerate" in result.stdout
    assert list(database.parent.iterdir()) == []


def test_a_trigger_lost_with_a_view_the_revision_recreates_is_refused_whatever_the_views_name(tmp_path):
    database, project = populated_head(tmp_path), project_copy(tmp_path)
    execute(
        database,
        'CREATE VIEW "pub-view" AS SELECT slug FROM notes WHERE published = 1',
        'CREATE TRIGGER tag_through_the_view INSTEAD OF INSERT ON "pub-view" BEGIN '
        "INSERT INTO tags (name, display_name) VALUES (NEW.slug, NEW.slug); END",
    )
    # Dropping the view drops its trigger too; creating the view again does not bring the trigger back.
    add_revision(
        project,
        NEXT_REVISION,
        HEAD,
        """
op.execute('DROP VIEW IF EXISTS "pub-view"')
op.execute('CREATE VIEW "pub-view" AS SELECT slug, published FROM notes WHERE published = 1')
""",
    )

    sentence = refusal(database, project)

    assert f"revision {NEXT_REVISION} would lose the trigger tag_through_the_view" in sentence
