"""The Alembic chain itself: its order, each step's effect on rows, atomicity, downgrades."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from starpunk_migrations.commands.upgrade import upgrade_database
from starpunk_migrations.foundation.scripts import head_revision

from conftest import CHAIN, HEAD, NEXT_REVISION, digest, run, versions
from schema_copies import add_revision, populated_head, project_copy, without_layout
from starpunk_history import assert_rows_kept, fill, table_rows

# StarPunk's documented history; later schema changes continue it (010, 011, ...).
STARPUNK_HISTORY = ["v0_1_0", "v0_4_0", "001", "002", "003", "004", "005", "006", "007", "008", "009"]


def test_history_starts_with_starpunks_releases_and_continues_its_numbering():
    assert CHAIN[: len(STARPUNK_HISTORY)] == STARPUNK_HISTORY
    assert CHAIN[len(STARPUNK_HISTORY) :] == [f"{n:03}" for n in range(10, len(CHAIN) - 1)]


def test_head_read_without_alembic_is_alembics_head(alembic_config):
    assert head_revision() == ScriptDirectory.from_config(alembic_config).get_current_head() == HEAD


def test_every_revision_file_is_named_after_its_id_and_documents_rows_and_downgrade(alembic_config):
    for revision in ScriptDirectory.from_config(alembic_config).walk_revisions():
        assert Path(revision.path).name.startswith(f"{revision.revision}_")
        for heading in ("What it does:", "Existing rows:", "Downgrade cannot bring back:"):
            assert heading in revision.longdoc, f"{revision.revision} lacks '{heading}'"


@pytest.mark.parametrize("revision, following", list(itertools.pairwise(CHAIN)))
def test_rows_written_at_a_revision_survive_the_next(tmp_path, revision, following):
    database = tmp_path / "starpunk.db"
    url = f"sqlite:///{database}"
    upgrade_database(url, revision, backup=False)
    db = sqlite3.connect(database)
    fill(db)
    db.close()
    before = table_rows(database)

    upgrade_database(url, following, backup=False)

    assert versions(database) == [following]
    assert_rows_kept(before, table_rows(database))


def test_schema_migrations_follow_the_starpunk_revisions_up_and_down(tmp_path):
    database = tmp_path / "starpunk.db"
    url = f"sqlite:///{database}"
    upgrade_database(url, "005", backup=False)
    assert _migration_prefixes(database) == ["001", "002", "003", "004", "005"]
    run("alembic", "downgrade", "002", database=database).check_returncode()
    assert _migration_prefixes(database) == ["001", "002"]


def _migration_prefixes(database: Path) -> list[str]:
    db = sqlite3.connect(database)
    try:
        return [row[0][:3] for row in db.execute("SELECT migration_name FROM schema_migrations ORDER BY id")]
    finally:
        db.close()


def test_downgrade_to_base_leaves_no_starpunk_table(tmp_path):
    database = tmp_path / "starpunk.db"
    assert run("alembic", "upgrade", "head", database=database).returncode == 0
    result = run("alembic", "downgrade", "base", database=database)
    assert result.returncode == 0, result.stderr
    db = sqlite3.connect(database)
    left = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    # alembic_version is Alembic's own (now empty); sqlite_sequence is SQLite's.
    assert left <= {"alembic_version", "sqlite_sequence"}


# A revision that fails half-way, after a table rebuild and new tables. It fails on the data
# only (every slug is taken), as real revisions do: an empty database, such as the one
# detection runs the revisions into, passes.
FAILS_HALF_WAY = """
op.execute("CREATE TABLE half_built (id INTEGER)")
with op.batch_alter_table("media", recreate="always") as batch:
    batch.alter_column("filename", type_=sa.String(200))
op.execute("INSERT INTO notes (slug, file_path) VALUES ('added', 'added.md')")
op.execute("INSERT INTO notes (slug, file_path) SELECT slug, file_path FROM notes WHERE slug != 'added'")
"""


def test_a_revision_failing_half_way_leaves_the_file_exactly_as_it_was(tmp_path):
    database = populated_head(tmp_path)
    project = project_copy(tmp_path)
    add_revision(project, NEXT_REVISION, HEAD, FAILS_HALF_WAY, message="fails half-way")
    before = digest(database)

    result = run("alembic", "-x", "backup=false", "upgrade", "head", database=database, cwd=project)

    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    assert f"FAILED: revision {NEXT_REVISION} (fails half-way) failed on the data" in result.stdout
    assert "UNIQUE constraint failed: notes." in result.stdout
    assert digest(database) == before
    db = sqlite3.connect(database)
    names = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    db.close()
    assert "half_built" not in names and not any(name.startswith("_alembic_tmp") for name in names)
    assert versions(database) == [HEAD]


def test_autogenerate_writes_a_rebuild_revision_that_keeps_cascading_children(tmp_path):
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from starpunk_migrations.models import Base

    project = project_copy(tmp_path)
    database = populated_head(tmp_path)
    before = table_rows(database)
    # The model change: longer-typed media filenames, which SQLite can only do by a rebuild.
    changed = sa.MetaData(info=dict(Base.metadata.info))  # with the declared triggers and FTS table
    for table in Base.metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["media"].c.filename.type = sa.String(200)
    config = Config(str(project / "alembic.ini"))
    config.attributes.update(database_url=f"sqlite:///{database}", target_metadata=changed)

    command.revision(config, message="longer media filenames", autogenerate=True, rev_id=NEXT_REVISION)

    written = (project / "alembic" / "versions" / f"{NEXT_REVISION}_longer_media_filenames.py").read_text()
    assert without_layout('with op.rebuild_table("media") as batch_op:') in without_layout(written)
    assert "type_=sa.String(length=200)" in written
    result = run("alembic", "upgrade", "head", database=database, cwd=project)
    assert result.returncode == 0, result.stderr
    assert versions(database) == [NEXT_REVISION]
    # The environment that runs knows the new revision, so a second run finds nothing to do.
    again = run("alembic", "upgrade", "head", database=database, cwd=project)
    assert again.returncode == 0, again.stdout + again.stderr
    after = table_rows(database)
    assert after["note_media"] == before["note_media"] and after["media_variants"] == before["media_variants"]
    assert sqlite3.connect(database).execute("PRAGMA foreign_key_check").fetchall() == []
