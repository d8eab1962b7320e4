"""StarPunk migration 006 (v1.2.0-rc.1): cached author profile.

What it does: creates author_profile (the author's h-card, cached 24 hours) and its index.
Existing rows: kept; the new table starts empty.
Downgrade cannot bring back: the cached profile (StarPunk fetches it again).

Revision ID: 006
Revises: 005
Create Date: 2024-11-26
"""
from typing import Sequence, Union

from alembic import op

revision: str = "006"
down_revision: Union[str, Sequence[str], None] = "005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# StarPunk's own runner records this file in schema_migrations; so does this revision, so
# that the runner, should it ever start on this database, does not apply it a second time.
STARPUNK_MIGRATION = "006_add_author_profile.sql"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE author_profile (
            me TEXT PRIMARY KEY,
            name TEXT,
            photo TEXT,
            url TEXT,
            note TEXT,
            rel_me_links TEXT,
            discovered_at DATETIME NOT NULL,
            cached_until DATETIME NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX idx_author_profile_cache ON author_profile(cached_until)")
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
        "(SELECT 1 FROM schema_migrations WHERE substr(migration_name, 1, 4) = '006_')"
    )


def downgrade() -> None:
    op.execute("DELETE FROM schema_migrations WHERE substr(migration_name, 1, 4) = '006_'")
    op.execute("DROP TABLE author_profile")
