"""StarPunk migration 001 (v0.8.0): PKCE code_verifier on auth_state.

What it does: adds auth_state.code_verifier (TEXT NOT NULL DEFAULT ''), and creates
schema_migrations, StarPunk's migration log, which its v0.9.0 runner introduced.
Existing rows: kept; existing auth_state rows get an empty code_verifier.
Downgrade cannot bring back: code_verifier values; the downgrade also drops schema_migrations,
which no StarPunk release before v0.9.0 had.

Revision ID: 001
Revises: v0_4_0
Create Date: 2024-11-24
"""
from typing import Sequence, Union

from alembic import op

revision: str = "001"
down_revision: Union[str, Sequence[str], None] = "v0_4_0"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# StarPunk's own runner records this file in schema_migrations; so does this revision, so
# that the runner, should it ever start on this database, does not apply it a second time.
STARPUNK_MIGRATION = "001_add_code_verifier_to_auth_state.sql"


def upgrade() -> None:
    op.execute("ALTER TABLE auth_state ADD COLUMN code_verifier TEXT NOT NULL DEFAULT ''")
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
        "(SELECT 1 FROM schema_migrations WHERE substr(migration_name, 1, 4) = '001_')"
    )


def downgrade() -> None:
    op.execute("DELETE FROM schema_migrations WHERE substr(migration_name, 1, 4) = '001_'")
    op.execute("ALTER TABLE auth_state DROP COLUMN code_verifier")
    op.execute("DROP TABLE schema_migrations")
