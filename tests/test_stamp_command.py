"""`starpunk-db stamp`: records what detection finds (or, with --force, the revision the
operator names) without running any revision, says what it does first, backs up first."""

from __future__ import annotations

import sqlite3
import subprocess

import pytest

from starpunk_migrations.cli import main as cli

from conftest import BIN, CHAIN, HEAD, NEXT_REVISION, SETTLED, UNLIKE_SETTLED, digest, run, settled, versions, wrongly_stamped
from faults import stopped, unbuffered, write_lock_held
from schema_copies import add_revision, execute, project_copy, run_in_copy
from starpunk_history import STATES_BY_NAME, build, stamped, table_rows

# Real processes, several per test: the full suite runs these, `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow


def index_names(path) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        db.close()


def test_stamp_adopts_what_detection_finds_and_runs_no_revision(tmp_path, capsys):
    database = build(tmp_path / "starpunk.db", "rc.2 hybrid")
    rows = table_rows(database)

    assert cli.main(["stamp", str(database)]) == 0

    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"Stamping 002 on {database}: detected v1.0.0-rc.1 .. rc.3 with idx_tokens_expires, idx_tokens_hash and idx_tokens_me missing (revision 002, detected from its schema), "
        "after 3 repair(s), adding 1 schema_migrations row(s); no revision is run."
    )
    assert out[-1] == f"Done: {database} is stamped 002."
    assert versions(database) == ["002"]
    assert {"idx_tokens_hash", "idx_tokens_me", "idx_tokens_expires"} <= index_names(database)  # the repair
    assert table_rows(database) == rows  # 003 and later did not run: tokens are still there
    (backup,) = tmp_path.glob("starpunk.db.backup-v1.0.0-rc.1-..-rc.3-repaired-*")
    assert f"backup written to {backup}" in out


def test_stamp_on_a_correctly_stamped_file_does_nothing(tmp_path, capsys):
    database = build(tmp_path / "starpunk.db", "v1.3")
    assert cli.main(["upgrade", "--no-backup", str(database)]) == 0
    before, listing = digest(database), sorted(tmp_path.iterdir())
    capsys.readouterr()

    assert cli.main(["stamp", str(database)]) == 0

    assert capsys.readouterr().out.strip() == f"Nothing to do: {database} is stamped {HEAD}, and its schema is that revision's."
    assert digest(database) == before and sorted(tmp_path.iterdir()) == listing


def test_a_wrong_stamp_is_refused_by_upgrade_and_stamp_corrects_it_after_a_backup(tmp_path):
    database = wrongly_stamped(tmp_path / "starpunk.db")
    before, listing = digest(database), sorted(tmp_path.iterdir())

    refused = run("starpunk-db", "upgrade", str(database))

    assert refused.returncode == 1
    assert f"stamped {UNLIKE_SETTLED}, but its schema is not that revision's" in refused.stderr
    assert f"run `starpunk-db stamp {database}` to stamp {SETTLED}" in refused.stderr
    assert digest(database) == before and sorted(tmp_path.iterdir()) == listing

    fixed = run("starpunk-db", "stamp", str(database))

    assert fixed.returncode == 0, fixed.stderr
    (backup,) = tmp_path.glob(f"starpunk.db.backup-{UNLIKE_SETTLED}-*")
    lines = fixed.stdout.splitlines()
    assert lines[0].startswith(
        f"Stamping {SETTLED} on {database}: it is stamped {UNLIKE_SETTLED}, but its schema differs from that revision's: "
    )
    assert lines[1:] == [
        f"backup written to {backup}",
        f"Done: {database} is stamped {SETTLED} (was: {UNLIKE_SETTLED}); no revision was run.",
    ]
    assert versions(database) == [SETTLED] and versions(backup) == [UNLIKE_SETTLED]
    assert run("starpunk-db", "upgrade", "--no-backup", str(database)).returncode == 0
    assert versions(database) == [HEAD]


def test_force_stamps_the_named_revision_whatever_the_schema(tmp_path):
    database = wrongly_stamped(tmp_path / "starpunk.db")

    forced = run("starpunk-db", "stamp", "--force", CHAIN[1], str(database))

    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.splitlines()[0].startswith(
        f"Stamping {CHAIN[1]} on {database}, whatever its schema (it is stamped {UNLIKE_SETTLED}, "
    )
    assert versions(database) == [CHAIN[1]]


