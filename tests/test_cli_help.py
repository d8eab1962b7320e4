"""What an operator reads before doing anything: `starpunk-db` alone, each command's help,
`--version`, and `status` on a file that is not there."""

from __future__ import annotations

import json

import pytest

from starpunk_migrations.cli import main as cli

from conftest import CHAIN, HEAD, run

COMMANDS = ["status", "history", "check", "upgrade", "downgrade", "stamp", "backups", "restore"]
WRITERS = {"upgrade", "downgrade", "stamp", "restore"}


def test_starpunk_db_alone_prints_help_naming_every_command_the_database_and_backups(tmp_path):
    result = run("starpunk-db", cwd=tmp_path)

    assert result.returncode == 0 and result.stderr == ""
    for command in COMMANDS:
        assert f"\n    {command}" in result.stdout
    text = " ".join(result.stdout.split())
    assert "else $DATABASE_URL, else $DATABASE_PATH, else data/starpunk.db" in text
    assert "Read only: status, history, check, backups" in text and "Writes: upgrade, downgrade, stamp, restore" in text
    assert "next to the database file, as <file>.backup-<revision or state>-<UTC time>" in text
    assert list(tmp_path.iterdir()) == []  # no data/ folder made for showing help


@pytest.mark.parametrize("command", COMMANDS)
def test_each_commands_help_says_which_database_whether_it_writes_and_where_backups_go(command, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main([command, "--help"])
    assert exit.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "$DATABASE_URL, else $DATABASE_PATH, else data/starpunk.db" in text
    assert "Backups: written next to the database file" in text
    assert ("Writes" in text) == (command in WRITERS)
    assert ("Read-only" in text) == (command not in WRITERS)


def test_version_names_the_package_and_the_schema_head():
    result = run("starpunk-db", "--version")
    assert result.returncode == 0
    from importlib.metadata import version

    assert result.stdout.strip() == f"starpunk-db {version('starpunk-migrations')}, schema head {HEAD}"


def test_status_of_a_missing_file_says_missing_and_creates_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_PATH", raising=False)

    assert cli.main(["status"]) == 0  # the default, data/starpunk.db
    assert capsys.readouterr().out.splitlines()[:2] == [
        "Database:  data/starpunk.db",
        # The advice names the file as a command pasted anywhere finds it.
        f"State:     missing (no file at this path; StarPunk's first start or `starpunk-db upgrade {tmp_path / 'data' / 'starpunk.db'}` creates it)",
    ]
    assert cli.main(["status", "--json", "elsewhere/starpunk.db"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert (facts["state"], facts["revision"], facts["pending"]) == ("missing", None, CHAIN)
    assert cli.main(["status", "elsewhere/starpunk.db"]) == 0  # upgrade would refuse: say so now
    assert capsys.readouterr().out.splitlines()[1] == (
        f"State:     missing (no file at this path, nor its folder {tmp_path / 'elsewhere'}: create the folder, or check the path)"
    )
    assert list(tmp_path.iterdir()) == []


def test_output_piped_into_a_reader_that_stops_early_ends_quietly(tmp_path):
    """`starpunk-db history | head -1`: the reader is gone before anything is printed."""
    import os
    import subprocess

    from conftest import BIN

    read_end, write_end = os.pipe()
    os.close(read_end)
    worker = subprocess.run(
        [str(BIN / "starpunk-db"), "history", str(tmp_path / "starpunk.db")],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    os.close(write_end)

    assert worker.returncode == 1
    assert worker.stderr == ""  # neither a traceback nor a sentence blaming the database
    assert list(tmp_path.iterdir()) == []
