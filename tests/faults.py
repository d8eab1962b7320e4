"""What the fault tests share: the three entry points as subprocesses, and what a refusal must look like.

A refusal is one sentence (what was found, what to do), a non-zero exit, no traceback, the
database byte-identical, and nothing new in its folder.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from conftest import BIN, PROJECT, digest

ENTRY_POINTS = ("alembic", "starpunk-db", "ensure_schema")
ENSURE_SCHEMA = (
    "import sys\nfrom starpunk_migrations import ensure_schema, UpgradeRefused\n"
    "try:\n    print(ensure_schema(sys.argv[1], busy_timeout=float(sys.argv[2])))\n"
    "except UpgradeRefused as refusal:\n    sys.exit(f'refused: {refusal}')\n"
)


def command_line(
    name: str, database: Path | str, *, target: str = "head", busy_timeout: float = 120, url: str | None = None
) -> list[str]:
    """`name` upgrading `database` (a path, or `url` when given) to `target`."""
    if name == "alembic":
        return [str(BIN / "alembic"), "-c", str(PROJECT / "alembic.ini"), "-x", f"busy_timeout={busy_timeout}", "upgrade", target]
    if name == "starpunk-db":
        return [str(BIN / "starpunk-db"), "upgrade", "--to", target, "--busy-timeout", str(busy_timeout), url or str(database)]
    from starpunk_migrations.foundation.locations import sqlite_url

    return [sys.executable, "-c", ENSURE_SCHEMA, url or sqlite_url(database), str(busy_timeout)]


def environment(database: Path | str | None = None, url: str | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "DATABASE_PATH")}
    if url is not None:
        env["DATABASE_URL"] = url
    elif database is not None:
        env["DATABASE_PATH"] = str(database)
    return env


def run_command(
    arguments: list[str],
    database: Path | str | None = None,
    *,
    url: str | None = None,
    cwd: Path | None = None,
    timeout: float = 180,
    **kwargs,
) -> subprocess.CompletedProcess:
    folder = cwd or (Path(database).parent if database is not None else PROJECT)
    return subprocess.run(
        arguments, env=environment(database, url), cwd=folder, capture_output=True, text=True, timeout=timeout, **kwargs
    )


def upgrade(name: str, database: Path | str, **options) -> subprocess.CompletedProcess:
    url = options.pop("url", None)
    kwargs = {key: options.pop(key) for key in ("preexec_fn", "user", "cwd") if key in options}
    return run_command(command_line(name, database, url=url, **options), database, url=url, **kwargs)


def sentence_of(result: subprocess.CompletedProcess, name: str) -> str:
    """The one line an entry point refused with."""
    if name == "alembic":
        lines = [line for line in result.stdout.splitlines() if line.startswith("FAILED: ")]
        assert len(lines) == 1, result.stdout + result.stderr
        return lines[0].removeprefix("FAILED: ")
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    prefix = "starpunk-db: " if name == "starpunk-db" else "refused: "
    assert lines[0].startswith(prefix), result.stderr
    return lines[0].removeprefix(prefix)


def assert_refused(result: subprocess.CompletedProcess, name: str, *fragments: str) -> str:
    """Refused with one sentence holding every fragment, a non-zero exit and no traceback."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    sentence = sentence_of(result, name)
    for fragment in fragments:
        assert fragment in sentence, sentence
    return sentence


def snapshot(folder: Path) -> dict[str, str]:
    """Every file of `folder` (and below) with its digest: what "untouched" compares."""
    return {str(path.relative_to(folder)): digest(path) for path in sorted(folder.rglob("*")) if path.is_file()}


# A StarPunk worker in the middle of a write: it holds the write lock until told to let go.
HOLD_THE_WRITE_LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
db.execute("ROLLBACK")
"""


@contextlib.contextmanager
def write_lock_held(database: Path) -> Iterator[Callable[[], None]]:
    """The database's write lock, held by another process until the function yielded is called
    (or the block ends): every writer that comes meanwhile waits for it."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_WRITE_LOCK, str(database)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )

    def release() -> None:
        if holder.poll() is None:
            holder.communicate("\n", timeout=30)

    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        yield release
    finally:
        holder.kill()
        holder.wait()


def has_open(process: subprocess.Popen, path: Path) -> bool:
    """Whether `process` holds a descriptor of `path` (Linux's /proc shows them)."""
    target = str(path.resolve())
    folder = Path(f"/proc/{process.pid}/fd")
    try:
        return any(os.readlink(entry) == target for entry in folder.iterdir())
    except OSError:  # a descriptor closed while being read, or the process gone
        return False


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.002)


@contextlib.contextmanager
def stopped(process: subprocess.Popen) -> Iterator[None]:
    """`process` held still by SIGSTOP for the length of the block (SIGCONT as it ends)."""
    process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        process.send_signal(signal.SIGCONT)


def unbuffered(database: Path) -> dict[str, str]:
    """The environment for a command whose output is read line by line as it comes."""
    return {**environment(database), "PYTHONUNBUFFERED": "1"}
