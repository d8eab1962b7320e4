"""StarPunk migration 005 (v1.1.0): full-text search over notes.

What it does: creates notes_fts (FTS5, rowid = notes.id; FTS5 adds its shadow tables
notes_fts_*) and the trigger notes_fts_delete that removes a note's entry with the note.
Existing rows: kept. notes_fts starts empty: note bodies live in files, so StarPunk
fills the index itself.
Downgrade cannot bring back: the search index (StarPunk can rebuild it from the note files).

Revision ID: 005
Revises: 004
Create Date: 2024-11-25
"""
from typing import Sequence, Union

from alembic import op

revision: str = "005"
down_revision: Union[str, Sequence[str], None] = "004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# StarPunk's own runner records this file in schema_migrations; so does this revision, so
# that the runner, should it ever start on this database, does not apply it a second time.
STARPUNK_MIGRATION = "005_add_fts5_search.sql"


def upgrade() -> None:
    op.execute(
        """
        CREATE VIRTUAL TABLE notes_fts USING fts5(
            slug UNINDEXED,
            title,
            content,
            tokenize='porter unicode61'
        )
        """
    )
    op.execute(
        """
        CREATE TRIGGER notes_fts_delete
        AFTER DELETE ON notes
        BEGIN
            DELETE FROM notes_fts WHERE rowid = OLD.id;
        END
        """
    )
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            migration_name TEXT UNIQUE NOT NULL,
            applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
        )
        """
    )
    op.execute(
        "INSERT INTO schema_migrations (migration_name) "
        f"SELECT '{STARPUNK_MIGRATION}' WHERE NOT EXISTS "
        "(SELECT 1 FROM schema_migrations WHERE substr(migration_name, 1, 4) = '005_')"
    )


def downgrade() -> None:
    op.execute("DELETE FROM schema_migrations WHERE substr(migration_name, 1, 4) = '005_'")
    op.execute("DROP TRIGGER notes_fts_delete")
    op.execute("DROP TABLE notes_fts")
