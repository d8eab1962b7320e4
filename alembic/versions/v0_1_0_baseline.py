"""StarPunk v0.1.0 baseline: notes, sessions, tokens, auth_state.

What it does: creates the schema StarPunk v0.1.0 .. v0.3.0 created at start-up
(plaintext session tokens, plaintext Micropub tokens).
Existing rows: none; a database that already holds these tables is stamped, not rebuilt.
Downgrade cannot bring back: anything; it drops every table, with every row.

Revision ID: v0_1_0
Revises:
Create Date: 2024-11-18
"""
from typing import Sequence, Union

from alembic import op

revision: str = "v0_1_0"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE notes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            slug TEXT UNIQUE NOT NULL,
            file_path TEXT UNIQUE NOT NULL,
            published BOOLEAN DEFAULT 0,
            created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            deleted_at TIMESTAMP,
            content_hash TEXT
        )
        """
    )
    op.execute("CREATE INDEX idx_notes_created_at ON notes(created_at DESC)")
    op.execute("CREATE INDEX idx_notes_published ON notes(published)")
    op.execute("CREATE INDEX idx_notes_slug ON notes(slug)")
    op.execute("CREATE INDEX idx_notes_deleted_at ON notes(deleted_at)")
    op.execute(
        """
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session_token TEXT UNIQUE NOT NULL,
            me TEXT NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            expires_at TIMESTAMP NOT NULL,
            last_used_at TIMESTAMP
        )
        """
    )
    op.execute("CREATE INDEX idx_sessions_token ON sessions(session_token)")
    op.execute("CREATE INDEX idx_sessions_expires ON sessions(expires_at)")
    op.execute(
        """
        CREATE TABLE tokens (
            token TEXT PRIMARY KEY,
            me TEXT NOT NULL,
            client_id TEXT,
            scope TEXT,
            created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            expires_at TIMESTAMP
        )
        """
    )
    op.execute("CREATE INDEX idx_tokens_me ON tokens(me)")
    op.execute(
        """
        CREATE TABLE auth_state (
            state TEXT PRIMARY KEY,
            created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            expires_at TIMESTAMP NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX idx_auth_state_expires ON auth_state(expires_at)")


def downgrade() -> None:
    # Dropping a table drops its indexes with it.
    for table in ("auth_state", "tokens", "sessions", "notes"):
        op.execute(f"DROP TABLE {table}")
