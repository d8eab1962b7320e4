"""The README's worked example, run as written, in a copy of the project.

Its model edits are applied as shown, its shell commands run one after the other in one
shell (the copy of a real database being a legacy v0.9.5 file, `pytest` being this suite),
and what it says the revision holds is in the revision it generated.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import BIN, NEXT_REVISION, PROJECT, versions
from schema_copies import project_copy, without_layout
from starpunk_history import assert_rows_kept, build, table_rows

# Real processes, several per test: the full suite runs these, `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow

SECTION = re.search(r"^### The worked example\n(.*?)^### ", (PROJECT / "README.md").read_text(), re.MULTILINE | re.DOTALL)
BLOCKS = re.findall(r"^( *)```(\w+)\n(.*?)^\1```", SECTION.group(1) if SECTION else "", re.MULTILINE | re.DOTALL)
# The example names the next revision as it was when written; the tests never pin it.
WRITTEN_AS = re.search(r"--rev-id (\d+)", SECTION.group(1) if SECTION else "")
REAL_DATABASE = "/path/to/starpunk.db"
# What the example adds. Where the models have it already (the example was followed, and
# shipped), its names get the next revision's number, so that they are new again.
ADDED_NAMES = {
    r"\bWebmention\b": "Webmention{n}",
    r"(?<![A-Za-z])webmentions(?![A-Za-z])": "webmentions_{n}",
    r"\bsummary\b": "summary_{n}",
}


def renamed_if_taken(code: str, models: str) -> str:
    for name, new in ADDED_NAMES.items():
        if re.search(name, models):
            code = re.sub(name, new.format(n=NEXT_REVISION), code)
    return code


def blocks(language: str) -> list[str]:
    return [
        "".join(line.removeprefix(indent) for line in code.splitlines(keepends=True))
        for indent, kind, code in BLOCKS
        if kind == language
    ]


def apply_model_edit(models: Path, block: str) -> None:
    """A block with `...` adds its last lines after the one line of it models.py has; any
    other class is new, and goes at the end."""
    text = models.read_text()
    lines = block.splitlines(keepends=True)
    if "    ...\n" not in lines:
        models.write_text(text + "\n\n" + block)
        return
    anchor = max(number for number, line in enumerate(lines) if line in text.splitlines(keepends=True) and line.strip() != "...")
    assert text.count(lines[anchor]) == 1, lines[anchor]
    models.write_text(text.replace(lines[anchor], "".join(lines[anchor:]), 1))


def test_the_worked_example_runs_as_written_and_upgrades_a_real_file_intact(tmp_path):
    assert SECTION and WRITTEN_AS and blocks("sh") and blocks("python"), "the README's worked example has moved"
    project = project_copy(tmp_path, with_app=True)
    real = build(tmp_path / "real.db", "legacy v0.9.5")
    before = table_rows(real)
    models = project / "starpunk_migrations" / "models.py"
    *model_edits, revision_excerpt = (renamed_if_taken(block, models.read_text()) for block in blocks("python"))
    for block in model_edits:
        apply_model_edit(models, block)
    script = (
        "\n".join(blocks("sh"))
        .replace(REAL_DATABASE, str(real))
        .replace(f"--rev-id {WRITTEN_AS.group(1)}", f"--rev-id {NEXT_REVISION}")
    )
    script = "\n".join(line for line in script.splitlines() if line.strip() != "pytest")  # this suite is that step
    environment = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "DATABASE_PATH")}
    environment.update(PYTHONPATH=str(project), PATH=f"{BIN}{os.pathsep}{environment['PATH']}")

    result = subprocess.run(
        ["bash", "-e", "-c", script], cwd=project, env=environment, capture_output=True, text=True, timeout=300
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "No new upgrade operations detected." in result.stdout
    assert versions(project / "copy.db") == [NEXT_REVISION]
    assert_rows_kept(before, table_rows(project / "copy.db"))
    (written,) = (project / "alembic" / "versions").glob(f"{NEXT_REVISION}_*.py")
    for line in revision_excerpt.splitlines():
        if "..." not in line and line.strip() not in ("", ")", "def upgrade() -> None:"):
            assert without_layout(line) in without_layout(written.read_text()), line
