"""Shared fixtures: real SQLite files, the project's own Alembic configuration, subprocesses.

pytest-alembic's built-in tests (single head, upgrade, model definitions match DDL, up/down
consistency) are bound to this file and run on `alembic_engine` below.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.config import Config

from starpunk_migrations.foundation.engines import create_engine

PROJECT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _revision_chain() -> list[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(Config(str(PROJECT / "alembic.ini")))
    return [revision.revision for revision in reversed(list(script.walk_revisions()))]


# Tests describe StarPunk's history; they never pin the head, which grows with every
# schema change (`009` today, `010` tomorrow). Both come from the revision scripts.
CHAIN = _revision_chain()
HEAD = CHAIN[-1]
# What the next schema change is called: StarPunk's numbering goes on after v0_1_0, v0_4_0, 001...
NEXT_REVISION = f"{len(CHAIN) - 1:03}"


def _revisions_by_look() -> tuple[str, str, str]:
    from starpunk_migrations.adoption.explanation import ChainFacts
    from starpunk_migrations.evolution.chain import revision_references

    facts = ChainFacts(revision_references())

    def first_alike(index: int) -> int:
        while facts.reads_as_the_one_before(index):
            index -= 1
        return index

    head = len(facts.references) - 1
    settled = head if first_alike(head) == head else first_alike(head) - 1
    revisions = [str(reference.revision) for reference in facts.references]
    return revisions[first_alike(head)], revisions[settled], revisions[first_alike(settled) - 1]


# Detection sees names: a revision changing only types, constraints or rows looks like the one
# before it. DETECTED_AT_HEAD is what detection finds in a file at head that lost its stamp (the
# earliest revision that looks like the head). SETTLED is the newest revision no later one looks
# like (so a file at it is placed without doubt), and a file at SETTLED stamped UNLIKE_SETTLED
# (the newest revision that does not look like it) is detectably stamped wrong.
DETECTED_AT_HEAD, SETTLED, UNLIKE_SETTLED = _revisions_by_look()


def settled(path: Path) -> Path:
    """A StarPunk file with rows, at SETTLED: what detection finds in it, once its stamp is lost
    or wrong, is SETTLED and nothing else."""
    from starpunk_migrations.commands.upgrade import upgrade_database

    from starpunk_history import build

    upgrade_database(f"sqlite:///{build(path, 'v0.1')}", SETTLED, backup=False)
    return path


def wrongly_stamped(path: Path) -> Path:
    """A StarPunk file at SETTLED stamped UNLIKE_SETTLED: a stamp that detectably does not tell
    the truth, which `starpunk-db stamp` corrects (to SETTLED)."""
    from starpunk_history import stamped

    return stamped(settled(path), UNLIKE_SETTLED)


@pytest.fixture
def alembic_config() -> Config:
    return Config(str(PROJECT / "alembic.ini"))


@pytest.fixture
def alembic_engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'pytest-alembic.db'}")
    yield engine
    engine.dispose()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(*command: str, database: Path | str | None = None, cwd: Path | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run one of the project's commands (`alembic`, `starpunk-db`, `python`) in a subprocess."""
    environment = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "DATABASE_PATH")}
    if database is not None:
        environment["DATABASE_PATH"] = str(database)
    program = str(BIN / command[0]) if (BIN / command[0]).exists() else command[0]
    return subprocess.run([program, *command[1:]], cwd=cwd or PROJECT, env=environment, capture_output=True, text=True, **kwargs)


def versions(path: Path) -> list[str]:
    import sqlite3

    db = sqlite3.connect(path)
    try:
        return [row[0] for row in db.execute("SELECT version_num FROM alembic_version")]
    finally:
        db.close()
