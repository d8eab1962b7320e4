"""StarPunk migration 007 (v1.2.0-rc.1): uploaded images and their notes.

What it does: creates media and note_media (cascading to notes and media) with their indexes.
Existing rows: kept; the new tables start empty.
Downgrade cannot bring back: media and note_media rows (the image files stay on disk).

Revision ID: 007
Revises: 006
Create Date: 2024-11-26
"""
from typing import Sequence, Union

from alembic import op

revision: str = "007"
down_revision: Union[str, Sequence[str], None] = "006"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# StarPunk's own runner records this file in schema_migrations; so does this revision, so
# that the runner, should it ever start on this database, does not apply it a second time.
STARPUNK_MIGRATION = "007_add_media_support.sql"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE media (
            id INTEGER PRIMARY KEY,
            filename TEXT NOT NULL,
            original_name TEXT NOT NULL,
            path TEXT NOT NULL UNIQUE,
            mime_type TEXT NOT NULL,
            size INTEGER NOT NULL,
            width INTEGER,
            height INTEGER,
            uploaded_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
        )
        """
    )
    op.execute(
        """
        CREATE TABLE note_media (
            id INTEGER PRIMARY KEY,
            note_id INTEGER NOT NULL,
            media_id INTEGER NOT NULL,
            display_order INTEGER NOT NULL DEFAULT 0,
            caption TEXT,
            created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
            FOREIGN KEY (note_id) REFERENCES notes(id) ON DELETE CASCADE,
            FOREIGN KEY (media_id) REFERENCES media(id) ON DELETE CASCADE,
            UNIQUE(note_id, media_id)
        )
        """
    )
    op.execute("CREATE INDEX idx_media_uploaded ON media(uploaded_at)")
    op.execute("CREATE INDEX idx_note_media_note ON note_media(note_id)")
    op.execute("CREATE INDEX idx_note_media_order ON note_media(note_id, display_order)")
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
        "(SELECT 1 FROM schema_migrations WHERE substr(migration_name, 1, 4) = '007_')"
    )


def downgrade() -> None:
    op.execute("DELETE FROM schema_migrations WHERE substr(migration_name, 1, 4) = '007_'")
    op.execute("DROP TABLE note_media")
    op.execute("DROP TABLE media")
