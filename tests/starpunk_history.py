"""The one builder of StarPunk databases in every state found in the wild, and a simulator
of StarPunk's own start-ups that finds those states.

A state is built the way StarPunk produced it: each start of a release ran
`executescript(SCHEMA_SQL)` and then (from v0.9.0) its migration runner, and a crash left
whatever its statements had committed. `STATES` lists each state of the table in
tests/history/README.md with the starts that lead to it and the revision it must land on.
`fill` then puts rows in every table the file has.

`start` follows the runner table of tests/history/README.md release by release. Where StarPunk's
logic was never published, each plausible reading is a value of one field of `Reading`, and a
start asks its `Reading` only where the readings disagree on the file at hand. `simulate()`
walks the roads (a fresh install at any release, then later releases in order, a crash
retried by the same or a later release, the rc.1 hotfix steps) under every reading and returns
each distinct state reached with its shortest road.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

HISTORY = Path(__file__).parent / "history"
MIGRATION_FILES = sorted((HISTORY / "migrations").glob("*.sql"))


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- Where StarPunk's runner is not known exactly: the plausible readings -------------------

# Each field of `Reading`, its values (the first is the default) and what each one means.
READING_CHOICES: dict[str, dict[str, str]] = {
    "tables_002": {
        "token_hash": "rc.2+ find 002's tables 'with the correct structure' when tokens has token_hash "
        "and authorization_codes exists",
        "exists": "rc.2+ find 002's tables in place when tokens and authorization_codes both exist",
        "columns": "rc.2+ find 002's tables in place only when both have every column 002 gives them",
    },
    "checks_003_004": {
        "when_empty": "rc.4+ check 003 (code_verifier gone?) and 004 (token tables gone?) like 001: "
        "only when schema_migrations was empty",
        "always": "rc.4+ check 003 and 004 like rc.3 checks 002: whatever schema_migrations holds",
        "none": "rc.4+ have no check for 003 and 004: they run whenever unrecorded",
    },
    "current_v1": {
        "rc.3": "rc.4+ is_schema_current() is rc.3's: code_verifier and 002's indexes present",
        "v1.0": "rc.4+ is_schema_current() is the v1.0 schema (no code_verifier, no tokens, no "
        "authorization_codes), frozen from then on like INITIAL_SCHEMA_SQL",
        "newest": "rc.4+ is_schema_current() is the v1.0 schema plus the tables of every file the release ships after 004",
        "no_code_verifier": "rc.4+ is_schema_current() is only 003's marker: auth_state has no code_verifier",
        "always": "rc.4+ take an empty schema_migrations for a fresh install: is_schema_current() holds "
        "on any file SCHEMA_SQL just ran on",
    },
    "lock": {
        "executescript": "rc.5+ BEGIN IMMEDIATE does not hold a failing run together: executescript "
        "commits statement by statement, as before",
        "atomic": "rc.5+ BEGIN IMMEDIATE holds the run: a failing file rolls the whole run back "
        "(schema_migrations' creation included; SCHEMA_SQL stays)",
    },
}


@dataclass(frozen=True)
class Reading:
    """One plausible reading of StarPunk's runner where its logic was not published."""

    tables_002: str = "token_hash"
    checks_003_004: str = "when_empty"
    current_v1: str = "rc.3"
    lock: str = "executescript"

    def __post_init__(self) -> None:
        for dimension in fields(self):
            value = getattr(self, dimension.name)
            if value not in READING_CHOICES[dimension.name]:
                raise ValueError(f"{dimension.name}={value!r}: one of {list(READING_CHOICES[dimension.name])}")

    def changes(self) -> tuple[tuple[str, str], ...]:
        """The fields where this reading differs from the default one."""
        return tuple((d.name, getattr(self, d.name)) for d in fields(self) if getattr(self, d.name) != d.default)

    @property
    def label(self) -> str:
        return ", ".join(f"{name}={value}" for name, value in self.changes()) or "default reading"


DEFAULT_READING = Reading()
READINGS = tuple(
    Reading(**dict(zip(READING_CHOICES, values, strict=True))) for values in itertools.product(*READING_CHOICES.values())
)


