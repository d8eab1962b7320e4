"""StarPunk's database inside its Flask application: `init_app` in `create_app()` and `flask db`.

A host app created to serve brings the database to head; created for a flask command it
leaves the file alone, so that `flask db status` shows pending work and `flask routes` writes
nothing. `flask db` is starpunk-db: the same commands, options, output and refusals, on the
database the app's configuration names, with advice that names `flask db`.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
import urllib.request

import pytest

from starpunk_migrations.cli.arguments import SUMMARIES

from conftest import BIN, CHAIN, HEAD, SETTLED, digest, run, versions, wrongly_stamped
from flask_host import WITHOUT_INIT_APP, flask, host_environment, start_serving, write_host
from starpunk_history import assert_rows_kept, build, table_rows

# Real processes, several per test: the full suite runs these, `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow

# What `status` says of a v1.3 file (revision 008): every revision after it pending.
PENDING_FROM_V1_3 = f"Pending:   {len(CHAIN) - CHAIN.index('008') - 1} revision(s): {' '.join(CHAIN[CHAIN.index('008') + 1 :])}"


@pytest.fixture
def host(tmp_path):
    return write_host(tmp_path / "host")


def outdated(host, state: str = "v1.3"):
    return build(host / "starpunk.db", state)


def listing(folder) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name != "__pycache__")


def test_a_flask_command_other_than_run_leaves_the_database_alone(host):
    database = outdated(host)
    before, files = digest(database), listing(host)

    result = flask(host, "routes", HOST_DATABASE_PATH=str(database))

    assert result.returncode == 0, result.stderr
    assert digest(database) == before and listing(host) == files


def test_flask_db_status_reports_pending_work_as_starpunk_db_does_and_writes_nothing(host):
    database = outdated(host)
    before, files = digest(database), listing(host)

    result = flask(host, "db", "status", HOST_DATABASE_PATH=str(database))

    assert result.returncode == 0, result.stderr
    assert PENDING_FROM_V1_3 in result.stdout
    assert result.stdout == run("starpunk-db", "status", str(database)).stdout
    assert digest(database) == before and listing(host) == files


def test_flask_db_upgrade_brings_the_configured_database_to_head_and_check_agrees(host):
    database = outdated(host, "legacy v0.9.5")
    rows = table_rows(database)
    assert flask(host, "db", "check", HOST_DATABASE_PATH=str(database)).returncode == 1

    result = flask(host, "db", "upgrade", HOST_DATABASE_PATH=str(database))

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith(f"Done: {database} is at revision {HEAD}")
    assert versions(database) == [HEAD]
    assert_rows_kept(rows, table_rows(database))
    assert len(list(host.glob("starpunk.db.backup-*"))) == 1
    checked = flask(host, "db", "check", HOST_DATABASE_PATH=str(database))
    assert checked.returncode == 0 and checked.stdout.startswith(f"Checked:   {database} is at head ({HEAD})")


def test_every_starpunk_db_command_is_a_flask_db_command_with_the_same_options(host):
    listed = flask(host, "db", "--help")
    assert listed.returncode == 0
    for name in SUMMARIES:
        assert re.search(rf"^  {name}\s", listed.stdout, re.MULTILINE), name

        helped = flask(host, "db", name, "--help")

        assert helped.returncode == 0, helped.stderr
        assert helped.stdout.startswith(f"usage: flask --app app db {name} ")  # as it was run
        options = set(re.findall(r"--[a-z-]+", run("starpunk-db", name, "--help").stdout))
        assert set(re.findall(r"--[a-z-]+", helped.stdout)) - {"--app"} == options  # (--app: its usage line)
        assert "the application's DATABASE_URL, else its DATABASE_PATH" in " ".join(helped.stdout.split())


def test_the_apps_configuration_names_the_database_before_the_environment(host):
    def database_of(**variables: str) -> str:
        result = flask(host, "db", "status", "--json", **variables)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["database"]

    url_file, path_file, environment_file = (str(host / name) for name in ("url.db", "path.db", "environment.db"))
    both = dict(HOST_DATABASE_URL=f"sqlite:///{url_file}", HOST_DATABASE_PATH=path_file, DATABASE_PATH=environment_file)

    assert database_of(**both) == url_file
    assert database_of(HOST_DATABASE_PATH=path_file, DATABASE_PATH=environment_file) == path_file
    assert database_of(DATABASE_PATH=environment_file) == environment_file
    assert database_of() == "data/starpunk.db"
    assert listing(host) == ["app.py"]  # read-only: not even data/ was made


# How the operator names the app: --app options, the environment, and what names it in advice.
NAMED = {
    "--app app": (["--app", "app"], {}, ""),
    "--app 'app:create_app()'": (["--app", "app:create_app()"], {}, ":create_app()"),
    "FLASK_APP": ([], {"FLASK_APP": "app"}, ""),
    "found as app.py": ([], {}, ""),
}


@pytest.mark.parametrize("named", NAMED)
def test_flask_db_advice_finds_the_app_and_the_database_from_any_folder(host, tmp_path, named):
    # StarPunk's entrypoint runs `flask --app 'starpunk:create_app()' db upgrade`; its operator
    # may paste the advice in another shell, without the app's folder or environment.
    options, variables, factory = NAMED[named]
    database = outdated(host)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    refused = subprocess.run(
        [str(BIN / "flask"), *options, "db", "upgrade", "--to", "042"],
        cwd=host,
        env=host_environment(host, HOST_DATABASE_PATH=str(database), **variables),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert refused.returncode == 1 and "There is no revision '042'" in refused.stderr, refused.stderr
    (suggestion,) = re.findall(r"`(flask [^`]*)`", refused.stderr)
    assert shlex.split(suggestion) == ["flask", "--app", f"{host / 'app'}{factory}", "db", "history", str(database)]
    followed = subprocess.run(
        [str(BIN / "flask"), *shlex.split(suggestion)[1:]],
        cwd=elsewhere,
        env=host_environment(elsewhere),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert followed.returncode == 0 and "* 008 " in followed.stdout, followed.stderr


def test_a_refusal_at_serve_time_advises_starpunk_db_on_the_apps_database(host, tmp_path):
    # A serving process cannot know how its operator runs flask (which --app, which folder).
    database = wrongly_stamped(host / "starpunk.db")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    result = start_serving(host, HOST_DATABASE_PATH=str(database))

    assert result.returncode == 1 and "UpgradeRefused" in result.stderr
    (stamp, *_) = advice = re.findall(r"`([^`]*)`", result.stderr.splitlines()[-1])
    assert all(suggestion.startswith("starpunk-db ") and suggestion.endswith(f" {database}") for suggestion in advice)
    assert run(*shlex.split(stamp), cwd=elsewhere).returncode == 0
    assert versions(database) == [SETTLED]


def test_flask_db_on_an_app_without_init_app_is_refused_in_one_sentence(tmp_path):
    host = write_host(tmp_path / "other", source=WITHOUT_INIT_APP)

    result = flask(host, "db", "upgrade")

    assert result.returncode == 1
    assert "does not use StarPunk's database: call starpunk_migrations.flask.init_app(app)" in result.stderr
    assert listing(host) == ["app.py"]


def test_an_app_created_to_serve_brings_the_database_to_head_and_says_so(host):
    database = outdated(host)

    result = start_serving(host, HOST_DATABASE_PATH=str(database))

    assert result.returncode == 0, result.stderr
    assert versions(database) == [HEAD]
    (backup,) = host.glob("starpunk.db.backup-*")
    assert f"starpunk_migrations: backup written to {backup}" in result.stderr


def test_flask_run_brings_the_database_to_head_before_serving(host):
    database = outdated(host)
    log = host / "flask-run.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [str(BIN / "flask"), "--app", "app", "run", "--host", "127.0.0.1", "--port", "0", "--no-reload"],
            cwd=host,
            env=host_environment(host, HOST_DATABASE_PATH=str(database)),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        address = None
        deadline = time.monotonic() + 60
        while address is None and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.2)
            address = re.search(r"Running on (http://127\.0\.0\.1:\d+)", log.read_text())
        assert address, log.read_text()
        with urllib.request.urlopen(address.group(1) + "/", timeout=10) as response:
            page = response.read().decode()
    finally:
        server.terminate()
        server.wait(timeout=30)

    assert page.split()[1] == HEAD
    assert "starpunk_migrations: backup written to" in log.read_text()
