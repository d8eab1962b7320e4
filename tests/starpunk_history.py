"""The one builder of StarPunk databases in every state found in the wild.

A state is built the way StarPunk produced it: each start of a release ran
`executescript(SCHEMA_SQL)` and then (from v0.9.0) its migration runner, and a crash left
whatever its statements had committed. `STATES` lists each state of the table in
tests/history/README.md with the starts that lead to it and the revision it must land on.
`fill` then puts rows in every table the file has.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HISTORY = Path(__file__).parent / "history"
MIGRATION_FILES = sorted((HISTORY / "migrations").glob("*.sql"))


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Release:
    schema_sql: str
    migrations: int = 0  # how many of 001.. it ships; 0: no runner (before v0.9.0)
    always_checks_002: bool = False  # rc.3's fix for the rc.2 hybrid


RELEASES = {
    "v0.1.0": Release("v0.1.0.sql"),
    "v0.4.0": Release("v0.4.0.sql"),
    "v0.8.0": Release("v0.8.0.sql"),
    "v0.9.5": Release("v0.8.0.sql", migrations=1),
    "v1.0.0-rc.1": Release("v1.0.0-rc.1.sql", migrations=2),
    "v1.0.0-rc.2": Release("v1.0.0-rc.2.sql", migrations=2),
    "v1.0.0-rc.3": Release("v1.0.0-rc.2.sql", migrations=2, always_checks_002=True),
    "v1.0.0": Release("v1.0.0.sql", migrations=4, always_checks_002=True),
    "v1.1.0": Release("v1.0.0.sql", migrations=5, always_checks_002=True),
    "v1.2.0": Release("v1.0.0.sql", migrations=7, always_checks_002=True),
    "v1.3.0": Release("v1.0.0.sql", migrations=8, always_checks_002=True),
    "v1.4.0": Release("v1.0.0.sql", migrations=9, always_checks_002=True),
}


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _has_table(db: sqlite3.Connection, table: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone() is not None


def _already_applied(db: sqlite3.Connection, number: str) -> bool:
    """StarPunk's "is this migration needed?" checks, by the marker each migration leaves."""
    checks: dict[str, Callable[[], bool]] = {
        "001": lambda: "code_verifier" in _columns(db, "auth_state"),
        "002": lambda: "token_hash" in _columns(db, "tokens") and _has_table(db, "authorization_codes"),
        "003": lambda: "code_verifier" not in _columns(db, "auth_state"),
        "004": lambda: not _has_table(db, "tokens") and not _has_table(db, "authorization_codes"),
        "005": lambda: _has_table(db, "notes_fts"),
        "006": lambda: _has_table(db, "author_profile"),
        "007": lambda: _has_table(db, "media"),
        "008": lambda: _has_table(db, "tags"),
        "009": lambda: _has_table(db, "media_variants"),
    }
    return checks[number]()