class _Reader:
    """What a start asks of its reading: only where the readings disagree on the file at hand,
    so that `consulted` holds exactly the choices the start's result depends on."""

    def __init__(self, reading: Reading | Mapping[str, str]):
        self.reading = reading
        self.consulted: dict[str, str] = {}

    def _value(self, dimension: str) -> str:
        return getattr(self.reading, dimension)

    def choose(self, dimension: str, answers: Mapping[str, object]):
        assert answers.keys() == READING_CHOICES[dimension].keys(), dimension
        distinct = set(answers.values())
        if len(distinct) == 1:
            return distinct.pop()
        value = self._value(dimension)
        self.consulted[dimension] = value
        return answers[value]


class _Undecided(Exception):
    def __init__(self, dimension: str):
        self.dimension = dimension


class _PartialReader(_Reader):
    """A reader with only some fields fixed: asking another one stops the start (`simulate`
    then tries each of its values)."""

    def _value(self, dimension: str) -> str:
        fixed = self.reading
        assert not isinstance(fixed, Reading)  # a partial reader holds the fields fixed so far
        if dimension not in fixed:
            raise _Undecided(dimension)
        return fixed[dimension]


# --- Releases ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    schema_sql: str
    migrations: int = 0  # how many of 001.. it ships; 0: no runner (before v0.9.0)
    always_checks_002: bool = False  # rc.3's fix for the rc.2 hybrid
    runner: str = ""  # "v0.9" (v0.9.x, rc.1), "rc.2" (rc.2, rc.3), "v1" (rc.4 on); "": none
    lock: bool = False  # rc.5's BEGIN IMMEDIATE around the run


# The rc.1 hotfix option 2: rc.1 restarted with its SCHEMA_SQL edited to lose the idx_tokens_*
# lines, which is what rc.2 shipped.
HOTFIX_OPTION_2 = "v1.0.0-rc.1 + hotfix option 2"
RELEASES = {
    "v0.1.0": Release("v0.1.0.sql"),
    "v0.4.0": Release("v0.4.0.sql"),
    "v0.8.0": Release("v0.8.0.sql"),
    "v0.9.5": Release("v0.8.0.sql", migrations=1, runner="v0.9"),
    "v1.0.0-rc.1": Release("v1.0.0-rc.1.sql", migrations=2, runner="v0.9"),
    HOTFIX_OPTION_2: Release("v1.0.0-rc.2.sql", migrations=2, runner="v0.9"),
    "v1.0.0-rc.2": Release("v1.0.0-rc.2.sql", migrations=2, runner="rc.2"),
    "v1.0.0-rc.3": Release("v1.0.0-rc.2.sql", migrations=2, always_checks_002=True, runner="rc.2"),
    "v1.0.0-rc.4": Release("v1.0.0.sql", migrations=4, always_checks_002=True, runner="v1"),
    "v1.0.0": Release("v1.0.0.sql", migrations=4, always_checks_002=True, runner="v1", lock=True),  # rc.5 .. v1.0.x
    "v1.1.0": Release("v1.0.0.sql", migrations=5, always_checks_002=True, runner="v1", lock=True),
    "v1.2.0": Release("v1.0.0.sql", migrations=7, always_checks_002=True, runner="v1", lock=True),
    "v1.3.0": Release("v1.0.0.sql", migrations=8, always_checks_002=True, runner="v1", lock=True),
    "v1.4.0": Release("v1.0.0.sql", migrations=9, always_checks_002=True, runner="v1", lock=True),  # .. v1.5
}
# The releases in the order users met them (hotfix option 2 is rc.1's, only after its crash).
RELEASE_ORDER = [name for name in RELEASES if name != HOTFIX_OPTION_2]
RC1 = ("v1.0.0-rc.1", HOTFIX_OPTION_2)
RC1_CRASH = "no such column: token_hash"  # the failure StarPunk's rc.1 hotfix instructions address


