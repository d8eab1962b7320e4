"""Where StarPunk once kept credentials in plaintext, and whether a file still holds any.

v0.1 kept each session's cookie token as it is (`sessions.session_token`); v0.4.0 keeps its
SHA-256 only, and the upgrade keeps every login valid by hashing each token, so the plaintext
cookie in a backup taken before it still opens a session afterwards. Until migration 002 the
Micropub tokens were kept as they are too (`tokens.token`). A backup of such a file is made
readable by its owner only, and the operator is told to delete it once the change is confirmed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

# (table, column) of every credential StarPunk ever stored in plaintext.
PLAINTEXT_CREDENTIALS = (("sessions", "session_token"), ("tokens", "token"))
SESSION_COOKIES = "sessions.session_token"


def plaintext_credentials(connection: Connection) -> tuple[str, ...]:
    """The `table.column` names holding at least one plaintext credential in this file. Only reads."""
    found = []
    for table, column in PLAINTEXT_CREDENTIALS:
        columns = {row[0] for row in connection.exec_driver_sql("SELECT name FROM pragma_table_info(?)", (table,))}
        if column in columns:
            held = connection.exec_driver_sql(f'SELECT 1 FROM "{table}" WHERE "{column}" IS NOT NULL LIMIT 1').first()
            if held is not None:
                found.append(f"{table}.{column}")
    return tuple(found)


def private_backup_notice(backup: Path, credentials: tuple[str, ...], change: str) -> str:
    """What the operator is told about a backup holding `credentials`, once `change` (an upgrade,
    a restore) has been made: it is private, and best deleted."""
    why = (
        "the plaintext session cookies in it stay valid"
        if SESSION_COOKIES in credentials
        else "it keeps the Micropub tokens StarPunk no longer stores"
    )
    return (
        f"{backup} holds plaintext credentials ({', '.join(credentials)}), so it is readable by its owner only "
        f"(mode {backup.stat().st_mode & 0o777:04o}); delete it once the {change} is confirmed: {why}."
    )