def test_an_alembic_version_with_two_rows_is_stamped_with_what_detection_finds(tmp_path):
    database = wrongly_stamped(tmp_path / "starpunk.db")
    db = sqlite3.connect(database)
    db.execute("INSERT INTO alembic_version VALUES (?)", (CHAIN[1],))
    db.commit()
    db.close()

    fixed = run("starpunk-db", "stamp", str(database))

    assert fixed.returncode == 0, fixed.stderr
    assert "its alembic_version holds" in fixed.stdout.splitlines()[0]
    assert versions(database) == [SETTLED]


def test_force_places_a_file_detection_cannot(tmp_path):
    database = build(tmp_path / "starpunk.db", "v1.4")
    db = sqlite3.connect(database)
    db.execute("ALTER TABLE notes ADD COLUMN mood TEXT")  # a schema no release had
    db.commit()
    db.close()
    assert run("starpunk-db", "stamp", str(database)).returncode == 1

    dry = run("starpunk-db", "stamp", "--force", HEAD, "--dry-run", str(database))
    assert (
        dry.returncode == 0
        and "whatever its schema (it is not stamped; detection cannot place it: The database's schema matches no StarPunk release"
        in dry.stdout
    )
    assert dry.stdout.strip().endswith("Dry run: nothing was written.")
    assert not list(tmp_path.glob("starpunk.db.backup-*"))

    assert run("starpunk-db", "stamp", "--force", HEAD, str(database)).returncode == 0
    assert versions(database) == [HEAD]


def test_stamp_refuses_an_unknown_revision_a_missing_file_and_another_applications_database(tmp_path):
    database = build(tmp_path / "starpunk.db", "v1.4")
    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    db.commit()
    db.close()
    before, listing = digest(database), sorted(tmp_path.iterdir())

    unknown = run("starpunk-db", "stamp", "--force", "no-such", str(database))
    missing = run("starpunk-db", "stamp", str(tmp_path / "none.db"))
    foreign = run("starpunk-db", "stamp", str(other))

    assert (
        unknown.stderr.strip()
        == f"starpunk-db: There is no revision 'no-such'; `starpunk-db history {database}` lists them; nothing was changed."
    )
    assert unknown.stdout == ""  # refused before "Stamping no-such ..." is announced
    assert missing.stderr.strip() == f"starpunk-db: There is no database at {tmp_path / 'none.db'}; nothing to stamp."
    assert "it belongs to another application" in foreign.stderr
    assert unknown.returncode == missing.returncode == foreign.returncode == 1
    assert digest(database) == before and sorted(tmp_path.iterdir()) == listing


def stamped_by_another_program(tmp_path, revision: str):
    """A file at SETTLED whose alembic_version names `revision`, which this code does not have."""
    return stamped(settled(tmp_path / "starpunk.db"), revision)


NEWER = f"{int(NEXT_REVISION) + 5:03}"  # a revision of a newer StarPunk release


@pytest.mark.parametrize("rows", [[NEWER], ["ae1027a6acf", NEWER], ["009", NEWER]], ids=["alone", "with another's", "with ours"])
def test_stamp_leaves_a_newer_releases_stamp_alone(tmp_path, rows):
    # Detection sees names only: what the newer release changed besides them it cannot see, and
    # a stamp of what it finds would have that release's revisions run again, or never.
    database = stamped_by_another_program(tmp_path, rows[0])
    execute(database, *(f"INSERT INTO alembic_version VALUES ('{row}')" for row in rows[1:]))
    before, listing = digest(database), sorted(tmp_path.iterdir())

    refused = run("starpunk-db", "stamp", str(database))

    assert refused.returncode == 1 and refused.stdout == ""
    assert f"is at Alembic revision '{NEWER}', which this version of StarPunk does not know" in refused.stderr
    assert digest(database) == before and sorted(tmp_path.iterdir()) == listing
    forced = run("starpunk-db", "stamp", "--force", HEAD, "--dry-run", str(database))
    assert forced.returncode == 0 and forced.stdout.startswith(f"Stamping {HEAD} on {database}, whatever its schema")


def test_stamp_says_a_newer_releases_stamp_is_one_when_forced_over_it(tmp_path):
    database = stamped_by_another_program(tmp_path, NEWER)

    forced = run("starpunk-db", "stamp", "--force", HEAD, "--dry-run", str(database))

    assert f"(it is stamped {NEWER}, a revision this code does not have: a newer StarPunk release's;" in forced.stdout