def release_rank(name: str) -> int:
    return RELEASE_ORDER.index("v1.0.0-rc.1" if name == HOTFIX_OPTION_2 else name)


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _has_table(db: sqlite3.Connection, table: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone() is not None


def _has_index(db: sqlite3.Connection, index: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type='index' AND name=?", (index,)).fetchone() is not None


def _statements(script: str) -> list[str]:
    """A script's statements, as executescript runs them one after the other."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    assert not re.sub(r"--[^\n]*", "", buffer).strip(), f"unterminated statement: {buffer!r}"
    return statements


def _execute(db: sqlite3.Connection, script: str) -> None:
    """executescript: each statement commits on its own (or joins the transaction the caller
    opened); a failing one raises, leaving the earlier ones applied."""
    for statement in _statements(script):
        db.execute(statement)


def _file_002() -> Path:
    return MIGRATION_FILES[1]


@functools.cache
def _creates_002() -> tuple[dict[str, frozenset[str]], dict[str, str]]:
    """The columns of the tables 002 creates, and its CREATE INDEX statements by name."""
    db = sqlite3.connect(":memory:")
    _execute(db, _file_002().read_text())
    tables = {table: frozenset(_columns(db, table)) for table in ("tokens", "authorization_codes")}
    db.close()
    indexes = {}
    for statement in _statements(_file_002().read_text()):
        match = re.search(r"CREATE INDEX (\w+)", statement)
        if match:
            indexes[match.group(1)] = statement
    return tables, indexes


@functools.cache
def _tables_created(number: str) -> tuple[str, ...]:
    path = next(path for path in MIGRATION_FILES if path.name.startswith(number))
    return tuple(re.findall(r"CREATE (?:VIRTUAL )?TABLE (?:IF NOT EXISTS )?(\w+)", path.read_text()))


def _recorded_prefixes(db: sqlite3.Connection) -> set[str]:
    if not _has_table(db, "schema_migrations"):
        return set()
    return {row[0][:3] for row in db.execute("SELECT migration_name FROM schema_migrations")}


def _is_schema_current(db: sqlite3.Connection, release: Release, reader: _Reader) -> bool:
    """is_schema_current(): whether a file with an empty schema_migrations gets every file the
    release ships recorded without running any (the fresh-database rule, v0.9.0 on)."""
    verifier = "code_verifier" in _columns(db, "auth_state")
    if release.runner == "v0.9":
        return verifier
    rc3 = verifier and all(_has_index(db, name) for name in _creates_002()[1])
    if release.runner == "rc.2":
        return rc3
    v1_0 = not verifier and not _has_table(db, "tokens") and not _has_table(db, "authorization_codes")
    later = [path.name[:3] for path in MIGRATION_FILES[4 : release.migrations]]
    newest = v1_0 and all(_has_table(db, table) for number in later for table in _tables_created(number))
    return reader.choose(
        "current_v1",
        {
            "rc.3": rc3,
            "v1.0": v1_0,
            "newest": newest,
            "no_code_verifier": not verifier,
            "always": True,
        },
    )


def _in_place(db: sqlite3.Connection, release: Release, number: str, empty: bool, reader: _Reader) -> bool:
    """is_migration_needed(), negated: the release records `number` without running its file."""
    if release.runner == "v0.9":
        return False
    if number == "001":
        return empty and "code_verifier" in _columns(db, "auth_state")
    if number == "002":
        if not (empty or release.always_checks_002):
            return False
        tables, _ = _creates_002()
        tokens, codes = _columns(db, "tokens"), _columns(db, "authorization_codes")
        return reader.choose(
            "tables_002",
            {
                "token_hash": "token_hash" in tokens and bool(codes),
                "exists": bool(tokens) and bool(codes),
                "columns": tables["tokens"] <= tokens and tables["authorization_codes"] <= codes,
            },
        )
    if number in ("003", "004"):
        if number == "003":
            done = "code_verifier" not in _columns(db, "auth_state")
        else:
            done = not _has_table(db, "tokens") and not _has_table(db, "authorization_codes")
        return reader.choose("checks_003_004", {"when_empty": empty and done, "always": done, "none": False})
    return False  # 005..009: no check is known; their IF NOT EXISTS makes running them harmless


def _runner(db: sqlite3.Connection, release: Release, reader: _Reader, unrun: list[str]) -> None:
    _execute(db, (HISTORY / "schema_migrations.sql").read_text())
    recorded = _recorded_prefixes(db)
    empty = not recorded
    files = MIGRATION_FILES[: release.migrations]

    def record(path: Path) -> None:
        db.execute("INSERT INTO schema_migrations (migration_name) VALUES (?)", (path.name,))

    if empty and _is_schema_current(db, release, reader):
        for path in files:
            record(path)
            unrun.append(path.name[:3])
        return
    for path in files:
        number = path.name[:3]
        if number in recorded:
            continue
        if _in_place(db, release, number, empty, reader):
            if number == "002":  # the tables are there: create 002's missing indexes only
                for name, statement in _creates_002()[1].items():
                    if not _has_index(db, name):
                        db.execute(statement)
            unrun.append(number)
        else:
            _execute(db, path.read_text())
        record(path)


def _run_migrations(db: sqlite3.Connection, release: Release, reader: _Reader, unrun: list[str]) -> None:
    """StarPunk's runner: record what the schema already has, run the rest, in order."""
    if not release.lock:
        _runner(db, release, reader, unrun)
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        _runner(db, release, reader, unrun)
    except sqlite3.DatabaseError:
        # (A failing statement of these files undoes only itself, as in autocommit mode.)
        db.execute("ROLLBACK" if reader.choose("lock", {"executescript": False, "atomic": True}) else "COMMIT")
        raise
    db.execute("COMMIT")


@dataclass(frozen=True)
class StartOutcome:
    """What one start did: `crash` is the error that stopped it (StarPunk did not start)."""

    release: str
    crash: str | None = None
    recorded_unrun: tuple[str, ...] = ()  # numbers recorded without running their file
    consulted: tuple[tuple[str, str], ...] = ()  # the reading's choices the result depends on


def start(db: sqlite3.Connection, release_name: str, reading: Reading | _Reader = DEFAULT_READING) -> StartOutcome:
    """One start of a StarPunk release; a crash is what happened on real sites, so it is kept.

    Its SCHEMA_SQL runs statement by statement (each commits; a failing one stops the start and
    leaves the earlier ones applied), then its runner, as tests/history/README.md describes it;
    `reading` settles what StarPunk never published. Returns what the start did."""
    release = RELEASES[release_name]
    reader = reading if isinstance(reading, _Reader) else _Reader(reading)
    unrun: list[str] = []
    crash = None
    db.commit()
    isolation = db.isolation_level
    db.isolation_level = None  # each statement commits on its own, as under executescript
    try:
        try:
            _execute(db, (HISTORY / "releases" / release.schema_sql).read_text())
            if release.migrations:
                _run_migrations(db, release, reader, unrun)
        except sqlite3.DatabaseError as error:
            crash = str(error)
    finally:
        if not db.in_transaction:
            db.isolation_level = isolation
    return StartOutcome(release_name, crash, tuple(unrun), tuple(sorted(reader.consulted.items())))


def hotfix_option_1(db: sqlite3.Connection) -> None:
    """The rc.1 hotfix instructions, run by hand by the operator."""
    db.execute("ALTER TABLE tokens ADD COLUMN token_hash TEXT")
    db.commit()


def by_hand_001(db: sqlite3.Connection) -> None:
    """v0.8.0 had no runner: operators applied 001 by hand, if at all."""
    db.executescript(MIGRATION_FILES[0].read_text())


# Steps of a road that are not starts: what operators did by hand.
HOTFIX_OPTION_1 = "hotfix option 1"
BY_HAND_001 = "001 by hand"
ACTIONS: dict[str, Callable[[sqlite3.Connection], None]] = {HOTFIX_OPTION_1: hotfix_option_1, BY_HAND_001: by_hand_001}


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
    State("v0.4 + 001 by hand", ("v0.4.0", BY_HAND_001), "001"),
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


def build(path: Path, state: State | str | Road | SimulatedState, *, rows: bool = True) -> Path:
    """Create `path` in `state` (one of `STATES`, its name, or a simulated road or state),
    filled with rows unless `rows=False`."""
    if isinstance(state, SimulatedState):
        state = state.road
    steps: tuple[str | Callable[[sqlite3.Connection], None], ...]
    if isinstance(state, Road):
        steps, reading = state.steps, state.reading
    else:
        state = STATES_BY_NAME[state] if isinstance(state, str) else state
        steps, reading = state.steps, DEFAULT_READING
    path.parent.mkdir(parents=True, exist_ok=True)  # as StarPunk makes data/
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")  # a test file: its many small commits need not reach the disk
    try:
        for step in steps:
            if callable(step):
                step(db)
            elif step in ACTIONS:
                ACTIONS[step](db)
            else:
                start(db, step, reading)
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


def dropped_on_purpose() -> set[str]:
    """The tables StarPunk had that the head schema has not: a revision dropped them on purpose
    (004 the credentials StarPunk invalidated, tokens and authorization_codes; a newer one
    perhaps another)."""
    from starpunk_migrations.models import Base

    return set(SAMPLE_ROWS) - set(Base.metadata.tables)


def assert_rows_kept(before: dict[str, list[dict]], after: dict[str, list[dict]]) -> None:
    """Every row of `before` is in `after`, column for column, as StarPunk meant it to be:
    plaintext session tokens become their SHA-256, tables a revision dropped may be gone."""
    dropped = dropped_on_purpose()
    for table, rows in before.items():
        if table in dropped:
            continue
        assert table in after, f"table {table} disappeared"
        kept = after[table]
        assert len(kept) == len(rows), f"{table}: {len(rows)} rows before, {len(kept)} after"
        for old, new in zip(rows, kept, strict=True):
            if "session_token" in old and "session_token_hash" in new:
                old = {**old, "session_token_hash": sha256_hex(old["session_token"])}
            shared = old.keys() & new.keys()
            assert {k: old[k] for k in shared} == {k: new[k] for k in shared}, f"{table}: row changed"


# --- The simulator: every road StarPunk's own start-ups took ---------------------------------


@dataclass(frozen=True)
class StateKey:
    """A state by names, as detection sees it: tables with their columns, indexes and triggers
    (each with its table), and the NNN_ prefixes of schema_migrations' rows."""

    tables: frozenset[tuple[str, frozenset[str]]]
    indexes: frozenset[tuple[str, str]]
    triggers: frozenset[tuple[str, str]]
    migrations: tuple[str, ...]

    @classmethod
    def read(cls, db: sqlite3.Connection) -> StateKey:
        objects = db.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite~_%' ESCAPE '~'"
        ).fetchall()
        virtual = [name for kind, name, _, sql in objects if kind == "table" and (sql or "").upper().startswith("CREATE VIRTUAL")]
        tables = [
            name for kind, name, _, _ in objects if kind == "table" and not any(name.startswith(table + "_") for table in virtual)
        ]
        return cls(
            tables=frozenset((table, frozenset(_columns(db, table))) for table in tables),
            indexes=frozenset((name, table) for kind, name, table, sql in objects if kind == "index" and sql),
            triggers=frozenset((name, table) for kind, name, table, _ in objects if kind == "trigger"),
            migrations=tuple(sorted(_recorded_prefixes(db))),
        )

    @classmethod
    def of(cls, path: Path) -> StateKey:
        db = sqlite3.connect(path)
        try:
            return cls.read(db)
        finally:
            db.close()


SHORT_NAMES = {HOTFIX_OPTION_2: "rc.1 with hotfix option 2"}


def short_name(step: str) -> str:
    return SHORT_NAMES.get(step, step.removeprefix("v1.0.0-"))


@dataclass(frozen=True)
class Road:
    """A history of one file: starts of releases and what operators did by hand, in order.

    `depends_on` holds the reading's choices its starts consulted; `reading` is a full reading
    that takes those choices (the default elsewhere), under which `steps` rebuild the state."""

    steps: tuple[str, ...] = ()
    outcomes: tuple[StartOutcome | None, ...] = ()  # None for a step done by hand
    depends_on: tuple[tuple[str, str], ...] = ()

    @property
    def reading(self) -> Reading:
        return replace(DEFAULT_READING, **dict(self.depends_on))

    @property
    def crashed(self) -> bool:
        """The file is what StarPunk's last start left when it failed (StarPunk did not start)."""
        return bool(self.outcomes) and self.outcomes[-1] is not None and self.outcomes[-1].crash is not None

    @property
    def name(self) -> str:
        if not self.steps:
            return "empty file"
        parts = []
        # A road written by hand has no outcomes (none is known before it is built).
        outcomes = self.outcomes or (None,) * len(self.steps)
        for step, outcome in zip(self.steps, outcomes, strict=True):
            parts.append(short_name(step) + (" (crash)" if outcome is not None and outcome.crash else ""))
        changed = [f"{name}={value}" for name, value in self.depends_on if getattr(DEFAULT_READING, name) != value]
        return " → ".join(parts) + (f" [{', '.join(changed)}]" if changed else "")


@dataclass(frozen=True)
class SimulatedState:
    """A distinct state the simulator reached, with its shortest road and every reading under
    which some road of the simulation reaches it."""

    key: StateKey
    road: Road
    readings: frozenset[Reading]

    @property
    def name(self) -> str:
        return self.road.name

    @property
    def migrations(self) -> tuple[str, ...]:
        return self.key.migrations

    def build(self, path: Path, *, rows: bool = True) -> Path:
        return build(path, self.road, rows=rows)


@dataclass(frozen=True)
class _Leaf:
    consulted: frozenset[tuple[str, str]]
    outcome: StartOutcome | None
    data: bytes
    fine: tuple
    key: StateKey


def _memory_db(data: bytes = b"") -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    if data:
        db.deserialize(data)
    return db


def _serialize(db: sqlite3.Connection) -> bytes:
    try:
        return db.serialize()
    except sqlite3.OperationalError:  # a file that never got a page: still empty
        return b""


def _fine_key(db: sqlite3.Connection) -> tuple:
    """Everything a later start can depend on: the DDL of every object and the rows of
    schema_migrations (the simulated files hold no other rows)."""
    objects = tuple(db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"))
    return objects, tuple(sorted(_recorded_prefixes(db)))


@functools.cache
def _transitions(data: bytes, fine: tuple, step: str) -> tuple[_Leaf, ...]:
    """Every result of `step` on the file, one per distinct answer of the readings it asks."""
    del fine  # the cache key; `data` is one file with that key
    leaves: list[_Leaf] = []
    pending: list[dict[str, str]] = [{}]
    while pending:
        fixed = pending.pop()
        db = _memory_db(data)
        try:
            if step in ACTIONS:
                try:
                    ACTIONS[step](db)
                except sqlite3.DatabaseError:
                    continue  # the operator's command failed: nothing to retry
                outcome, consulted = None, frozenset[tuple[str, str]]()
            else:
                reader = _PartialReader(fixed)
                outcome = start(db, step, reader)
                consulted = frozenset(reader.consulted.items())
            leaves.append(_Leaf(consulted, outcome, _serialize(db), _fine_key(db), StateKey.read(db)))
        except _Undecided as undecided:
            pending += [{**fixed, undecided.dimension: value} for value in READING_CHOICES[undecided.dimension]]
        finally:
            db.close()
    return tuple(leaves)


@dataclass(frozen=True)
class _Node:
    data: bytes
    fine: tuple
    key: StateKey
    steps: tuple[str, ...]
    outcomes: tuple[StartOutcome | None, ...]
    fixed: frozenset[tuple[str, str]]
    starts: int

    @property
    def last_start(self) -> StartOutcome | None:
        return next((outcome for outcome in reversed(self.outcomes) if outcome is not None), None)


def _next_steps(node: _Node, max_starts: int) -> list[str]:
    last = node.last_start
    if last is None:
        return list(RELEASE_ORDER)  # a fresh install at any release
    steps = []
    if node.starts <= max_starts:  # the fresh install, then up to max_starts more
        # Later releases in order, skipping allowed; the same release again (a crash retried,
        # or a restart); rc.1 with hotfix option 2 only after rc.1 failed.
        steps += [name for name in RELEASE_ORDER if release_rank(name) >= release_rank(last.release)]
        if (last.release in RC1 and last.crash) or last.release == HOTFIX_OPTION_2:
            steps.append(HOTFIX_OPTION_2)
    done = set(node.steps)
    if last.release in RC1 and last.crash == RC1_CRASH and HOTFIX_OPTION_1 not in done:
        steps.append(HOTFIX_OPTION_1)  # before restarting, as the rc.1 hotfix instructions say
    if last.release in ("v0.4.0", "v0.8.0") and not last.crash and BY_HAND_001 not in done:
        steps.append(BY_HAND_001)
    return steps


def _consistent(fixed: frozenset[tuple[str, str]], consulted: frozenset[tuple[str, str]]) -> bool:
    chosen = dict(fixed)
    return all(chosen.get(name, value) == value for name, value in consulted)


def _readings_of(fixed: frozenset[tuple[str, str]]) -> frozenset[Reading]:
    chosen = dict(fixed)
    return frozenset(r for r in READINGS if all(getattr(r, name) == value for name, value in chosen.items()))


MAX_STARTS = 4  # starts after the fresh install


@functools.cache
def simulate(max_starts: int = MAX_STARTS) -> tuple[SimulatedState, ...]:
    """Every distinct state StarPunk's start-ups reach within `max_starts` starts after a fresh
    install, under any reading, each with its shortest road; in the order first reached."""
    empty = _memory_db()
    root = _Node(b"", _fine_key(empty), StateKey.read(empty), (), (), frozenset(), 0)
    empty.close()
    seen: set[tuple[object, ...]] = {(root.fine, None, (), root.fixed, 0)}
    frontier = [root]
    reached: dict[StateKey, list[_Node]] = {}
    while frontier:
        following = []
        for node in frontier:
            reached.setdefault(node.key, []).append(node)
            for step in _next_steps(node, max_starts):
                for leaf in _transitions(node.data, node.fine, step):
                    if not _consistent(node.fixed, leaf.consulted):
                        continue
                    child = _Node(
                        leaf.data,
                        leaf.fine,
                        leaf.key,
                        (*node.steps, step),
                        (*node.outcomes, leaf.outcome),
                        node.fixed | leaf.consulted,
                        node.starts + (leaf.outcome is not None),
                    )
                    last = child.last_start
                    identity = (
                        child.fine,
                        last and (last.release, last.crash),
                        tuple(sorted(set(child.steps) & set(ACTIONS))),
                        child.fixed,
                        child.starts,
                    )
                    if identity not in seen:
                        seen.add(identity)
                        following.append(child)
        frontier = following

    def shortest(node: _Node) -> tuple:
        """Fewest steps, then fewest choices away from the default reading, then the readings
        listed first, then the earliest releases."""
        choices = sorted((name, list(READING_CHOICES[name]).index(value)) for name, value in node.fixed)
        changed = sum(index > 0 for _, index in choices)
        return len(node.steps), changed, choices, [release_rank(s) if s in RELEASES else -1 for s in node.steps]

    states = []
    for key, nodes in reached.items():
        best = min(nodes, key=shortest)
        readings = frozenset().union(*(_readings_of(node.fixed) for node in nodes))
        states.append(SimulatedState(key, Road(best.steps, best.outcomes, tuple(sorted(best.fixed))), readings))
    return tuple(states)


def stamped(path: Path, version: str | bytes) -> Path:
    """`path` with an alembic_version holding `version` alone, as a hand or another program left
    it (bytes are stored as text, whatever they decode to)."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
    db.execute("DELETE FROM alembic_version")
    db.execute("INSERT INTO alembic_version VALUES (CAST(? AS TEXT))", (version,))
    db.commit()
    db.close()
    return path


def with_note(path: Path, slug: str) -> Path:
    """`path` with one more published note (a write StarPunk makes while running)."""
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO notes (slug, file_path, published, created_at, updated_at) VALUES (?, ?, 1, '2026-01-01', '2026-01-01')",
        (slug, f"notes/{slug}.md"),
    )
    db.commit()
    db.close()
    return path
