"""StarPunk as it runs: gunicorn, 4 workers, each calling `create_app()` (and so `init_app`)
at once on a legacy file. One worker migrates and writes the one backup, gunicorn's log
names it, the others wait and find the file at head, and every worker serves. Loopback
only; every wait is bounded, and gunicorn is stopped whatever happens."""

from __future__ import annotations

import re

import pytest

from conftest import CHAIN, HEAD, versions
from flask_host import WORKERS, address_of, pages, serve, stop, write_host
from starpunk_history import assert_rows_kept, build, table_rows

# Real processes, several per test: the full suite runs these, `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("package", [False, True], ids=["app.py", "an app/ package"])
def test_four_workers_start_on_a_legacy_file_one_migrates_and_all_serve(tmp_path, package):
    host = write_host(tmp_path / "host", package=package)
    database = build(host / "starpunk.db", "legacy v0.9.5")
    rows = table_rows(database)
    log = host / "gunicorn.log"

    server = serve(host, log, HOST_DATABASE_PATH=str(database), HOST_PAGE_SECONDS="0.3")
    try:
        answered = pages(address_of(server, log))
    finally:
        stop(server)

    assert {page.split()[1] for page in answered} == {HEAD}
    assert len({page.split()[0] for page in answered}) == WORKERS, log.read_text()
    assert versions(database) == [HEAD]
    assert_rows_kept(rows, table_rows(database))
    (backup,) = host.glob("starpunk.db.backup-*")
    text = log.read_text()
    assert "Traceback" not in text, text
    assert re.findall(r"starpunk_migrations: backup written to (\S+)", text) == [str(backup)]
    migrating = set(re.findall(r"\[(\d+)\] \[INFO\] starpunk_migrations: ", text))
    assert len(migrating) == 1 and text.count("starpunk_migrations: Detected StarPunk state") == 1
    applied = len(CHAIN) - CHAIN.index("001") - 1  # a legacy file is detected as 001
    assert f"starpunk_migrations: {database} is at revision {HEAD}: {applied} revision(s) applied" in text
