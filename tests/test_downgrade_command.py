"""`starpunk-db downgrade`: what would be lost is listed first, nothing is lost without
--yes, and a backup is written before anything changes."""

from __future__ import annotations

import re
import sqlite3
import subprocess

import pytest

from starpunk_migrations.cli import main as cli
from starpunk_migrations.evolution.revision_history import revision_history

from conftest import BIN, CHAIN, HEAD, digest, run, versions
from faults import stopped, unbuffered, write_lock_held
from starpunk_history import build, table_rows

TARGET = CHAIN[-3]
REVERTED = [CHAIN[-1], CHAIN[-2]]
LOSSES = {entry.revision: entry.downgrade_loses for entry in revision_history()}


def at_head(folder) -> tuple:
    database = build(folder / "starpunk.db", "v1.4")
    assert cli.main(["upgrade", "--no-backup", str(database)]) == 0
    return database, digest(database), sorted(folder.iterdir())


def test_without_yes_it_lists_the_losses_and_changes_nothing(tmp_path):
    database, before, listing = at_head(tmp_path)

    result = run("starpunk-db", "downgrade", "--to", TARGET, str(database))

    assert result.returncode == 1
    assert re.findall(r"^Revert:    (\S+)", result.stdout, re.MULTILINE) == REVERTED
    for revision in REVERTED:
        assert f"           cannot bring back: {LOSSES[revision]}" in result.stdout
    assert result.stderr.strip() == (
        "starpunk-db: this downgrade loses what is listed above and nothing was changed; "
        f"run `starpunk-db downgrade --to {TARGET} --yes {database}` to go ahead (a backup is written first)."
    )
    assert "Backup:" not in result.stdout  # it said what will happen, and no backup is written
    assert digest(database) == before and sorted(tmp_path.iterdir()) == listing


def test_dry_run_shows_the_plan_and_writes_nothing(tmp_path, capsys):
    database, before, listing = at_head(tmp_path)
    capsys.readouterr()

    assert cli.main(["downgrade", "--to", TARGET, "--dry-run", str(database)]) == 0

    out = capsys.readouterr().out
    assert f"Target:    {TARGET}" in out and out.strip().endswith("Dry run: nothing was written.")
    assert digest(database) == before and sorted(tmp_path.iterdir()) == listing


def test_with_yes_it_backs_up_then_reverts(tmp_path, capsys):
    database, _, _ = at_head(tmp_path)
    rows = table_rows(database)
    capsys.readouterr()

    assert cli.main(["downgrade", "--to", TARGET, "--yes", str(database)]) == 0

    assert versions(database) == [TARGET]
    (backup,) = tmp_path.glob("starpunk.db.backup-*")
    assert backup.name.startswith(f"starpunk.db.backup-{HEAD}-")
    assert versions(backup) == [HEAD] and table_rows(backup) == rows
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == f"Done: {database} is at revision {TARGET}, {len(REVERTED)} revision(s) reverted; the backup is {backup}."
    assert [line.split()[1] for line in out if line.startswith("reverted ")] == REVERTED
    db = sqlite3.connect(database)
    assert db.execute("SELECT count(*) FROM notes").fetchone()[0] == len(rows["notes"])
    db.close()


def test_an_unknown_or_newer_target_is_refused_untouched(tmp_path):
    database = build(tmp_path / "starpunk.db", "v1.0")  # detected, never stamped
    before, listing = digest(database), sorted(tmp_path.iterdir())

    unknown = run("starpunk-db", "downgrade", "--to", "no-such", "--yes", str(database))
    newer = run("starpunk-db", "downgrade", "--to", HEAD, "--yes", str(database))

    assert unknown.returncode == newer.returncode == 1
    assert unknown.stderr.startswith(f"starpunk-db: There is no revision 'no-such'; `starpunk-db history {database}` lists them")
    assert newer.stderr.strip() == (
        f"starpunk-db: Revision {HEAD} is newer than the database's revision 004; use `starpunk-db upgrade --to {HEAD} {database}`."
    )
    assert digest(database) == before and sorted(tmp_path.iterdir()) == listing


def test_downgrading_a_file_never_stamped_adopts_it_first(tmp_path):
    database = build(tmp_path / "starpunk.db", "v1.2")
    result = run("starpunk-db", "downgrade", "--to", "006", "--yes", str(database))
    assert result.returncode == 0, result.stderr
    assert versions(database) == ["006"]
    assert "media" not in table_rows(database)


@pytest.mark.slow
def test_a_downgrade_an_upgrade_overtook_between_its_plan_and_its_lock_refuses_and_asks_again(tmp_path):
    """The operator agreed to revert one revision; an upgrade committing before the downgrade
    takes its lock must not turn that into reverting three."""
    database = build(tmp_path / "starpunk.db", "v1.2")
    assert run("starpunk-db", "upgrade", "--no-backup", "--to", CHAIN[-3], str(database)).returncode == 0
    with write_lock_held(database) as release:  # StarPunk writing: the downgrade plans, then waits
        downgrade = subprocess.Popen(
            [str(BIN / "starpunk-db"), "downgrade", "--to", CHAIN[-4], "--yes", str(database)],
            env=unbuffered(database),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert downgrade.stdout is not None
        plan = [downgrade.stdout.readline() for _ in range(4)]
        with stopped(downgrade):
            release()
            assert run("starpunk-db", "upgrade", "--no-backup", str(database)).returncode == 0
            after_the_upgrade, listing = digest(database), sorted(tmp_path.iterdir())
    rest, stderr = downgrade.communicate(timeout=120)

    assert re.findall(r"^Revert:    (\S+)", "".join(plan), re.MULTILINE) == [CHAIN[-3]]
    assert downgrade.returncode == 1, rest + stderr
    assert stderr == (
        f"starpunk-db: {database} changed after the plan above was made: it was at revision {CHAIN[-3]}, it is now "
        f"at revision {HEAD} (another program, perhaps an upgrade, wrote to it meanwhile); nothing was changed: "
        "run the command again to see what it would do now.\n"
    )
    assert versions(database) == [HEAD]
    assert digest(database) == after_the_upgrade and sorted(tmp_path.iterdir()) == listing
