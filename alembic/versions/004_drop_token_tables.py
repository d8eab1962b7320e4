"""StarPunk migration 004 (v1.0.0-rc.4): token tables dropped.

What it does: drops tokens and authorization_codes: the built-in IndieAuth server is
gone and Micropub tokens are checked by the user's external token endpoint.
Existing rows: tokens and authorization codes are dropped on purpose, as StarPunk did
(credentials, not content). Every other row is kept.
Downgrade cannot bring back: any token or authorization code; the tables come back empty.

Revision ID: 004
Revises: 003
Create Date: 2024-11-25
"""
from typing import Sequence, Union

from alembic import op

revision: str = "004"
down_revision: Union[str, Sequence[str], None] = "003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# StarPunk's own runner records this file in schema_migrations; so does this revision, so
# that the runner, should it ever start on this database, does not apply it a second time.
STARPUNK_MIGRATION = "004_drop_token_tables.sql"


def upgrade() -> None:
    op.execute("DROP TABLE tokens")
    op.execute("DROP TABLE authorization_codes")
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
        "(SELECT 1 FROM schema_migrations WHERE substr(migration_name, 1, 4) = '004_')"
    )


def downgrade() -> None:
    op.execute("DELETE FROM schema_migrations WHERE substr(migration_name, 1, 4) = '004_'")
    op.execute(
        """
        CREATE TABLE tokens (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            token_hash TEXT UNIQUE NOT NULL,
            me TEXT NOT NULL,
            client_id TEXT,
            scope TEXT DEFAULT 'create',
            created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            expires_at TIMESTAMP NOT NULL,
            last_used_at TIMESTAMP,
            revoked_at TIMESTAMP
        )
        """
    )
    op.execute(
        """
        CREATE TABLE authorization_codes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            code_hash TEXT UNIQUE NOT NULL,
            me TEXT NOT NULL,
            client_id TEXT NOT NULL,
            redirect_uri TEXT NOT NULL,
            scope TEXT,
            state TEXT,
            code_challenge TEXT,
            code_challenge_method TEXT,
            created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            expires_at TIMESTAMP NOT NULL,
            used_at TIMESTAMP
        )
        """
    )
    op.execute("CREATE INDEX idx_tokens_hash ON tokens(token_hash)")
    op.execute("CREATE INDEX idx_tokens_me ON tokens(me)")
    op.execute("CREATE INDEX idx_tokens_expires ON tokens(expires_at)")
    op.execute("CREATE INDEX idx_auth_codes_hash ON authorization_codes(code_hash)")
    op.execute("CREATE INDEX idx_auth_codes_expires ON authorization_codes(expires_at)")
