"""Damaged StarPunk files, a few hundred of them: ensure_schema answers each in one sentence or
upgrades it, never hangs, never raises anything else, and leaves a refused file as it was.

The variants are made with a fixed seed from three states (v0.1, legacy v0.9.5, v1.4): bytes
flipped anywhere or in the header, a page zeroed, the file cut short. One worker process runs
ensure_schema on them in turn, reporting each result as a line; the test gives every case a
time limit, so that a hang is caught and named rather than stalling the suite.
"""

from __future__ import annotations

import json
import queue
import random
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from conftest import BIN
from faults import environment, snapshot
from starpunk_history import build

pytestmark = pytest.mark.slow

SEED = 15
BASE_STATES = ("v0.1", "legacy v0.9.5", "v1.4")
VARIANTS_PER_STATE = 100
# Seconds one case may take: far above the slowest upgrade of these small files, and above the
# busy timeout ensure_schema is given, so that only a hang reaches it.
CASE_LIMIT = 20
BUSY_TIMEOUT = 2

WORKER = """
import json, sys, traceback
from pathlib import Path
from starpunk_migrations import UpgradeRefused, ensure_schema

for line in sys.stdin:
    case = Path(line.strip())
    print(json.dumps({"case": str(case), "started": True}), flush=True)
    try:
        outcome = {"result": "done", "revision": ensure_schema(case / "starpunk.db", busy_timeout=float(sys.argv[1]))}
    except UpgradeRefused as refusal:
        outcome = {"result": "refused", "sentence": str(refusal)}
    except BaseException as error:
        outcome = {"result": "raised", "error": repr(error), "traceback": traceback.format_exc()}
    print(json.dumps({"case": str(case), **outcome}), flush=True)
"""


def flip_bytes(data: bytearray, chance: random.Random, *, header: bool = False) -> str:
    end = 100 if header else len(data)
    positions = [chance.randrange(end) for _ in range(chance.randint(1, 8))]
    for position in positions:
        data[position] ^= chance.randint(1, 255)
    return f"flipped {'header ' if header else ''}bytes at {positions}"


