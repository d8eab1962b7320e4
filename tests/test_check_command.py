"""`starpunk-db check` (and so `flask db check`): the database is at head and its schema is
what the models declare, as Flask-Migrate's check asks; it never writes."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import BIN, CHAIN, HEAD, NEXT_REVISION, digest, run
from schema_copies import populated_head, project_copy, with_columns
from starpunk_history import build

# Real processes, several per test: the full suite runs these, `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow


def test_a_file_at_head_passes(tmp_path):
    database = populated_head(tmp_path)
    before = digest(database)

    result = run("starpunk-db", "check", str(database))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"Checked:   {database} is at head ({HEAD}), and its schema is what the models declare."
    assert digest(database) == before and sorted(path.name for path in tmp_path.iterdir()) == ["starpunk.db"]


def test_an_outdated_file_fails_naming_what_is_pending_and_writes_nothing(tmp_path):
    database = build(tmp_path / "starpunk.db", "v1.3")
    before = digest(database)

    result = run("starpunk-db", "check", str(database))

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"starpunk-db: {database} is at revision 008 (v1.3, detected from its schema), not at head {HEAD}: "
        f"{len(CHAIN) - CHAIN.index('008') - 1} revision(s) pending; `starpunk-db upgrade {database}` brings it to head."
    )
    assert digest(database) == before and sorted(path.name for path in tmp_path.iterdir()) == ["starpunk.db"]


def test_models_ahead_of_the_revisions_fail_naming_the_difference(tmp_path):
    database = populated_head(tmp_path)
    copy = project_copy(tmp_path, with_app=True)
    models = copy / "starpunk_migrations" / "models.py"
    summary = f"summary_{NEXT_REVISION}"  # new whatever the models hold
    models.write_text(with_columns(models.read_text(), {"notes": f"    {summary}: Mapped[str | None] = mapped_column(TEXT)\n"}))
    environment = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "DATABASE_PATH")}

    result = subprocess.run(
        [str(BIN / "starpunk-db"), "check", str(database)],
        env={**environment, "PYTHONPATH": str(copy)},
        capture_output=True,
        text=True,
    )

    assert result.returncode == 1
    assert f"{database} is at head {HEAD}, but its schema differs from the models (add_column notes {summary})" in result.stderr


@pytest.mark.parametrize("command", ["check", "current"])
def test_alembic_on_a_missing_file_says_there_is_none_and_creates_nothing(tmp_path, command):
    database = tmp_path / "starpunk.db"

    result = run("alembic", command, database=database)

    assert f"There is no database at {database}: an upgrade would create it" in result.stdout
    assert "empty database" not in result.stdout
    assert list(tmp_path.iterdir()) == []
