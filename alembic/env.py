"""Alembic environment for StarPunk's SQLite database.

The database comes from DATABASE_URL, else StarPunk's DATABASE_PATH, else
sqlite:///data/starpunk.db; a caller may hand in `config.attributes["connection"]` (a
Connection or an Engine) or `config.attributes["database_url"]` instead.

Online, `starpunk_migrations.commands.upgrade.run_online` does the work in one SQLite transaction: it recognises a
StarPunk file Alembic has never seen (legacy v0.9.x, rc.1, the rc.2 hybrid, ...), backs it
up, repairs and stamps it, then runs the revisions. Bad input is refused with one sentence.
"""

from logging.config import fileConfig
from pathlib import Path
from typing import Any, cast

from alembic import context
from alembic.runtime.environment import EnvironmentContext
from alembic.util import CommandError

from starpunk_migrations import UpgradeRefused, models
from starpunk_migrations.commands.upgrade import run_online
from starpunk_migrations.evolution.configuration import configure_options
from starpunk_migrations.foundation.locations import resolve_database_url

config = context.config

# Only the `alembic` command line configures logging; an application calling Alembic
# keeps its own (its Config has no file name), and existing loggers are never disabled.
if config.config_file_name is not None and config.cmd_opts is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def configure(**arguments: Any) -> None:
    metadata = config.attributes.get("target_metadata") or models.Base.metadata
    context.configure(target_metadata=metadata, **configure_options(metadata, Path(context.script.dir)), **arguments)


def run_migrations_offline() -> None:
    """`--sql`: print the SQL instead of running it."""
    configure(
        # Only the dialect matters here; nothing is read or created (no data/ folder either).
        url=config.attributes.get("database_url") or resolve_database_url(create_folder=False),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    # `starpunk-db upgrade --sql` of an unmanaged file: its adoption (repairs, stamp) first, and the
    # rows adopted tables get back last, in the transaction they run in; printed as they are written.
    output = context.get_context().impl.static_output
    # As online: a table rebuild drops the table, which with foreign keys on deletes the rows that
    # cascade from it (note_tags, note_media). The pragma does nothing inside a transaction.
    output("PRAGMA foreign_keys = OFF;")
    with context.begin_transaction():
        for statement in config.attributes.get("statements_first", ()):
            output(statement.strip() + ";")
        context.run_migrations()
        for statement in config.attributes.get("statements_last", ()):
            output(statement.strip() + ";")


def run_migrations_online() -> None:
    run_online(cast(EnvironmentContext, context), configure)  # the module proxies the running context


try:
    if context.is_offline_mode():
        run_migrations_offline()
    else:
        run_migrations_online()
except UpgradeRefused as refusal:
    if config.cmd_opts is None:
        raise
    # The alembic command line prints a CommandError as one line and exits 1.
    raise CommandError(str(refusal)) from None
