"""A start-up upgrade shows in the log: what `ensure_schema` found, repaired, backed up and
applied reaches the host's logging (logger `starpunk_migrations`), or stderr when the host
configured none; a file already at head logs nothing. Each start is its own process, as a
worker's is."""

from __future__ import annotations

import re
import sys

import pytest

from conftest import CHAIN, HEAD, run
from schema_copies import execute
from starpunk_history import build

# Real processes, several per test: the full suite runs these, `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow

START = "import sys\n{logging}\nimport starpunk_migrations\nstarpunk_migrations.ensure_schema(sys.argv[1])\n"
UNCONFIGURED = ""
HOST_LOGGING = "import logging\nlogging.basicConfig(level=logging.INFO, format='host %(levelname)s %(name)s: %(message)s')"
LOGGER_SILENCED = "import logging\nlogging.getLogger('starpunk_migrations').setLevel(logging.WARNING)"
HOST_AT_WARNING = "import logging\nlogging.basicConfig(level=logging.WARNING)"


def start(database, logging: str = UNCONFIGURED):
    result = run(sys.executable, "-c", START.format(logging=logging), str(database))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    return result.stderr.splitlines()


def test_an_upgrade_at_start_up_tells_stderr_what_it_did_when_the_host_configured_no_logging(tmp_path):
    database = build(tmp_path / "starpunk.db", "rc.2 hybrid")

    lines = start(database)

    (backup,) = tmp_path.glob("starpunk.db.backup-*")
    assert all(re.match(r"^\[[^]]+\] \[\d+\] \[INFO\] starpunk_migrations: ", line) for line in lines), lines
    messages = [line.split("starpunk_migrations: ", 1)[1] for line in lines]
    assert (
        messages[0].startswith("Detected StarPunk state '")
        and ", which is revision 002, after 3 repair(s) (create " in messages[0]
    )
    assert messages[1] == f"backup written to {backup}"
    assert [message.split()[1] for message in messages[2:-1]] == CHAIN[CHAIN.index("002") + 1 :]
    assert messages[-1] == f"{database} is at revision {HEAD}: {len(messages) - 3} revision(s) applied"


def test_a_refused_upgrade_logs_none_of_its_progress(tmp_path):
    """It changed nothing and deleted its backup: "backup written to ..." would mislead; the refusal says it all."""
    database = build(tmp_path / "starpunk.db", "rc.2 hybrid")
    execute(database, "CREATE VIEW my_verifiers AS SELECT state, code_verifier FROM auth_state")

    result = run(sys.executable, "-c", START.format(logging=UNCONFIGURED), str(database))

    assert result.returncode == 1
    assert [line for line in result.stderr.splitlines() if "starpunk_migrations:" in line] == []
    assert "Your own view my_verifiers stops revision 003" in result.stderr
    assert list(tmp_path.glob("starpunk.db.backup-*")) == []


def test_a_start_on_a_file_at_head_logs_nothing(tmp_path):
    database = build(tmp_path / "starpunk.db", "v1.3")
    start(database)

    assert start(database) == []


def test_the_hosts_own_logging_receives_the_progress(tmp_path):
    database = build(tmp_path / "starpunk.db", "v1.3")

    lines = start(database, HOST_LOGGING)

    (backup,) = tmp_path.glob("starpunk.db.backup-*")
    ours = [line for line in lines if line.startswith("host INFO starpunk_migrations.")]  # (Alembic logs at INFO too)
    assert ours[0].startswith("host INFO starpunk_migrations.commands.upgrade: Detected StarPunk state 'v1.3'")
    assert f"host INFO starpunk_migrations.commands.upgrade: backup written to {backup}" in ours
    assert (
        ours[-1]
        == f"host INFO starpunk_migrations.start_up: {database} is at revision {HEAD}: {len(CHAIN) - CHAIN.index('008') - 1} revision(s) applied"
    )


@pytest.mark.parametrize("logging", [LOGGER_SILENCED, HOST_AT_WARNING], ids=["the logger at WARNING", "the host at WARNING"])
def test_the_levels_the_host_set_are_respected(tmp_path, logging):
    database = build(tmp_path / "starpunk.db", "v1.3")

    assert start(database, logging) == []
    assert len(list(tmp_path.glob("starpunk.db.backup-*"))) == 1
