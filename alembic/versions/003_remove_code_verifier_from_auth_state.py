"""StarPunk migration 003 (v1.0.0-rc.4): auth_state.code_verifier removed.

What it does: drops auth_state.code_verifier: PKCE moved to the external IndieAuth provider.
Existing rows: kept, without their code_verifier (in place: ALTER TABLE ... DROP COLUMN).
Downgrade cannot bring back: code_verifier values (the column comes back filled with '').

Revision ID: 003
Revises: 002
Create Date: 2024-11-25
"""
from typing import Sequence, Union

from alembic import op

revision: str = "003"
down_revision: Union[str, Sequence[str], None] = "002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# StarPunk's own runner records this file in schema_migrations; so does this revision, so
# that the runner, should it ever start on this database, does not apply it a second time.
STARPUNK_MIGRATION = "003_remove_code_verifier_from_auth_state.sql"


def upgrade() -> None:
    op.execute("ALTER TABLE auth_state DROP COLUMN code_verifier")
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
        "(SELECT 1 FROM schema_migrations WHERE substr(migration_name, 1, 4) = '003_')"
    )


def downgrade() -> None:
    op.execute("DELETE FROM schema_migrations WHERE substr(migration_name, 1, 4) = '003_'")
    op.execute("ALTER TABLE auth_state ADD COLUMN code_verifier TEXT NOT NULL DEFAULT ''")
