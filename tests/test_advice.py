"""Advice that works where it is given: every `starpunk-db ...` command a refusal suggests
runs as written (no usage error; done, or refused with one sentence of its own), and so does
the advice that refusal gives in turn. Plans and announcements say only what will happen."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from starpunk_migrations.foundation.advice import shell_word
from starpunk_migrations.foundation.printable import printable
from starpunk_migrations.foundation.refusals import Attempt, sentence

from conftest import CHAIN, HEAD, PROJECT, SETTLED, run, versions, wrongly_stamped
from flask_host import write_host
from starpunk_history import build, stamped

# Real processes, several per test: the full suite runs these, `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow

# The two command lines of the same commands: a refusal's advice is spelled for the one it came from.
PROGRAMS = {"starpunk-db": "starpunk-db", "flask db": "flask --app app db"}  # as run
SUGGESTED = re.compile(r"`((?:starpunk-db|flask --app \S+ db) [^`]*)`")


def damaged(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 84)


# What the operator typed, on which file, and what was done to the file first.
REFUSALS = {
    "an unknown upgrade target": ("v1.3", None, ["upgrade", "--to", "042"]),
    "an upgrade target behind the file": ("v1.4", "at head", ["upgrade", "--to", "005"]),
    "an unknown downgrade target": ("v1.4", "at head", ["downgrade", "--to", "no-such"]),
    "a downgrade target ahead of the file": ("v1.0", None, ["downgrade", "--to", HEAD]),
    "a downgrade that loses data, without --yes": ("v1.4", "at head", ["downgrade", "--to", CHAIN[-3]]),
    "a stamp of an unknown revision": ("v1.4", None, ["stamp", "--force", "999"]),
    "a stamp that does not tell the truth": ("v0.1", "wrongly stamped", ["upgrade"]),
    "a backup that is not there": ("v1.4", None, ["restore", "starpunk.db.backup-none"]),
    "a damaged backup": ("v1.4", "damaged backup", ["restore", "starpunk.db.backup-damaged"]),
    "a check of an outdated file": ("v1.3", None, ["check"]),
}


def prepared(folder: Path, state: str, preparation: str | None) -> Path:
    if preparation == "wrongly stamped":
        return wrongly_stamped(folder / "starpunk.db")
    database = build(folder / "starpunk.db", state)
    if preparation == "at head":
        assert run("starpunk-db", "upgrade", "--no-backup", str(database)).returncode == 0
    if preparation == "damaged backup":
        damaged(folder / "starpunk.db.backup-damaged")
    return database


def refuse(arguments: list[str], folder: Path, program: str = "starpunk-db", environment_names: str | None = None) -> str:
    """What `program ARGUMENTS` refused with, run in `folder` (with DATABASE_PATH=`environment_names`)."""
    result = run(*PROGRAMS[program].split(), *arguments, cwd=folder, database=environment_names)
    assert result.returncode == 1, result.stdout + result.stderr
    return one_sentence(result)


def one_sentence(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    program, said = lines[0].split(": ", 1)
    assert program == "starpunk-db" or re.fullmatch(r"flask --app \S+ db", program), result.stderr
    return said


def run_as_written(suggestion: str, folder: Path) -> str:
    """The suggestion pasted into a shell: it parses, and either does its work or refuses in
    one sentence (returned)."""
    result = run(*shlex.split(suggestion), cwd=folder)
    assert "usage:" not in result.stderr, f"{suggestion!r} is not a valid command line: {result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode in (0, 1), result.stderr
    return one_sentence(result) if result.returncode else ""


@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize("refusal", REFUSALS)
def test_every_command_a_refusal_suggests_runs_as_written(tmp_path, refusal, program):
    state, preparation, arguments = REFUSALS[refusal]
    database = prepared(tmp_path, state, preparation)
    write_host(tmp_path)  # a StarPunk-like app.py, for flask db

    advice = SUGGESTED.findall(refuse([*arguments, str(database)], tmp_path, program))

    assert advice, f"the refusal suggests no {program} command"
    for suggestion in advice:
        assert suggestion.startswith(program.split()[0] + " "), suggestion
        answer = run_as_written(suggestion, tmp_path)
        for further in SUGGESTED.findall(answer):  # advice given by following advice
            run_as_written(further, tmp_path)


def test_the_advice_names_the_database_the_operator_named(tmp_path):
    database = prepared(tmp_path, "v1.4", "at head")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    answer = refuse(["upgrade", "--to", CHAIN[-3], str(database)], elsewhere)

    assert f"`starpunk-db downgrade --to {CHAIN[-3]} {database}`" in answer


def test_a_database_the_environment_names_is_named_in_the_advice_by_its_absolute_path(tmp_path):
    # Pasted in another shell, without DATABASE_PATH, a bare command would work on data/starpunk.db.
    database = prepared(tmp_path, "v1.3", None)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    answer = refuse(["upgrade", "--to", "042"], tmp_path, environment_names=database.name)

    (suggestion,) = SUGGESTED.findall(answer)
    assert suggestion == f"starpunk-db history {database}"
    followed = run(*shlex.split(suggestion), cwd=elsewhere)
    assert followed.returncode == 0 and "* 008 " in followed.stdout


def test_alembics_advice_names_the_file_the_environment_named(tmp_path):
    database = stamped(build(tmp_path / "starpunk.db", "v1.4"), CHAIN[0])  # a stamp that does not tell the truth

    result = run("alembic", "-c", str(PROJECT / "alembic.ini"), "upgrade", "head", database=database.name, cwd=tmp_path)

    assert result.returncode != 0
    advice = SUGGESTED.findall(result.stdout)
    assert advice and all(shlex.split(suggestion)[-1] == str(database) for suggestion in advice), result.stdout


def test_a_start_up_refusal_names_the_database_so_that_its_advice_runs_from_any_folder(tmp_path):
    # The refusal reaches an operator reading the application's log, in another folder and
    # environment than the application's.
    database = prepared(tmp_path / "data", "v0.1", "wrongly stamped")  # the default, data/starpunk.db
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    started = run(sys.executable, "-c", "import starpunk_migrations\nstarpunk_migrations.ensure_schema()", cwd=tmp_path)

    assert started.returncode == 1
    advice = SUGGESTED.findall(started.stderr)
    assert advice and all(shlex.split(suggestion)[-1] == str(database) for suggestion in advice), advice
    for suggestion in advice:
        run_as_written(suggestion, elsewhere)
    assert versions(database) == [SETTLED]  # `starpunk-db stamp DATABASE` put the right stamp on it
    assert list(elsewhere.iterdir()) == []


NAMES = ["a b.db", "it's.db", "-dash.db", "new\nline.db", "esc\x1b[2K.db", "rtl\u202e.db", "c1\x85.db", "é.db", "back\\slash.db"]


@pytest.mark.parametrize("name", NAMES)
def test_a_suggested_database_is_one_word_on_one_line_that_the_shell_reads_back(name):
    word = shell_word(name)

    assert printable(word) == word and "\n" not in word
    read = subprocess.run(["bash", "-c", f"printf %s {word}"], capture_output=True, check=True).stdout
    assert read == os.fsencode(f"./{name}" if name.startswith("-") else name)


def test_a_stamp_of_an_unknown_revision_announces_nothing(tmp_path):
    database = prepared(tmp_path, "v1.4", None)

    result = run("starpunk-db", "stamp", "--force", "999", str(database))

    assert result.returncode == 1 and result.stdout == ""


def test_a_downgrade_refused_for_want_of_yes_promises_no_backup(tmp_path):
    database = prepared(tmp_path, "v1.4", "at head")

    result = run("starpunk-db", "downgrade", "--to", CHAIN[-3], str(database))

    assert result.returncode == 1 and "Backup:" not in result.stdout
    assert list(tmp_path.glob("starpunk.db.backup-*")) == []


def test_an_unexpected_failure_names_the_database_within_the_sentence():
    said = sentence(ValueError("odd"), Attempt(action="upgrade"))

    assert said.startswith("The upgrade of the database failed unexpectedly (ValueError: odd)")
