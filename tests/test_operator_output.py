"""What operators and host applications see: progress lines, plans, SQL, reports, quiet logging."""

from __future__ import annotations

import logging
import re

from alembic import command
from alembic.config import Config

from starpunk_migrations import ensure_schema
from starpunk_migrations.cli import main as cli

from conftest import CHAIN, HEAD, PROJECT, digest
from starpunk_history import build


def test_upgrade_prints_state_backup_each_revision_and_a_summary(tmp_path, capsys):
    database = build(tmp_path / "starpunk.db", "rc.2 hybrid")

    assert cli.main(["upgrade", str(database)]) == 0

    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(
        "Detected StarPunk state 'v1.0.0-rc.1 .. rc.3 with idx_tokens_expires, idx_tokens_hash and idx_tokens_me missing', which is revision 002, after 3 repair(s)"
    )
    assert lines[1] == f"backup written to {next(tmp_path.glob('starpunk.db.backup-*'))}"
    # Each revision with the first line of its docstring (StarPunk's own say "StarPunk migration NNN").
    applied = [re.fullmatch(r"applied (\w+)  (\S.*)  \(\d+\.\d{3} s\)", line) for line in lines[2:-1]]
    assert all(applied), lines[2:-1]
    after_002 = CHAIN[CHAIN.index("002") + 1 :]
    assert [match.group(1) for match in applied if match] == after_002
    assert re.fullmatch(
        rf"Done: {re.escape(str(database))} is at revision {HEAD}, {len(after_002)} revision\(s\) applied in \d+\.\d\d s\.",
        lines[-1],
    )


def test_upgrade_of_a_database_at_head_says_there_is_nothing_to_do(tmp_path, capsys):
    database = tmp_path / "starpunk.db"
    ensure_schema(f"sqlite:///{database}")
    assert cli.main(["upgrade", str(database)]) == 0
    assert capsys.readouterr().out.strip() == f"Nothing to do: {database} is at revision {HEAD}."


def test_dry_run_shows_the_plan_and_writes_nothing(tmp_path, capsys):
    database = build(tmp_path / "starpunk.db", "rc.2 hybrid")
    before = digest(database)

    assert cli.main(["upgrade", "--dry-run", str(database)]) == 0

    out = capsys.readouterr().out
    assert (
        "State:     v1.0.0-rc.1 .. rc.3 with idx_tokens_expires, idx_tokens_hash and idx_tokens_me missing (not yet managed"
        in out
    )
    assert "Repair:    create the missing index idx_tokens_hash of revision 002 (it holds no data of its own)" in out
    assert "Record:    schema_migrations row 002_secure_tokens_and_authorization_codes.sql" in out
    assert re.findall(r"^Apply:     (\w+)", out, re.MULTILINE) == CHAIN[CHAIN.index("002") + 1 :]
    assert re.search(r"^Backup:    starpunk\.db\.backup-v1\.0\.0-rc\.1-\.\.-rc\.3-repaired-\d{8}T\d{6}Z", out, re.MULTILINE)
    assert out.strip().endswith("Dry run: nothing was written.")
    assert digest(database) == before
    assert list(tmp_path.iterdir()) == [database]


def test_sql_prints_what_would_run_and_writes_nothing(tmp_path, capsys):
    database = build(tmp_path / "starpunk.db", "legacy v0.9.5")
    before = digest(database)

    assert cli.main(["upgrade", "--sql", str(database)]) == 0

    out = capsys.readouterr().out
    assert "INSERT INTO alembic_version (version_num) VALUES ('001');" in out
    # Foreign keys off first (a no-op inside the transaction), then the stamp too, in the one transaction.
    assert out.startswith("PRAGMA foreign_keys = OFF;\n\nBEGIN;") and out.rstrip().endswith("COMMIT;")
    assert "DROP TABLE tokens;" in out and "CREATE VIRTUAL TABLE notes_fts USING fts5(" in out
    assert "CREATE TABLE media_variants (" in out
    assert f"UPDATE alembic_version SET version_num='{HEAD}' WHERE alembic_version.version_num = '{CHAIN[-2]}';" in out
    assert digest(database) == before


def test_status_is_a_short_readable_report(tmp_path, capsys):
    database = build(tmp_path / "starpunk.db", "v0.1")
    assert cli.main(["status", str(database)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"Database:  {database}",
        "State:     v0.1 (not yet managed by Alembic: detected from its schema)",
        "Revision:  v0_1_0",
        f"Head:      {HEAD}",
        f"Pending:   {len(CHAIN) - 1} revision(s): {' '.join(CHAIN[1:])}",
        "On upgrade: stamp v0_1_0",
    ]


def host_logging_snapshot() -> tuple:
    root = logging.getLogger()
    host = logging.getLogger("host.requests")
    return root.level, list(root.handlers), host.disabled, host.level, logging.getLogger("starpunk_migrations").handlers[:]


def test_ensure_schema_is_quiet_and_leaves_the_hosts_logging_alone(tmp_path, capfd):
    host = logging.getLogger("host.requests")
    host.setLevel(logging.INFO)
    before = host_logging_snapshot()
    database = build(tmp_path / "starpunk.db", "legacy v0.9.5")

    assert ensure_schema(f"sqlite:///{database}") == HEAD

    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert host_logging_snapshot() == before


def test_alembic_called_from_an_application_does_not_reset_its_logging(tmp_path):
    logging.getLogger("host.requests").setLevel(logging.INFO)
    before = host_logging_snapshot()
    config = Config(str(PROJECT / "alembic.ini"))
    config.attributes["database_url"] = f"sqlite:///{tmp_path / 'starpunk.db'}"

    command.upgrade(config, "head")

    assert host_logging_snapshot() == before


def test_ensure_schema_with_a_url_creates_nothing_in_the_working_folder(tmp_path, monkeypatch):
    working = tmp_path / "app"
    working.mkdir()
    monkeypatch.chdir(working)
    assert ensure_schema(f"sqlite:///{tmp_path / 'starpunk.db'}") == HEAD
    assert list(working.iterdir()) == []  # the default's data/ is made only when it is used
