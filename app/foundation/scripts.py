"""The Alembic scripts: their head, read without Alembic, and a configuration for them."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .locations import SCRIPT_LOCATION

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+)$", re.MULTILINE)


@functools.cache
def head_revision(script_location: Path = SCRIPT_LOCATION) -> str:
    """The head of the revision files, found without importing Alembic.

    Reads the `revision = ...` and `down_revision = ...` lines every revision file has
    (Alembic's template writes them that way); the test suite checks the answer against
    Alembic's own.
    """
    parents: dict[str, tuple[str, ...]] = {}
    for path in (script_location / "versions").glob("*.py"):
        fields = {name: ast.literal_eval(value.strip()) for name, value in _ASSIGNMENT.findall(path.read_text(encoding="utf-8"))}
        down = fields.get("down_revision")
        parents[fields["revision"]] = (down,) if isinstance(down, str) else tuple(down or ())
    referenced = {parent for downs in parents.values() for parent in downs}
    heads = sorted(set(parents) - referenced)
    if len(heads) != 1:
        raise RuntimeError(f"expected one head revision in {script_location}, found {heads}")
    return heads[0]


def alembic_config(database_url: str, **attributes: Any) -> Config:
    """An Alembic configuration for this project's scripts, without alembic.ini.

    No ini file means env.py leaves the application's logging alone.
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes.update(database_url=database_url, **attributes)
    return config


def scripts_of(migration_context: MigrationContext) -> ScriptDirectory:
    """The revision scripts a migration runs from; every context env.py configures has them."""
    if migration_context.script is None:
        raise RuntimeError("the migration context was configured without its revision scripts")
    return migration_context.script
