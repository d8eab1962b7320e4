"""StarPunk's database in its Flask application: `init_app(app)`, in Flask-Migrate's shape.

StarPunk calls `init_app(app)` in `create_app()`, once its configuration is loaded. The
database is `app.config["DATABASE_URL"]`, else `app.config["DATABASE_PATH"]`, else the
environment's (DATABASE_URL, DATABASE_PATH), else data/starpunk.db.

An application is created for one of two reasons. To serve (a gunicorn worker, `flask run`,
any program calling `create_app()`): then `init_app` brings the database to head as
`ensure_schema` does (of several workers one migrates, the others wait). Or for a command
of the flask command line (`flask db status`, `flask routes`, `flask shell`, ...): then it
leaves the database alone, so that the command does what it says (`flask db status` can
show pending work; `flask db downgrade` is not preceded by an upgrade).

`flask db` itself is in starpunk_migrations.flask_commands. Only these two modules import
Flask, which is the optional extra `starpunk-migrations[flask]`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click
from flask import Flask
from flask.cli import ScriptInfo

from .foundation.locations import DEFAULT_BUSY_TIMEOUT, resolve_database_url, sqlite_url
from .start_up import ensure_schema

EXTENSION = "starpunk_migrations"  # the key in app.extensions


def database_url(config: Mapping[str, Any], *, create_folder: bool = True) -> str:
    """The application's database: its DATABASE_URL, else its DATABASE_PATH, else the environment's."""
    if config.get("DATABASE_URL"):
        return str(config["DATABASE_URL"])
    if config.get("DATABASE_PATH"):
        return sqlite_url(os.fspath(config["DATABASE_PATH"]))
    return resolve_database_url(create_folder=create_folder)


@dataclass(frozen=True)
class StarPunkDatabase:
    """What `init_app` records in `app.extensions["starpunk_migrations"]`."""

    app: Flask

    def url(self, create_folder: bool = True) -> str:
        """Read from the configuration when asked, so that a command sees the configuration it runs with."""
        return database_url(self.app.config, create_folder=create_folder)


def init_app(app: Flask, *, backup: bool = True, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
    """Register StarPunk's database with `app`; when the app is created to serve, bring the
    database to head first (raising `UpgradeRefused`, the file untouched, when that cannot be
    done safely: the application should not start). Its progress goes to the log."""
    database = StarPunkDatabase(app)
    app.extensions[EXTENSION] = database
    if created_for_a_command():
        return
    # A serving process cannot know how its operator runs `flask` (which --app): a refusal's
    # advice is a `starpunk-db` command naming the database, which runs wherever the package is installed.
    ensure_schema(database.url(), backup=backup, busy_timeout=busy_timeout)


def created_for_a_command() -> bool:
    """Whether the flask command line is creating the app for a command other than `flask run`."""
    context = click.get_current_context(silent=True)
    if context is None or context.find_object(ScriptInfo) is None:
        return False  # gunicorn, uwsgi, a test, a script: created to serve
    return context.command.name != "run"
