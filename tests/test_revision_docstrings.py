"""Every revision tells operators what it does: a docstring that still holds the template's
placeholders (alembic/script.py.mako's `<...>`) would reach `starpunk-db downgrade` as
"cannot bring back: <what is lost on the way down ...>", so it is refused here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conftest import PROJECT

TEMPLATE = PROJECT / "alembic" / "script.py.mako"
PLACEHOLDERS = re.findall(r"<[^<>\n]+>", TEMPLATE.read_text())
REVISIONS = sorted((PROJECT / "alembic" / "versions").glob("*.py"))


def placeholders_left(docstring: str) -> list[str]:
    return [placeholder for placeholder in PLACEHOLDERS if placeholder in docstring]


def test_the_templates_placeholders_are_recognised():
    assert len(PLACEHOLDERS) == 3
    assert placeholders_left(TEMPLATE.read_text()) == PLACEHOLDERS


@pytest.mark.parametrize("revision", REVISIONS, ids=[path.name for path in REVISIONS])
def test_a_revision_has_its_docstring_filled_in(revision: Path):
    docstring = ast.get_docstring(ast.parse(revision.read_text())) or ""

    assert docstring.strip(), f"{revision.name} has no docstring: say what it does, to existing rows, and on the way down"
    left = placeholders_left(docstring)
    assert not left, f"{revision.name} still holds the template's {', '.join(left)}: fill in its docstring"