def _run_migrations(db: sqlite3.Connection, release: Release) -> None:
    """StarPunk's runner: record what the schema already has, run the rest, in order."""
    db.executescript((HISTORY / "schema_migrations.sql").read_text())
    recorded = {row[0][:3] for row in db.execute("SELECT migration_name FROM schema_migrations")}
    fresh = not recorded
    for path in MIGRATION_FILES[: release.migrations]:
        number = path.name[:3]
        if number in recorded:
            continue
        checked = fresh or (number == "002" and release.always_checks_002)
        if checked and _already_applied(db, number):
            if number == "002":  # the tables exist; the runner adds the indexes only 002 creates
                for line in path.read_text().splitlines():
                    if line.startswith("CREATE INDEX"):
                        db.execute(line.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS").rstrip(";"))
        else:
            db.executescript(path.read_text())
        db.execute("INSERT INTO schema_migrations (migration_name) VALUES (?)", (path.name,))
        db.commit()


def start(db: sqlite3.Connection, release_name: str) -> None:
    """One start of a StarPunk release; a crash is what happened on real sites, so it is kept."""
    release = RELEASES[release_name]
    try:
        db.executescript((HISTORY / "releases" / release.schema_sql).read_text())
        if release.migrations:
            _run_migrations(db, release)
    except sqlite3.OperationalError:
        db.commit()


def hotfix_option_1(db: sqlite3.Connection) -> None:
    """The rc.1 hotfix instructions, run by hand by the operator."""
    db.execute("ALTER TABLE tokens ADD COLUMN token_hash TEXT")
    db.commit()


def run_migration_001_by_hand(db: sqlite3.Connection) -> None:
    db.executescript(MIGRATION_FILES[0].read_text())


@dataclass(frozen=True)
class State:
    name: str
    steps: tuple[str | Callable[[sqlite3.Connection], None], ...]  # release names or actions
    revision: str | None


LEGACY = ("v0.9.5",)
HYBRID = (*LEGACY, hotfix_option_1, "v1.0.0-rc.1")
STATES = [
    State("empty", (), None),
    State("v0.1", ("v0.1.0",), "v0_1_0"),
    State("v0.4", ("v0.4.0",), "v0_4_0"),
    State("v0.8", ("v0.8.0",), "001"),
    State("v0.4 + 001 by hand", ("v0.4.0", run_migration_001_by_hand), "001"),
    State("legacy v0.9.5", LEGACY, "001"),
    State("legacy v0.9.5 upgraded from v0.4", ("v0.4.0", "v0.9.5"), "001"),
    State("legacy after rc.1 crash", (*LEGACY, "v1.0.0-rc.1"), "001"),
    State("legacy + hotfix option 1", (*LEGACY, hotfix_option_1), "001"),
    State("rc.1 fresh", ("v1.0.0-rc.1",), "002"),
    State("rc.2 hybrid", HYBRID, "002"),
    State("rc.2 hybrid (rc.2 started)", (*LEGACY, hotfix_option_1, "v1.0.0-rc.2"), "002"),
    State("rc.2 fresh", ("v1.0.0-rc.2",), "002"),
    State("rc.3 fresh", ("v1.0.0-rc.3",), "002"),
    State("rc.3 repaired", (*HYBRID, "v1.0.0-rc.3"), "002"),
    State("v1.0", ("v1.0.0",), "004"),
    State("v1.0 upgraded from legacy", (*LEGACY, "v1.0.0"), "004"),
    State("v1.1", ("v1.1.0",), "005"),
    State("v1.2", ("v1.2.0",), "007"),
    State("v1.3", ("v1.3.0",), "008"),
    State("v1.4", ("v1.4.0",), "009"),
    State("v1.4 upgraded from v0.4", ("v0.4.0", "v0.9.5", "v1.0.0", "v1.4.0"), "009"),
]
STATES_BY_NAME = {state.name: state for state in STATES}

NOTES = [
    dict(
        id=1,
        slug="hello",
        file_path="notes/2024/11/hello.md",
        published=1,
        created_at="2024-11-18 10:00:00",
        updated_at="2024-11-18 10:05:00",
        deleted_at=None,
        content_hash=sha256_hex("hello"),
    ),
    dict(
        id=2,
        slug="draft",
        file_path="notes/2024/11/draft.md",
        published=0,
        created_at="2024-11-19T08:30:00+00:00",
        updated_at="2024-11-19T08:30:00+00:00",
        deleted_at=None,
        content_hash=sha256_hex("draft"),
    ),
    dict(
        id=3,
        slug="gone",
        file_path="notes/2024/11/gone.md",
        published=1,
        created_at="2024-11-20 09:00:00",
        updated_at="2024-11-20 09:00:00",
        deleted_at="2024-11-21 09:00:00",
        content_hash=None,
    ),
]
SESSION_TOKENS = ["cookie-token-alice", "cookie-token-bob"]
SAMPLE_ROWS: dict[str, list[dict]] = {
    "notes": NOTES,
    "sessions": [
        dict(
            id=i + 1,
            session_token=token,
            session_token_hash=sha256_hex(token),
            me="https://example.org/",
            created_at="2024-11-18 10:00:00",
            expires_at="2099-01-01 00:00:00",
            last_used_at=None,
            user_agent="Firefox",
            ip_address="192.0.2.1",
        )
        for i, token in enumerate(SESSION_TOKENS)
    ],
    "tokens": [
        dict(
            id=1,
            token="micropub-plaintext",
            token_hash=sha256_hex("micropub"),
            me="https://example.org/",
            client_id="https://quill.p3k.io/",
            scope="create",
            expires_at="2099-01-01 00:00:00",
        )
    ],
    "authorization_codes": [
        dict(
            id=1,
            code_hash=sha256_hex("code"),
            me="https://example.org/",
            client_id="https://quill.p3k.io/",
            redirect_uri="https://quill.p3k.io/auth",
            expires_at="2099-01-01 00:00:00",
        )
    ],
    "auth_state": [
        dict(
            state="csrf-state-1",
            code_verifier="verifier",
            created_at="2024-11-18 10:00:00",
            expires_at="2024-11-18 10:05:00",
            redirect_uri="https://example.org/admin",
        )
    ],
    "author_profile": [
        dict(
            me="https://example.org/",
            name="Alice",
            photo=None,
            url="https://example.org/",
            note="Hi",
            rel_me_links='["https://social.example/@alice"]',
            discovered_at="2024-11-18 10:00:00",
            cached_until="2024-11-19 10:00:00",
        )
    ],
    "media": [
        dict(
            id=i,
            filename=f"img{i}.jpg",
            original_name=f"IMG_{i}.JPG",
            path=f"2024/11/img{i}.jpg",
            mime_type="image/jpeg",
            size=1000 * i,
            width=640,
            height=480,
            uploaded_at="2024-11-18 10:00:00",
        )
        for i in (1, 2)
    ],
    "note_media": [
        dict(id=1, note_id=1, media_id=1, display_order=0, caption="first"),
        dict(id=2, note_id=1, media_id=2, display_order=1, caption=None),
    ],
    "tags": [dict(id=1, name="indieweb", display_name="IndieWeb"), dict(id=2, name="python", display_name="Python")],
    "note_tags": [dict(note_id=1, tag_id=1), dict(note_id=2, tag_id=2)],
    "media_variants": [
        dict(id=1, media_id=1, variant_type="thumb", path="2024/11/img1_thumb.jpg", width=150, height=150, size_bytes=99),
        dict(id=2, media_id=1, variant_type="original", path="2024/11/img1.jpg", width=640, height=480, size_bytes=1000),
    ],
}
FTS_ROWS = [(1, "hello", "Hello", "Hello world"), (2, "draft", "Draft", "Not yet")]


def fill(db: sqlite3.Connection) -> None:
    """Rows in every table the file has, with the columns it has."""
    for table, rows in SAMPLE_ROWS.items():
        if not _has_table(db, table):
            continue
        columns = _columns(db, table)
        for row in rows:
            present = {key: value for key, value in row.items() if key in columns}
            db.execute(
                f"INSERT INTO {table} ({', '.join(present)}) VALUES ({', '.join('?' * len(present))})",
                tuple(present.values()),
            )
    if _has_table(db, "notes_fts"):
        db.executemany("INSERT INTO notes_fts (rowid, slug, title, content) VALUES (?, ?, ?, ?)", FTS_ROWS)
    db.commit()


def build(path: Path, state: State | str, *, rows: bool = True) -> Path:
    """Create `path` in `state`, filled with rows unless `rows=False`."""
    state = STATES_BY_NAME[state] if isinstance(state, str) else state
    db = sqlite3.connect(path)
    try:
        for step in state.steps:
            if isinstance(step, str):
                start(db, step)
            else:
                step(db)
        if rows:
            fill(db)
    finally:
        db.close()
    return path


def table_rows(path: Path) -> dict[str, list[dict]]:
    """Every row of every table (FTS shadow tables, sqlite_* and bookkeeping aside), by table."""
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        names = [
            row[0]
            for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
                "AND name NOT LIKE 'notes_fts_%' AND name NOT IN ('alembic_version', 'schema_migrations')"
            )
        ]
        return {
            name: [dict(row) for row in db.execute(f"SELECT rowid AS _rowid, * FROM {name} ORDER BY rowid")] for name in names
        }
    finally:
        db.close()


# Credentials StarPunk invalidated on purpose (002 rebuilt tokens, 004 dropped both tables).
DROPPED_ON_PURPOSE = {"tokens", "authorization_codes"}


def assert_rows_kept(before: dict[str, list[dict]], after: dict[str, list[dict]]) -> None:
    """Every row of `before` is in `after`, column for column, as StarPunk meant it to be:
    plaintext session tokens become their SHA-256, token tables may be gone."""
    for table, rows in before.items():
        if table in DROPPED_ON_PURPOSE:
            continue
        assert table in after, f"table {table} disappeared"
        kept = after[table]
        assert len(kept) == len(rows), f"{table}: {len(rows)} rows before, {len(kept)} after"
        for old, new in zip(rows, kept, strict=True):
            if "session_token" in old and "session_token_hash" in new:
                old = {**old, "session_token_hash": sha256_hex(old["session_token"])}
            shared = old.keys() & new.keys()
            assert {k: old[k] for k in shared} == {k: new[k] for k in shared}, f"{table}: row changed"
