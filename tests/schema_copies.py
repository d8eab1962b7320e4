"""Helpers for the schema-evolution tests: copies of the scripts to add revisions to, and a
picture of what SQLite hides in a file (triggers, views, virtual tables, table traits,
index definitions, sequences), to compare before and after a change."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.config import Config

from starpunk_migrations.models import Base
from starpunk_migrations.schema.shadow_tables import shadow_table_keys
from starpunk_migrations.schema.sql_names import name_key
from starpunk_migrations.schema.sqlite_objects import TableTraits, normalized_sql

from conftest import BIN, PROJECT


def project_copy(tmp_path: Path, *, with_app: bool = False) -> Path:
    """alembic.ini and alembic/ (and app/ as starpunk_migrations/, to edit the models) in a folder of their own."""
    copy = tmp_path / "project"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(PROJECT / "alembic", copy / "alembic", ignore=ignore)
    shutil.copy(PROJECT / "alembic.ini", copy / "alembic.ini")
    if with_app:
        shutil.copytree(PROJECT / "app", copy / "starpunk_migrations", ignore=ignore)
    return copy


REVISION = '''"""{message}

Revision ID: {revision}
Revises: {down_revision}
"""
from alembic import op
import sqlalchemy as sa

revision = "{revision}"
down_revision = "{down_revision}"
branch_labels = None
depends_on = None


def upgrade():
{upgrade}


def downgrade():
    pass
'''


def run_in_copy(project: Path, program: str, *arguments: str, database: Path) -> subprocess.CompletedProcess:
    """`alembic` or `starpunk-db` in the copy, importing the copy's (edited) models."""
    environment = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "DATABASE_PATH")}
    environment.update(PYTHONPATH=str(project), DATABASE_PATH=str(database))
    return subprocess.run([str(BIN / program), *arguments], cwd=project, env=environment, capture_output=True, text=True)


def add_revision(project: Path, revision: str, down_revision: str, upgrade: str, message: str = "a change") -> None:
    """A hand-written revision file in the copy: `upgrade` is the body of upgrade()."""
    body = "\n".join("    " + line for line in upgrade.strip().splitlines())
    text = REVISION.format(message=message, revision=revision, down_revision=down_revision, upgrade=body)
    (project / "alembic" / "versions" / f"{revision}_change.py").write_text(text)


def populated_head(folder: Path) -> Path:
    """`folder/starpunk.db` brought to head by this project's chain, with rows in every table."""
    from starpunk_migrations.commands.upgrade import upgrade_database

    from starpunk_history import fill

    database = folder / "starpunk.db"
    upgrade_database(f"sqlite:///{database}", "head", backup=False)
    db = sqlite3.connect(database)
    fill(db)
    db.close()
    return database


def with_columns(models: str, columns: dict[str, str]) -> str:
    """models.py with each table's new column (`table -> its mapped_column line`) declared in its
    class, anchored on the class's `__tablename__`, which a later revision leaves unless it drops
    the table; skipped where a revision since did."""
    for table, declaration in columns.items():
        anchor = f'    __tablename__ = "{table}"\n'
        if models.count(anchor) != 1:
            pytest.skip(f"the models no longer have the table {table}")
        models = models.replace(anchor, anchor + declaration)
    return models


def without_layout(code: str) -> str:
    """Code with no whitespace at all: generated revisions are formatted by ruff (alembic.ini's
    post_write_hooks), whose line breaks depend on the line length it finds configured."""
    return re.sub(r"\s+", "", code)


def project_config(project: Path, database: Path, **attributes: Any) -> Config:
    config = Config(str(project / "alembic.ini"))
    config.attributes.update(database_url=f"sqlite:///{database}", backup=False, **attributes)
    return config


def models_copy() -> sa.MetaData:
    """The models' metadata, tables and declared objects, to change in a test."""
    changed = sa.MetaData(info=dict(Base.metadata.info))
    for table in Base.metadata.sorted_tables:
        table.to_metadata(changed)
    return changed


def hidden_schema(path: Path) -> dict[str, Any]:
    """What reflection does not see, comparable with ==."""
    db = sqlite3.connect(path)
    try:
        master = db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall()
        has_sequence = any(name == "sqlite_sequence" for _, name, _, _ in master)
        shadows = shadow_table_keys((name, sql) for kind, name, _, sql in master if kind == "table")
        return {
            "objects": {
                name: normalized_sql(sql)
                for kind, name, _, sql in master
                if kind in ("trigger", "view") or sql.upper().startswith("CREATE VIRTUAL")
            },
            "traits": {
                name: TableTraits.of(sql)
                for kind, name, _, sql in master
                if kind == "table"
                and not name.startswith("sqlite_")
                and not sql.upper().startswith("CREATE VIRTUAL")
                and name_key(name) not in shadows
            },
            "indexes": {name: normalized_sql(sql) for kind, name, _, sql in master if kind == "index"},
            # A sequence of 0 is no sequence (the next id is 1 either way): a rebuild of an empty table may write one.
            "sequence": dict(db.execute("SELECT name, seq FROM sqlite_sequence WHERE seq > 0").fetchall())
            if has_sequence
            else {},
        }
    finally:
        db.close()


def execute(path: Path, *statements: str, foreign_keys: bool = True) -> list[tuple]:
    """Run statements the way StarPunk does (foreign keys on); the last one's rows."""
    db = sqlite3.connect(path)
    try:
        db.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
        rows: list[tuple] = []
        for statement in statements:
            rows = db.execute(statement).fetchall()
        db.commit()
        return rows
    finally:
        db.close()