# Alembic's own ids are twelve hexadecimal digits, now and then all of them digits.
@pytest.mark.parametrize("revision", ["ae1027a6acf", "123456789012"])
def test_stamp_replaces_another_applications_stamp_saying_whose_it_is(tmp_path, revision):
    database = stamped_by_another_program(tmp_path, revision)

    fixed = run("starpunk-db", "stamp", str(database))

    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.startswith(
        f"Stamping {SETTLED} on {database}: it is stamped {revision}, a revision this code does not have: another application's"
    )
    assert versions(database) == [SETTLED]


def test_a_null_alembic_version_row_is_no_stamp_and_stamp_records_what_detection_finds(tmp_path):
    database = settled(tmp_path / "starpunk.db")
    execute(
        database,
        "DROP TABLE alembic_version",
        "CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)",
        "INSERT INTO alembic_version VALUES (NULL)",
    )
    assert "alembic_version has no row" in run("starpunk-db", "upgrade", str(database)).stderr

    fixed = run("starpunk-db", "stamp", str(database))

    assert fixed.returncode == 0 and fixed.stderr == "", fixed.stderr
    assert fixed.stdout.splitlines()[-1] == f"Done: {database} is stamped {SETTLED} (was: no stamp); no revision was run."
    assert versions(database) == [SETTLED]


def test_stamp_does_not_guess_between_revisions_that_look_alike(tmp_path):
    # A file that ran this project's revisions may be at any of those that change no name; a
    # stamp of the earliest would run the others again (here: rewrite every slug twice).
    project = project_copy(tmp_path, with_app=True)
    add_revision(project, NEXT_REVISION, HEAD, "op.execute(\"UPDATE notes SET slug = slug || '-x'\")")
    database = build(tmp_path / "starpunk.db", "v1.4")
    assert run_in_copy(project, "starpunk-db", "upgrade", "--no-backup", str(database), database=database).returncode == 0
    stamped(database, "ae1027a6acf")  # another application's stamp replaced ours
    before, listing = digest(database), sorted(tmp_path.iterdir())

    upgrade = run_in_copy(project, "starpunk-db", "upgrade", str(database), database=database)
    stamp = run_in_copy(project, "starpunk-db", "stamp", str(database), database=database)

    assert upgrade.returncode == stamp.returncode == 1
    assert (
        f"or {NEXT_REVISION}'s" in upgrade.stderr
        and f"stamp the one it is at with `starpunk-db stamp --force REV {database}`" in upgrade.stderr
    )
    assert (
        f"or {NEXT_REVISION}'s" in stamp.stderr
        and f"stamp the one it is at with `starpunk-db stamp --force REV {database}`" in stamp.stderr
    )
    assert digest(database) == before and sorted(tmp_path.iterdir()) == listing
    stamped(database, CHAIN[0])  # a stamp whose schema is not the file's
    refused = run_in_copy(project, "starpunk-db", "upgrade", str(database), database=database)
    assert refused.returncode == 1 and f"stamp the one it is at with `starpunk-db stamp --force REV {database}`" in refused.stderr


V1_2 = STATES_BY_NAME["v1.2"].revision


@pytest.mark.parametrize("arguments", [["stamp"], ["stamp", "--force", V1_2]], ids=["stamp", "stamp --force"])
def test_a_stamp_an_upgrade_overtook_between_its_plan_and_its_lock_says_the_file_changed(tmp_path, arguments):
    """Not "use downgrade", nor a stamp over what the upgrade did: the file changed meanwhile."""
    database = build(tmp_path / "starpunk.db", "v1.2")  # never stamped
    with write_lock_held(database) as release:  # StarPunk writing: the stamp plans, then waits
        stamp = subprocess.Popen(
            [str(BIN / "starpunk-db"), *arguments, str(database)],
            env=unbuffered(database),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert stamp.stdout is not None
        plan = stamp.stdout.readline()
        with stopped(stamp):
            release()
            assert run("starpunk-db", "upgrade", str(database)).returncode == 0
            after_the_upgrade, listing = digest(database), sorted(tmp_path.iterdir())
    rest, stderr = stamp.communicate(timeout=120)

    assert plan.startswith(f"Stamping {V1_2} on {database}")
    assert stamp.returncode == 1, rest + stderr
    (sentence,) = stderr.splitlines()
    assert sentence.startswith(f"starpunk-db: {database} changed after the plan above was made: it was ")
    assert f"it is now at revision {HEAD}" in sentence or f"it is now stamped {HEAD}" in sentence
    assert sentence.endswith("nothing was changed: run the command again to see what it would do now.")
    assert "downgrade" not in sentence
    assert versions(database) == [HEAD]
    assert digest(database) == after_the_upgrade and sorted(tmp_path.iterdir()) == listing
