"""`starpunk-db history`: every revision with the StarPunk release it belongs to, read from
the revision files, and the database's own revision marked."""

from __future__ import annotations

import re

from starpunk_migrations.cli import main as cli
from starpunk_migrations.evolution.revision_history import describe, revision_history

from conftest import CHAIN, HEAD, NEXT_REVISION
from starpunk_history import build


def history_rows(out: str) -> list[tuple[str, str, str]]:
    return re.findall(r"^([* ]) (\S+)\s+(v\d\S*|unreleased)\s+\S", out, re.MULTILINE)


def test_history_lists_every_revision_with_its_release_and_marks_the_detected_one(tmp_path, capsys):
    database = build(tmp_path / "starpunk.db", "rc.2 hybrid")

    assert cli.main(["history", str(database)]) == 0

    out = capsys.readouterr().out
    rows = history_rows(out)
    assert [revision for _, revision, _ in rows] == CHAIN
    assert [revision for mark, revision, _ in rows if mark == "*"] == ["002"]
    assert (
        out.splitlines()[0]
        == f"Database:  {database}: v1.0.0-rc.1 .. rc.3 with idx_tokens_expires, idx_tokens_hash and idx_tokens_me missing (revision 002, detected from its schema)"
    )
    assert out.splitlines()[-1] == "* the database's revision (detected, not yet stamped)"
    assert re.search(rf"^  {HEAD}\s+\S+\s+.+  \(head\)$", out, re.MULTILINE)


def test_history_marks_a_managed_databases_revision_and_works_without_a_database(tmp_path, capsys):
    database = build(tmp_path / "starpunk.db", "v0.4")
    assert cli.main(["upgrade", "--to", "003", str(database)]) == 0
    capsys.readouterr()
    assert cli.main(["history", str(database)]) == 0
    out = capsys.readouterr().out
    assert [revision for mark, revision, _ in history_rows(out) if mark == "*"] == ["003"]
    assert out.splitlines()[-1] == "* the database's revision"

    assert cli.main(["history", str(tmp_path / "none.db")]) == 0
    out = capsys.readouterr().out
    assert [mark for mark, _, _ in history_rows(out)] == [" "] * len(CHAIN)
    assert out.splitlines()[0] == f"Database:  {tmp_path / 'none.db'}: missing"
    assert not (tmp_path / "none.db").exists()


def test_the_documented_releases_and_losses_come_from_the_docstrings():
    entries = {entry.revision: entry for entry in revision_history()}
    assert {revision: entry.release for revision, entry in entries.items() if revision in ("v0_1_0", "001", "002", "009")} == {
        "v0_1_0": "v0.1.0",
        "001": "v0.8.0",
        "002": "v1.0.0-rc.1",
        "009": "v1.4.0",
    }
    assert entries["009"].summary == "resized variants of each image."
    assert entries["009"].downgrade_loses == "variant rows (the resized files stay on disk)."
    # a loss written over several lines is read whole, and stops at the next paragraph
    assert entries["v0_4_0"].downgrade_loses.startswith("the plaintext tokens (a hash cannot be reversed), so the downgrade")
    assert entries["v0_4_0"].downgrade_loses.endswith("redirect_uri, user_agent and ip_address values.")
    assert all(entry.loses_data for entry in entries.values())


def test_a_revision_naming_no_release_is_shown_as_unreleased():
    entry = describe(NEXT_REVISION, HEAD, "note summaries\n\nDowngrade cannot bring back: the summaries.")
    assert (entry.release, entry.summary, entry.loses_data) == ("unreleased", "note summaries", True)


def test_a_revision_that_loses_nothing_needs_no_confirmation():
    entry = describe(
        "010", "009", "StarPunk migration 010 (v1.6.0): an index.\n\nDowngrade cannot bring back: nothing.\n\nRevision ID: 010"
    )
    assert (entry.release, entry.summary, entry.downgrade_loses, entry.loses_data) == ("v1.6.0", "an index.", "nothing.", False)
