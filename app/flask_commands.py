"""`flask db`: every `starpunk-db` command, on the Flask application's database.

Registered through Flask's `flask.commands` entry point (as Flask-Migrate registers its own),
so installing the package is enough. Each command hands its arguments, untouched, to the
command line of `starpunk-db` (starpunk_migrations.cli): the same options, the same output,
the same refusals, under the name `flask db`, with the application's configured database
as the default (starpunk_migrations.flask). `flask db COMMAND --help` is that command line's
help.
"""

from __future__ import annotations

import os
import re
import shlex

import click
from click.core import ParameterSource
from flask import current_app
from flask.cli import ScriptInfo, with_appcontext

from .cli import main as cli
from .cli.arguments import SUMMARIES
from .flask import EXTENSION, StarPunkDatabase
from .foundation.advice import shell_word

FLASK_DB = "flask db"
# What `flask db COMMAND --help` says the database is when the command line names none.
FROM_THE_APP = (
    "the application's DATABASE_URL, else its DATABASE_PATH (app.config), else $DATABASE_URL, else "
    "$DATABASE_PATH, else data/starpunk.db in the current folder"
)


@click.group(help="StarPunk's database: what it is, and every change to it (starpunk-db's commands).")
def db() -> None:
    pass


def _forwarding(name: str) -> None:
    summary = SUMMARIES[name]

    @db.command(
        name,
        help=f"{summary[0].upper()}{summary[1:]}; `flask db {name} --help` shows its options.",
        short_help=summary,
        # Everything after the name, --help included, is starpunk-db's to parse.
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
        add_help_option=False,
    )
    @click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
    @with_appcontext
    def command(arguments: tuple[str, ...]) -> None:
        database = current_app.extensions.get(EXTENSION)
        if not isinstance(database, StarPunkDatabase):
            raise click.ClickException(
                f"The application {current_app.name} does not use StarPunk's database: call "
                "starpunk_migrations.flask.init_app(app) in its create_app(), after loading its configuration."
            )
        status = cli.main(
            [name, *arguments],
            program=_as_run(),
            advised_program=_from_anywhere(),
            default_database=database.url,
            database_default=FROM_THE_APP,
        )
        click.get_current_context().exit(status)


def _as_run() -> str:
    """`flask db` as the operator ran it (with the `--app` given on the command line): the name
    its usage lines and refusals go by."""
    root = click.get_current_context().find_root()
    info = root.find_object(ScriptInfo)
    if info is not None and info.app_import_path and root.get_parameter_source("app") == ParameterSource.COMMANDLINE:
        return f"flask --app {shlex.quote(info.app_import_path)} db"
    return FLASK_DB


def _from_anywhere() -> str:
    """`flask --app APP db` as suggested commands spell it: APP is where this app was found (the
    --app given, FLASK_APP, or the wsgi.py / app.py Flask found here), made absolute, so that the
    command finds the app from another folder or shell. Flask reads a path in --app as a module
    to import from that folder, and keeps what follows the colon (`:create_app()`)."""
    info = click.get_current_context().find_root().find_object(ScriptInfo)
    found = info.app_import_path if info is not None else None
    if not found:  # Flask's own search: the module wsgi, then app, in the current folder
        found = next((name for name in ("wsgi", "app") if os.path.exists(f"{name}.py") or os.path.isdir(name)), None)
        if found is None:
            return FLASK_DB
    module, *factory = re.split(r":(?![\\/])", found, maxsplit=1)  # as Flask splits it
    return f"flask --app {shell_word(':'.join([os.path.abspath(module), *factory]))} db"


for _name in SUMMARIES:
    _forwarding(_name)
