"""Text that is not what it should be: bytes in the file that are not UTF-8, file names that
are not valid in the file-name encoding, and hosts whose locale is not UTF-8.

Whatever the bytes and the locale, `ensure_schema` raises nothing but `UpgradeRefused`, the
commands answer in one sentence (never "failed unexpectedly"), and a readable file with an
odd name is read.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from starpunk_migrations import UpgradeRefused, ensure_schema

from conftest import BIN, HEAD, digest, versions
from faults import ENSURE_SCHEMA, ENTRY_POINTS, assert_refused, command_line, environment, run_command, snapshot
from starpunk_history import build, stamped

pytestmark = pytest.mark.slow

UNICODE_NAME = "ünïcødé.db"


def with_schema_entry(path: Path, name: bytes, sql: bytes) -> Path:
    """A v1.4 file whose sqlite_master holds a table entry written byte for byte."""
    build(path, "v1.4")
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE guestbook (entry TEXT)")
    db.execute("PRAGMA writable_schema = ON")
    db.execute(
        "UPDATE sqlite_master SET name = CAST(? AS TEXT), tbl_name = CAST(? AS TEXT), sql = CAST(? AS TEXT) "
        "WHERE name = 'guestbook'",
        (name, name, sql),
    )
    db.commit()
    db.close()
    return path


UNDECODABLE = {
    # SQLite's own message then holds the name's bytes, which Python cannot turn into text.
    "a damaged schema entry with a name that is not UTF-8": lambda path: with_schema_entry(
        path, b"guest\xff", b"CREATE TABLE guest\xff (entry TEXT))"
    ),
    "a table name that is not UTF-8": lambda path: with_schema_entry(
        path, b"guest\xff", b'CREATE TABLE "guest\xff" (entry TEXT)'
    ),
    "an alembic_version that is not UTF-8": lambda path: stamped(build(path, "v1.4"), b"\xff009"),
}


@pytest.mark.parametrize("case", UNDECODABLE)
def test_ensure_schema_refuses_bytes_that_are_not_utf8_in_one_sentence(tmp_path, case):
    database = UNDECODABLE[case](tmp_path / "starpunk.db")
    before = snapshot(tmp_path)

    with pytest.raises(UpgradeRefused) as refused:
        ensure_schema(database, busy_timeout=5)

    assert "not valid UTF-8" in str(refused.value) and "unexpectedly" not in str(refused.value)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("case", UNDECODABLE)
@pytest.mark.parametrize("command", [["status"], ["upgrade"]])
def test_the_commands_refuse_bytes_that_are_not_utf8_in_one_sentence(tmp_path, case, command):
    database = UNDECODABLE[case](tmp_path / "starpunk.db")
    before = snapshot(tmp_path)

    result = run_command([str(BIN / "starpunk-db"), *command, str(database)], database)

    sentence = assert_refused(result, "starpunk-db", "not valid UTF-8")
    assert "unexpectedly" not in sentence
    assert snapshot(tmp_path) == before


NOT_UTF8_NAME = os.fsdecode(b"caf\xe9 \xff.db")  # Latin-1 bytes: no UTF-8 decoder reads them


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_a_file_name_that_is_not_utf8_is_upgraded_with_its_backup_beside_it(tmp_path, name):
    database = build(tmp_path / NOT_UTF8_NAME, "legacy v0.9.5")

    result = run_command(command_line(name, database), database)

    assert result.returncode == 0, result.stdout + result.stderr
    assert versions(database) == [HEAD]
    names = sorted(os.listdir(os.fsencode(tmp_path)))
    assert len(names) == 2 and names[0] == os.fsencode(NOT_UTF8_NAME) and names[1].startswith(b"caf\xe9 \xff.db.backup-v0.8-")


def test_ensure_schema_takes_a_file_name_that_is_not_utf8_in_process(tmp_path):
    database = build(tmp_path / NOT_UTF8_NAME, "legacy v0.9.5")

    assert ensure_schema(database, backup=False) == HEAD
    assert ensure_schema(str(database)) == HEAD  # the fast path, now at head
    assert versions(database) == [HEAD]


def test_status_of_a_file_name_that_is_not_utf8_shows_its_bytes_escaped(tmp_path):
    database = build(tmp_path / NOT_UTF8_NAME, "legacy v0.9.5")

    result = run_command([str(BIN / "starpunk-db"), "status", str(database)], database)

    assert result.returncode == 0, result.stderr
    assert f"Database:  {tmp_path}/caf\\xe9 \\xff.db" in result.stdout
    assert "State:     v0.8 / legacy v0.9.x" in result.stdout


def in_locale(locale: dict[str, str], arguments: list[str], database: Path) -> subprocess.CompletedProcess:
    """A command run as it would be on a host whose locale is `locale` (argv decoded in it)."""
    env = {**environment(), **locale}
    return subprocess.run(
        [os.fsencode(argument) for argument in arguments], env=env, cwd=database.parent, capture_output=True, timeout=180
    )


ASCII_LOCALE = {"LC_ALL": "C", "PYTHONUTF8": "0"}


@pytest.mark.parametrize("command", [["status"], ["upgrade"], ["backups"]])
def test_a_unicode_path_under_the_c_locale_is_read_and_upgraded(tmp_path, command):
    database = build(tmp_path / UNICODE_NAME, "legacy v0.9.5")

    result = in_locale(ASCII_LOCALE, [str(BIN / "starpunk-db"), *command, str(database)], database)

    assert result.returncode == 0, result.stdout + result.stderr
    assert b"unexpectedly" not in result.stderr and b"Traceback" not in result.stderr
    if command == ["upgrade"]:
        assert versions(database) == [HEAD]


def test_ensure_schema_under_the_c_locale_upgrades_a_unicode_path_given_as_bytes_of_the_command_line(tmp_path):
    database = build(tmp_path / UNICODE_NAME, "legacy v0.9.5")

    result = in_locale(ASCII_LOCALE, command_line("ensure_schema", database), database)

    assert result.returncode == 0, result.stderr
    assert versions(database) == [HEAD]


def test_ensure_schema_under_the_c_locale_takes_a_unicode_name_the_locale_cannot_write_as_utf8(tmp_path):
    database = build(tmp_path / UNICODE_NAME, "legacy v0.9.5")
    # The name as a Python string, as an application would pass it; ASCII file names cannot hold
    # it, and the file's name on disk is its UTF-8.
    program = f"import sys\nsys.argv[1:] = [{str(database)!a}, '5']\n" + ENSURE_SCHEMA

    result = in_locale(ASCII_LOCALE, [str(BIN / "python"), "-c", program], database)

    assert result.returncode == 0, result.stderr
    assert versions(database) == [HEAD]


def test_a_path_holding_a_nul_is_refused_in_one_sentence(tmp_path):
    with pytest.raises(UpgradeRefused, match="holds a NUL character"):
        ensure_schema(str(tmp_path / "star\x00punk.db"))
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def latin1_locale(tmp_path_factory) -> dict[str, str]:
    """A real ISO-8859-1 locale, compiled into a folder of the test's own (nothing installed)."""
    if shutil.which("localedef") is None:
        pytest.skip("no localedef to compile an ISO-8859-1 locale on this host")
    folder = tmp_path_factory.mktemp("locales")
    compiled = subprocess.run(
        ["localedef", "-i", "en_US", "-f", "ISO-8859-1", str(folder / "en_US.ISO-8859-1")], capture_output=True, text=True
    )
    if not (folder / "en_US.ISO-8859-1").is_dir():
        pytest.skip(f"localedef could not compile en_US.ISO-8859-1 ({compiled.stderr.strip()})")
    locale = {"LOCPATH": str(folder), "LC_ALL": "en_US.ISO-8859-1", "PYTHONUTF8": "0"}
    probe = subprocess.run(
        [str(BIN / "python"), "-c", "import sys; print(sys.getfilesystemencoding())"],
        env={**environment(), **locale},
        capture_output=True,
        text=True,
    )
    if probe.stdout.strip() != "iso8859-1":
        pytest.skip(f"the compiled locale is not used by Python here (file names: {probe.stdout.strip()})")
    return locale


def test_status_backups_and_restore_read_a_unicode_path_under_an_iso_8859_1_locale(tmp_path, latin1_locale):
    database = build(tmp_path / UNICODE_NAME, "legacy v0.9.5")
    assert run_command([str(BIN / "starpunk-db"), "upgrade", str(database)], database).returncode == 0
    (backup,) = [path for path in tmp_path.iterdir() if path != database]
    upgraded = digest(database)

    status = in_locale(latin1_locale, [str(BIN / "starpunk-db"), "status", "--json", str(database)], database)
    listed = in_locale(latin1_locale, [str(BIN / "starpunk-db"), "backups", "--json", str(database)], database)
    restored = in_locale(latin1_locale, [str(BIN / "starpunk-db"), "restore", str(backup), str(database)], database)

    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["revision"] == HEAD
    assert listed.returncode == 0, listed.stderr
    assert [entry["revision"] for entry in json.loads(listed.stdout)] == ["001"]
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert digest(database) != upgraded and "tokens" in {
        row[0] for row in sqlite3.connect(database).execute("SELECT name FROM sqlite_master")
    }
