"""Speed figures of issue 5, each as a ratio against a baseline measured in the same run.

    python benchmarks/run.py            # prints a Markdown table (about twenty seconds)

1. `ensure_schema` on a database at head, in-process after the first call, against a raw
   sqlite3 connect + SELECT version_num (goal: at most 3x).
2. Legacy v0.9.5 to head without backup, 200,000 notes against 1,000 (goal: at most 1.5x).
   Each upgrade runs in a fresh process; imports are excluded, and so is the page check
   (row 5), which reads the whole file; everything else counts.
3. The backup against `cp` of the same file (goal: at most 1.5x).
4. Detection on a file Alembic has never seen, 200,000 notes against 1,000 (goal: equal),
   and its first call in a process (deriving the expected schemas from the revisions
   included; Alembic's import, which every upgrade pays to run revisions, excluded and
   shown on its own row) under 100 ms.
5. The check of every page an upgrade that writes runs first (SQLite's quick_check): legacy
   v0.9.5 to head without backup on a file of 1,000,000 notes, against the same upgrade
   with the check left out (goal: at most 5x).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT / "tests"))

from starpunk_migrations import ensure_schema  # noqa: E402
from starpunk_migrations.commands.upgrade import upgrade_database  # noqa: E402

from starpunk_history import build  # noqa: E402  (the test suite's builder of StarPunk states)


def median_seconds(action, repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def legacy_file(path: Path, notes: int) -> Path:
    build(path, "legacy v0.9.5", rows=False)
    db = sqlite3.connect(path)
    db.executemany(
        "INSERT INTO notes (slug, file_path, published, content_hash) VALUES (?, ?, 1, ?)",
        ((f"note-{i}", f"notes/2024/{i}.md", f"{i:064x}") for i in range(notes)),
    )
    db.commit()
    db.close()
    return path


IN_FRESH_PROCESS = """
import json, sys, time
import sqlalchemy
import alembic.operations, alembic.script  # imported by every upgrade anyway; timed apart
from starpunk_migrations.commands.upgrade import upgrade_database
from starpunk_migrations.adoption.detection import detect_state
url = sys.argv[2]
if sys.argv[1] == "upgrade without the page check":
    import starpunk_migrations.commands.upgrade as upgrade
    upgrade.refuse_damaged = lambda connection, path: None
if sys.argv[1].startswith("upgrade"):
    started = time.perf_counter()
    upgrade_database(url, "head", backup=False)
    print(json.dumps({"seconds": time.perf_counter() - started}))
else:
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as connection:
        started = time.perf_counter()
        detect_state(connection)
        first = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(100):
            detect_state(connection)
        print(json.dumps({"first": first, "seconds": (time.perf_counter() - started) / 100}))
