"""Installed like a library: a wheel and an sdist built from a clean copy of the repo,
the wheel installed into a fresh virtualenv, used from a folder that has nothing to do
with the checkout. The repo's alembic/ folder never stands in for the Alembic library."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

from conftest import HEAD, PROJECT, versions
from starpunk_history import assert_rows_kept, build, table_rows

# Real processes, several per test: the full suite runs these, `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow

REVISION_FILES = sorted(path.name for path in (PROJECT / "alembic" / "versions").glob("*.py"))


def _run(*command: str | Path, cwd: Path, pythonpath: str | None = None, **kwargs) -> subprocess.CompletedProcess:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "DATABASE_PATH", "PYTHONPATH", "VIRTUAL_ENV")
    }
    if pythonpath is not None:
        environment["PYTHONPATH"] = pythonpath
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=environment, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """What a fresh clone has: the repo without the venv, build output or caches."""
    copy = tmp_path_factory.mktemp("clone") / "starpunk-migrations"
    shutil.copytree(
        PROJECT,
        copy,
        ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "data"),
    )
    return copy


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory) -> Path:
    location = tmp_path_factory.mktemp("venv") / "venv"
    venv.create(location, with_pip=True)
    return location


@pytest.fixture(scope="module")
def wheel(source, fresh_venv, tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    _run(fresh_venv / "bin" / "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", dist, source, cwd=dist)
    (built,) = dist.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def installed(fresh_venv, wheel) -> Path:
    """The fresh virtualenv with the wheel installed, its dependencies from the package index."""
    _run(fresh_venv / "bin" / "pip", "install", "--quiet", wheel, cwd=wheel.parent)
    return fresh_venv


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    folder = tmp_path / "srv" / "starpunk"
    folder.mkdir(parents=True)
    return folder


def test_the_wheel_carries_env_py_the_revisions_and_the_template_as_starpunk_migrations_migrations(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "starpunk_migrations/migrations/env.py" in names
    assert "starpunk_migrations/migrations/script.py.mako" in names
    versions_folder = "starpunk_migrations/migrations/versions/"
    assert sorted(name.rsplit("/", 1)[1] for name in names if name.startswith(versions_folder)) == REVISION_FILES
    # Nothing but the package and its metadata: never `app` (a host's own app.py or app/) nor `alembic`.
    assert {name.split("/")[0] for name in names} == {"starpunk_migrations", "starpunk_migrations-0.1.0.dist-info"}
    (top_level,) = [name for name in names if name.endswith("top_level.txt")]
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["starpunk_migrations"]


def test_the_sdist_carries_the_repo_layout_and_builds_the_same_wheel(source, fresh_venv, wheel, tmp_path):
    _run(fresh_venv / "bin" / "pip", "install", "--quiet", "setuptools>=68", cwd=tmp_path)
    dist = tmp_path / "dist"
    _run(
        fresh_venv / "bin" / "python",
        "-c",
        f"from setuptools import build_meta; build_meta.build_sdist({str(dist)!r})",
        cwd=source,
    )
    (sdist,) = dist.glob("*.tar.gz")
    root = sdist.name.removesuffix(".tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.removeprefix(root + "/") for name in archive.getnames()}
    assert {"alembic.ini", "alembic/env.py", "alembic/script.py.mako", "app/start_up.py", "tests/conftest.py"} <= names
    assert {f"alembic/versions/{name}" for name in REVISION_FILES} <= names

    _run(fresh_venv / "bin" / "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", dist, sdist, cwd=tmp_path)
    (from_sdist,) = dist.glob("*.whl")
    assert sorted(zipfile.ZipFile(from_sdist).namelist()) == sorted(zipfile.ZipFile(wheel).namelist())


def test_starpunk_db_from_the_wheel_adopts_and_upgrades_a_legacy_file_from_another_folder(installed, elsewhere):
    database = build(elsewhere / "starpunk.db", "legacy v0.9.5")
    before = table_rows(database)

    status = _run(installed / "bin" / "starpunk-db", "status", "starpunk.db", cwd=elsewhere)
    assert "State:     v0.8 / legacy v0.9.x (not yet managed by Alembic" in status.stdout
    upgrade = _run(installed / "bin" / "starpunk-db", "upgrade", "starpunk.db", cwd=elsewhere)

    assert f"is at revision {HEAD}" in upgrade.stdout
    assert versions(database) == [HEAD]
    assert_rows_kept(before, table_rows(database))
    assert len(list(elsewhere.glob("starpunk.db.backup-*"))) == 1
    assert not (elsewhere / "data").exists()


@pytest.mark.parametrize("host_layout", ["app.py", "app/__init__.py"])
def test_a_host_with_its_own_app_module_imports_the_start_up_api_and_runs_starpunk_db(installed, elsewhere, host_layout):
    # The most common Flask layouts: the host's own `app` comes first on sys.path (its folder,
    # PYTHONPATH=. in a container), and nothing of ours is named `app`.
    host = elsewhere / host_layout
    host.parent.mkdir(parents=True, exist_ok=True)
    host.write_text("from starpunk_migrations import UpgradeRefused, ensure_schema\nHOST = 'the host app'\n")
    database = build(elsewhere / "starpunk.db", "v1.3")
    program = f"import app\nprint(app.HOST, app.ensure_schema({str(database)!r}))\n"

    started = _run(installed / "bin" / "python", "-c", program, cwd=elsewhere, pythonpath=".")
    status = _run(installed / "bin" / "starpunk-db", "status", "starpunk.db", cwd=elsewhere, pythonpath=".")

    assert started.stdout.strip() == f"the host app {HEAD}"
    assert "Pending:   0 revision(s) (up to date)" in status.stdout


def test_ensure_schema_from_the_wheel_uses_the_installed_scripts(installed, elsewhere):
    database = build(elsewhere / "starpunk.db", "v1.4")
    before = table_rows(database)
    program = (
        "import starpunk_migrations\nfrom starpunk_migrations.foundation.locations import SCRIPT_LOCATION\n"
        f"print(starpunk_migrations.ensure_schema('sqlite:///{database}'))\n"
        "print(SCRIPT_LOCATION)\n"
    )
    revision, scripts = _run(installed / "bin" / "python", "-c", program, cwd=elsewhere).stdout.split()

    assert revision == HEAD and versions(database) == [HEAD]
    assert Path(scripts).is_relative_to(installed) and Path(scripts).name == "migrations"
    assert_rows_kept(before, table_rows(database))


def test_the_installed_alembic_is_the_library(installed, elsewhere):
    found = _run(installed / "bin" / "python", "-c", "import alembic.command; print(alembic.__file__)", cwd=elsewhere).stdout
    assert Path(found.strip()).is_relative_to(installed)


def test_import_alembic_from_the_repo_root_gets_the_library():
    # `python -c` puts the working folder first on sys.path, as pytest does with the repo root.
    found = subprocess.run(
        [sys.executable, "-c", "import alembic.command; print(alembic.__file__)"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert not Path(found).is_relative_to(PROJECT / "alembic")
    assert Path(found).parent.name == "alembic" and Path(found).parent.parent.name == "site-packages"
    import alembic

    assert not Path(alembic.__file__).is_relative_to(PROJECT / "alembic")
