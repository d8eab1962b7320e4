"""Backups: a consistent copy of the database next to it, written before its first change."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.adoption import DatabaseState


def backup_path(path: Path, state: DatabaseState) -> Path:
    """`<file>.backup-<revision or detected state>-<UTC time>`, next to the database; never
    the name of an existing file."""
    moment = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.backup-{state.label}-{moment}")
    attempt = 1
    while target.exists():
        attempt += 1
        target = path.with_name(f"{path.name}.backup-{state.label}-{moment}-{attempt}")
    return target


def write_backup(path: Path, state: DatabaseState, *, write_ahead_log: bool = False) -> Path:
    """Copy the database next to itself and return the copy's path.

    Called while this process holds SQLite's write lock and has written nothing: no other
    process can change the file, so copying it is consistent (SQLite's documented
    lock-then-copy backup) and as fast as `cp`. The copy runs in a child process, because
    POSIX locks belong to a process: closing any descriptor of the database file here
    would silently drop the write lock SQLite holds for us. In WAL mode committed pages
    may still be in the -wal file, so (as where there is no `cp`) the copy goes through
    SQLite's backup API, read by a second connection (the API refuses a source with an
    open write transaction). The copy is written under a temporary name, synced, then
    renamed: a crash never leaves a half backup that looks whole.
    """
    target = backup_path(path, state)
    partial = target.with_name(target.name + ".partial")
    copy_program = shutil.which("cp")
    if write_ahead_log or copy_program is None:
        source = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
        copy = sqlite3.connect(partial)
        try:
            copy.execute("PRAGMA journal_mode = OFF")  # a new file: nothing to roll back to
            source.backup(copy)
        finally:
            copy.close()
            source.close()
    else:
        subprocess.run([copy_program, "--", str(path), str(partial)], check=True, capture_output=True)
    descriptor = os.open(partial, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(partial, target)
    return target
