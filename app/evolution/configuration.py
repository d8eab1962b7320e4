"""What env.py adds to `context.configure`: autogenerate's hooks, and the chain's schema for
`--sql` rebuilds."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .autogenerate import autogenerate_options
from .chain import definitions_at
from .rebuild import SCHEMA_AT_OPTION

if TYPE_CHECKING:
    from sqlalchemy import MetaData


def configure_options(metadata: MetaData, script_location: Path) -> dict[str, Any]:
    """Triggers, views and virtual tables compared too; a user's own names left out; table
    changes written as op.rebuild_table, a batch that keeps what SQLite hides; `--sql` rebuilds
    read the schema the chain gives at their revision."""
    return {
        **autogenerate_options(metadata, script_location),
        SCHEMA_AT_OPTION: definitions_at,
        "render_as_batch": True,
        # With the driver in autocommit mode and an explicit BEGIN, SQLite's DDL is transactional.
        "transactional_ddl": True,
        "compare_type": True,
    }
