"""StarPunk v0.4.0: sessions keep only a hash of the cookie token; auth_state.redirect_uri.

What it does: StarPunk v0.4.0 changed its schema without shipping a migration; this is that
change. sessions.session_token becomes session_token_hash, sessions gains user_agent and
ip_address and the v0.4.0 indexes (idx_sessions_token_hash, idx_sessions_me instead of
idx_sessions_token); auth_state gains redirect_uri.
Existing rows: every session is kept, its plaintext token replaced by
sha256(token).hexdigest(), which is what v0.4.0 compares cookies against: nobody is logged
out. The columns are renamed and added in place, so no table is rebuilt.
Downgrade cannot bring back: the plaintext tokens (a hash cannot be reversed), so the
downgrade deletes every session (everyone logs in again); redirect_uri, user_agent and
ip_address values.

Revision ID: v0_4_0
Revises: v0_1_0
Create Date: 2024-11-19
"""
import hashlib
from typing import Sequence, Union

from alembic import op

revision: str = "v0_4_0"
down_revision: Union[str, Sequence[str], None] = "v0_1_0"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _sha256_hex(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def upgrade() -> None:
    if op.get_context().as_sql:
        op.execute("-- sha256_hex(text) is a function the migration registers on its connection")
    else:
        # SQLite has no SHA-256; hashing inside one UPDATE keeps the rewrite a single pass.
        sqlite = op.get_bind().connection.driver_connection
        sqlite.create_function("sha256_hex", 1, _sha256_hex, deterministic=True)
    # Dropped first so that the UPDATE below has one index fewer to maintain.
    op.execute("DROP INDEX idx_sessions_token")
    op.execute("ALTER TABLE sessions RENAME COLUMN session_token TO session_token_hash")
    op.execute("UPDATE sessions SET session_token_hash = sha256_hex(session_token_hash)")
    op.execute("ALTER TABLE sessions ADD COLUMN user_agent TEXT")
    op.execute("ALTER TABLE sessions ADD COLUMN ip_address TEXT")
    op.execute("CREATE INDEX idx_sessions_token_hash ON sessions(session_token_hash)")
    op.execute("CREATE INDEX idx_sessions_me ON sessions(me)")
    op.execute("ALTER TABLE auth_state ADD COLUMN redirect_uri TEXT")


def downgrade() -> None:
    op.execute("ALTER TABLE auth_state DROP COLUMN redirect_uri")
    op.execute("DROP INDEX idx_sessions_me")
    op.execute("DROP INDEX idx_sessions_token_hash")
    op.execute("DELETE FROM sessions")
    op.execute("ALTER TABLE sessions DROP COLUMN ip_address")
    op.execute("ALTER TABLE sessions DROP COLUMN user_agent")
    op.execute("ALTER TABLE sessions RENAME COLUMN session_token_hash TO session_token")
    op.execute("CREATE INDEX idx_sessions_token ON sessions(session_token)")