"""


def million_notes(path: Path) -> Path:
    """A legacy file of 1,000,000 notes (about 270 MB), written by SQLite itself in seconds."""
    build(path, "legacy v0.9.5", rows=False)
    db = sqlite3.connect(path)
    db.execute(
        "WITH RECURSIVE counter(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM counter WHERE i < 1000000) "
        "INSERT INTO notes (slug, file_path, published, content_hash) "
        "SELECT 'note-' || i, 'notes/2024/' || i || '.md', 1, printf('%064x', i) FROM counter"
    )
    db.commit()
    db.close()
    return path


def upgraded_copy_seconds(what: str, template: Path, copy: Path) -> float:
    """One upgrade of a fresh copy of `template`, in a fresh process."""
    shutil.copy(template, copy)
    # Flush the fresh copy first: otherwise the upgrade's commit (fsync) would also write out
    # the copy's dirty pages, which a real site's file has not.
    flushed = os.open(copy, os.O_RDONLY)
    os.fsync(flushed)
    os.close(flushed)
    return in_fresh_process(what, copy)["seconds"]


def in_fresh_process(what: str, database: Path) -> dict:
    output = subprocess.run(
        [sys.executable, "-c", IN_FRESH_PROCESS, what, f"sqlite:///{database}"],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT,
    ).stdout
    return json.loads(output)


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)

        at_head = folder / "head.db"
        upgrade_database(f"sqlite:///{at_head}", "head", backup=False)
        url = f"sqlite:///{at_head}"
        ensure_schema(url)

        def raw_read():
            connection = sqlite3.connect(at_head)
            connection.execute("SELECT version_num FROM alembic_version").fetchall()
            connection.close()

        raw = median_seconds(raw_read, 3000)
        ensured = median_seconds(lambda: ensure_schema(url), 3000)
        rows.append(
            (
                "ensure_schema at head vs raw connect + SELECT",
                f"{ensured * 1e6:.0f} µs",
                f"{raw * 1e6:.0f} µs",
                ensured / raw,
                "≤ 3",
            )
        )

        small, large = legacy_file(folder / "small.db", 1_000), legacy_file(folder / "large.db", 200_000)
        upgrades = {}
        for name, template in (("small", small), ("large", large)):
            # The revisions alone: the page check before them reads the whole file, and has a row of its own.
            timings = [
                upgraded_copy_seconds("upgrade without the page check", template, folder / f"{name}-{attempt}.db")
                for attempt in range(3)
            ]
            upgrades[name] = statistics.median(timings)
        rows.append(
            (
                "v0.9.5 → head, 200,000 notes vs 1,000",
                f"{upgrades['large'] * 1000:.0f} ms",
                f"{upgrades['small'] * 1000:.0f} ms",
                upgrades["large"] / upgrades["small"],
                "≤ 1.5",
            )
        )

        from starpunk_migrations.foundation.backup import reserve_backup, write_backup

        big = folder / "large-2.db"
        size = big.stat().st_size

        def backup():
            target = reserve_backup(big, "benchmark")
            write_backup(big, target)
            target.unlink()

        def copy_with_cp():
            subprocess.run(["cp", str(big), str(folder / "cp-copy.db")], check=True)

        backed_up = median_seconds(backup, 5)
        copied = median_seconds(copy_with_cp, 5)
        rows.append(
            (
                f"backup vs cp ({size / 2**20:.0f} MiB)",
                f"{backed_up * 1000:.0f} ms",
                f"{copied * 1000:.0f} ms",
                backed_up / copied,
                "≤ 1.5",
            )
        )

        detection = {name: in_fresh_process("detect", path) for name, path in (("small", small), ("large", large))}

        rows.append(
            (
                "detection, 200,000 notes vs 1,000",
                f"{detection['large']['seconds'] * 1000:.2f} ms",
                f"{detection['small']['seconds'] * 1000:.2f} ms",
                detection["large"]["seconds"] / detection["small"]["seconds"],
                "≈ 1",
            )
        )
        rows.append(
            (
                "detection, first call in a process (200,000 notes)",
                f"{detection['large']['first'] * 1000:.0f} ms",
                "100 ms",
                detection["large"]["first"] / 0.1,
                "< 1",
            )
        )
        huge, copy = million_notes(folder / "million.db"), folder / "million-copy.db"
        medians = {}
        for what in ("upgrade", "upgrade without the page check"):
            medians[what] = statistics.median(upgraded_copy_seconds(what, huge, copy) for _ in range(3))
            copy.unlink()
        checked, unchecked = medians["upgrade"], medians["upgrade without the page check"]
        rows.append(
            (
                "v0.9.5 → head, 1,000,000 notes: page check (quick_check) vs none",
                f"{checked * 1000:.0f} ms",
                f"{unchecked * 1000:.0f} ms",
                checked / unchecked,
                "≤ 5",
            )
        )
        huge.unlink()

        imported = subprocess.run(
            [
                sys.executable,
                "-c",
                "import time, sqlalchemy; t = time.perf_counter(); import alembic.operations, alembic.script; "
                "print(time.perf_counter() - t)",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rows.append(
            ("(for context) importing Alembic, once per process", f"{float(imported) * 1000:.0f} ms", "-", float("nan"), "-")
        )

    print("| measure | measured | baseline | ratio | goal |")
    print("| --- | --- | --- | --- | --- |")
    for measure, measured, baseline, ratio, goal in rows:
        print(f"| {measure} | {measured} | {baseline} | {'-' if ratio != ratio else f'{ratio:.2f}'} | {goal} |")


if __name__ == "__main__":
    main()
