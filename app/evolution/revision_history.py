"""The revision history as an operator reads it: each revision, the StarPunk release it
belongs to, what it does, and what its downgrade cannot bring back.

All of it comes from the revision files' docstrings (first line: "StarPunk migration NNN
(vX.Y.Z): what it does"; a paragraph "Downgrade cannot bring back: ..."), so a new revision
needs no new code here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..foundation.locations import SCRIPT_LOCATION

_RELEASE = re.compile(r"\bv\d+\.\d+\.\d+(?:-[A-Za-z0-9.]+?)?(?=[):\s]|$)")
_TITLE_PREFIX = re.compile(r"^StarPunk (?:migration \w+ \([^)]*\)|v\d+\.\d+\.\d+\S*)\s*:?\s*")
_LOSS = re.compile(r"^Downgrade cannot bring back:\s*(.*?)(?:\n\s*\n|\n(?=[A-Z][\w ]*:)|\Z)", re.MULTILINE | re.DOTALL)


# A revision whose docstring names no StarPunk release: a schema change not yet shipped.
UNRELEASED = "unreleased"


@dataclass(frozen=True)
class RevisionEntry:
    revision: str
    down_revision: str | None
    release: str  # the StarPunk release that brought this change, e.g. "v1.4.0"
    summary: str  # what it does, in a few words
    downgrade_loses: str  # what going below it cannot bring back; "" if nothing is said

    @property
    def loses_data(self) -> bool:
        return bool(self.downgrade_loses) and not self.downgrade_loses.lower().startswith("nothing")


def describe(revision: str, down_revision: str | None, docstring: str | None) -> RevisionEntry:
    text = (docstring or "").strip()
    title = text.splitlines()[0].strip() if text else ""
    release = _RELEASE.search(title)
    loss = _LOSS.search(text)
    return RevisionEntry(
        revision=revision,
        down_revision=down_revision,
        release=release.group(0) if release else UNRELEASED,
        summary=_TITLE_PREFIX.sub("", title),
        downgrade_loses=" ".join(loss.group(1).split()) if loss else "",
    )


def revision_history(script_location: Path = SCRIPT_LOCATION) -> list[RevisionEntry]:
    """Every revision, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(script_location))
    return [
        describe(entry.revision, entry.down_revision if isinstance(entry.down_revision, str) else None, entry.longdoc)
        for entry in reversed(list(script.walk_revisions()))
    ]