def zero_a_page(data: bytearray, chance: random.Random) -> str:
    page_size = int.from_bytes(data[16:18], "big")
    page = chance.randrange(len(data) // page_size)
    data[page * page_size : (page + 1) * page_size] = bytes(page_size)
    return f"zeroed page {page + 1}"


def truncate(data: bytearray, chance: random.Random) -> str:
    page_size = int.from_bytes(data[16:18], "big")
    length = chance.randrange(len(data)) if chance.random() < 0.5 else page_size * chance.randrange(len(data) // page_size)
    del data[length:]
    return f"cut to {length} bytes"


DAMAGE = (
    flip_bytes,
    lambda data, chance: flip_bytes(data, chance, header=True),
    zero_a_page,
    truncate,
)


@dataclass(frozen=True)
class Variant:
    folder: Path
    description: str
    damaged: bool  # SQLite's integrity check does not pass (or cannot even run)

    @property
    def database(self) -> Path:
        return self.folder / "starpunk.db"


def integrity_fails(path: Path) -> bool:
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        try:
            return [row[0] for row in connection.execute("PRAGMA integrity_check")] != ["ok"]
        finally:
            connection.close()
    except (sqlite3.Error, ValueError):  # ValueError: SQLite's message holds bytes that are not UTF-8
        return True


def schema_text_undecodable(path: Path) -> bool:
    """Whether Python cannot read the file's schema as text (its names or SQL are not UTF-8)."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        try:
            connection.execute("SELECT name, sql FROM sqlite_master").fetchall()
        finally:
            connection.close()
    except ValueError:
        return True
    except sqlite3.Error as error:
        return "decode" in str(error)
    return False


def make_variants(folder: Path) -> list[Variant]:
    chance = random.Random(SEED)
    variants = []
    for state in BASE_STATES:
        pristine = bytes(build(folder / "pristine.db", state).read_bytes())
        (folder / "pristine.db").unlink()
        for number in range(VARIANTS_PER_STATE):
            data = bytearray(pristine)
            damage = DAMAGE[number % len(DAMAGE)]
            description = f"{state}: {damage(data, chance)}"
            case = folder / f"{state.replace(' ', '-')}-{number:03}"
            case.mkdir()
            (case / "starpunk.db").write_bytes(bytes(data))
            variants.append(Variant(case, description, integrity_fails(case / "starpunk.db")))
    return variants


@dataclass
class Outcome:
    variant: Variant
    result: str  # "done", "refused", "raised" or "hung"
    detail: str
    before: dict[str, str]
    after: dict[str, str]


def _forward_lines(stream: IO[str], lines: queue.Queue[str]) -> None:
    """The worker's lines, as they come, for a reader that waits for each with a time limit."""
    for line in stream:
        lines.put(line)


def run_worker(variants: list[Variant]) -> list[Outcome]:
    """Run the variants through one worker process; stop at the first case that exceeds its limit."""
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(BUSY_TIMEOUT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment(),
        text=True,
    )
    assert worker.stdin is not None and worker.stdout is not None and worker.stderr is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_forward_lines, args=(worker.stdout, lines), daemon=True).start()
    # Read as it comes too: each upgrade logs its progress there, and a full pipe would stall the worker.
    errors: queue.Queue[str] = queue.Queue()
    reading_errors = threading.Thread(target=_forward_lines, args=(worker.stderr, errors), daemon=True)
    reading_errors.start()
    outcomes = []
    try:
        for variant in variants:
            before = snapshot(variant.folder)
            worker.stdin.write(f"{variant.folder}\n")
            worker.stdin.flush()
            try:
                assert json.loads(lines.get(timeout=CASE_LIMIT)).get("started")
                reported = json.loads(lines.get(timeout=CASE_LIMIT))
            except queue.Empty:
                outcomes.append(Outcome(variant, "hung", f"no answer in {CASE_LIMIT} s", before, snapshot(variant.folder)))
                break
            detail = reported.get("sentence") or reported.get("revision") or reported.get("traceback", "")
            outcomes.append(Outcome(variant, reported["result"], detail, before, snapshot(variant.folder)))
    finally:
        worker.kill()
        worker.wait()
        reading_errors.join(timeout=CASE_LIMIT)
    logged = "".join(errors.queue)
    assert "Traceback" not in logged, logged
    return outcomes


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> Iterator[list[Outcome]]:
    folder = tmp_path_factory.mktemp("fuzzed")
    try:
        yield run_worker(make_variants(folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def described(outcome: Outcome) -> str:
    return f"{outcome.variant.description}: {outcome.result}: {outcome.detail}"


def test_the_variants_are_damaged_in_many_ways(outcomes):
    assert len(outcomes) == len(BASE_STATES) * VARIANTS_PER_STATE or outcomes[-1].result == "hung"
    assert sum(outcome.variant.damaged for outcome in outcomes) > len(outcomes) // 5
    assert {outcome.result for outcome in outcomes} >= {"done", "refused"}


def test_no_case_hangs(outcomes):
    assert [described(outcome) for outcome in outcomes if outcome.result == "hung"] == []


def test_ensure_schema_raises_nothing_but_upgrade_refused(outcomes):
    assert [described(outcome) for outcome in outcomes if outcome.result == "raised"] == []


def test_every_refusal_is_one_sentence_that_names_no_bug(outcomes):
    sentences = [outcome.detail for outcome in outcomes if outcome.result == "refused"]
    assert [sentence for sentence in sentences if "\n" in sentence or "unexpectedly" in sentence] == []


def test_a_refused_file_is_left_as_it_was_with_nothing_beside_it(outcomes):
    changed = [described(outcome) for outcome in outcomes if outcome.result == "refused" and outcome.after != outcome.before]
    assert changed == []


def test_a_damaged_file_is_never_upgraded(outcomes):
    upgraded = [described(outcome) for outcome in outcomes if outcome.result == "done" and outcome.variant.damaged]
    assert upgraded == []


def test_the_command_line_answers_damaged_files_in_one_sentence(tmp_path):
    every = make_variants(tmp_path)
    # The hardest for a command line (SQLite's own words about them are not text), and a sample of the rest.
    variants = [variant for variant in every if schema_text_undecodable(variant.database)] + every[::50]
    assert len(variants) >= 8
    for variant in variants:
        before = snapshot(variant.folder)
        result = subprocess.run(
            [str(BIN / "starpunk-db"), "upgrade", "--busy-timeout", str(BUSY_TIMEOUT), str(variant.database)],
            env=environment(),
            capture_output=True,
            text=True,
            timeout=CASE_LIMIT * 3,
        )
        output = result.stdout + result.stderr
        assert "Traceback" not in output and "unexpectedly" not in output, (variant.description, output)
        if result.returncode != 0:
            assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("starpunk-db: "), output
            assert snapshot(variant.folder) == before, variant.description
