"""A StarPunk-like Flask application in a folder of its own, as the Flask tests' host.

Its `create_app()` loads its configuration (here from HOST_DATABASE_URL / HOST_DATABASE_PATH,
so that a test can set app.config apart from the environment's DATABASE_URL / DATABASE_PATH)
and calls `init_app`, as StarPunk does. Its one page answers with the worker's pid and the
database's revision. It lives as app.py, or as an app/ package as StarPunk's own code does,
and is run by the flask command line or served by gunicorn on a loopback port.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conftest import BIN

CREATE_APP = """\
import os
import sqlite3
import time

from flask import Flask

from starpunk_migrations.flask import init_app


def create_app():
    app = Flask(__name__)
    for key in ("DATABASE_URL", "DATABASE_PATH"):
        if os.environ.get(f"HOST_{key}"):
            app.config[key] = os.environ[f"HOST_{key}"]
    init_app(app)

    @app.route("/")
    def index():
        time.sleep(float(os.environ.get("HOST_PAGE_SECONDS", "0")))  # keeps a worker busy, so the next takes a request
        db = sqlite3.connect(app.config["DATABASE_PATH"])
        (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
        db.close()
        return f"{os.getpid()} {revision}\\n"

    return app
"""
WITHOUT_INIT_APP = "from flask import Flask\n\n\ndef create_app():\n    return Flask(__name__)\n"


def write_host(folder: Path, *, package: bool = False, source: str = CREATE_APP) -> Path:
    """The host's code in `folder`: app.py, or app/__init__.py."""
    folder.mkdir(parents=True, exist_ok=True)
    if package:
        (folder / "app").mkdir()
        (folder / "app" / "__init__.py").write_text(source)
    else:
        (folder / "app.py").write_text(source)
    return folder


def host_environment(folder: Path, programs: Path | str = BIN, **variables: str) -> dict[str, str]:
    """The environment of the host's processes: none of the test run's database variables,
    a HOME of its own (gunicorn keeps a control socket there), `programs` (a virtualenv's
    bin/) first on the PATH, and what the test sets."""
    environment = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "DATABASE_PATH")}
    environment.update(HOME=str(folder), PATH=f"{programs}{os.pathsep}{environment['PATH']}", **variables)
    return environment


def flask(folder: Path, *arguments: str, programs: Path | str = BIN, **variables: str) -> subprocess.CompletedProcess:
    """`flask --app app ARGUMENTS` in the host's folder (`flask` from `programs`, a virtualenv's bin/)."""
    return subprocess.run(
        [str(Path(programs) / "flask"), "--app", "app", *arguments],
        cwd=folder,
        env=host_environment(folder, programs, **variables),
        capture_output=True,
        text=True,
        timeout=120,
    )


def start_serving(folder: Path, **variables: str) -> subprocess.CompletedProcess:
    """The host created to serve by a program of its own (no flask command line)."""
    program = "from app import create_app\ncreate_app()\n"
    return subprocess.run(
        [sys.executable, "-c", program],
        cwd=folder,
        env=host_environment(folder, **variables),
        capture_output=True,
        text=True,
        timeout=120,
    )


WORKERS = 4
REQUESTS_AT_MOST = 60


def serve(folder: Path, log: Path, *, programs: Path | str = BIN, **variables: str) -> subprocess.Popen:
    """gunicorn (from `programs`, the bin/ of a virtualenv) serving the host on a loopback port of its choosing."""
    with log.open("w") as output:
        return subprocess.Popen(
            [str(Path(programs) / "gunicorn"), "--workers", str(WORKERS), "--bind", "127.0.0.1:0", "app:create_app()"],
            cwd=folder,
            env=host_environment(folder, programs, **variables),
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def address_of(server: subprocess.Popen, log: Path) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        found = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", log.read_text())
        if found:
            return found.group(1)
        time.sleep(0.2)
    raise AssertionError(f"gunicorn did not start:\n{log.read_text()}")


def pages(address: str) -> list[str]:
    """Pages fetched 4 at a time (each keeps its worker busy) until every worker has answered."""
    answered: list[str] = []
    with ThreadPoolExecutor(WORKERS) as pool:
        while len({page.split()[0] for page in answered}) < WORKERS and len(answered) < REQUESTS_AT_MOST:
            answered += pool.map(lambda _: urllib.request.urlopen(address + "/", timeout=30).read().decode(), range(WORKERS))
    return answered


def stop(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=30)
