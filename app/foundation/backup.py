"""Backups: a consistent copy of the database next to it, written before its first change."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from . import interrupts
from .errors import UpgradeRefused
from .locations import sqlite_uri


def backup_name(path: Path, label: str, *, moment: str | None = None, attempt: int = 1) -> Path:
    """`<file>.backup-<label>-<UTC time>[-N]` (the label: the revision or detected state), next
    to the database: the name the next backup would take, were it reserved now."""
    moment = moment or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return path.with_name(f"{path.name}.backup-{label}-{moment}" + (f"-{attempt}" if attempt > 1 else ""))


def reserve_backup(path: Path, label: str, *, private: bool = False) -> Path:
    """Create the backup's file, empty, under a name no other file has: `backup_name`, else
    the first free `-2`, `-3`, ...

    The file is created exclusively (O_CREAT | O_EXCL), so no other command, choosing a name
    in the same second for the same state (a restore, an upgrade, a stamp), can take it too,
    and `write_backup` only ever replaces this empty file. Called under the database's write
    lock, so that the name is chosen by the command that is about to copy. The file has the
    database's permission bits or narrower; `private` (it will hold plaintext credentials)
    makes it readable by its owner only.
    """
    mode = stat.S_IMODE(path.stat().st_mode) & (0o600 if private else 0o666)
    moment = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    attempt = 1
    while True:
        target = backup_name(path, label, moment=moment, attempt=attempt)
        attempt += 1
        if _partial(target).exists():
            continue  # a killed run's half copy under that name: see remove_leftovers
        try:
            _create_private(target, mode)
        except FileExistsError:
            continue
        return target


def remove_leftovers(path: Path) -> None:
    """Remove what killed runs left (half-written `.partial` copies, empty reservations).
    Called under the write lock, so no other command is writing one of them right now: every
    backup is reserved and written under it."""
    prefix = f"{path.name}.backup-"
    for entry in path.parent.iterdir():
        if not entry.name.startswith(prefix) or entry.is_symlink() or not entry.is_file():
            continue
        if entry.name.endswith(".partial") or entry.stat().st_size == 0:
            entry.unlink(missing_ok=True)


def _journal_room(path: Path) -> int:
    # The rollback journal holds at most the original of every page, plus what the upgrade
    # adds to the file; a copied table at most doubles it. Generous on purpose.
    return path.stat().st_size + (1 << 20)


def require_room(path: Path, *, backup: bool) -> None:
    """Refuse, before any write, when the file system cannot hold the backup and the journal."""
    needed = _journal_room(path) + (path.stat().st_size if backup else 0)
    status = os.statvfs(path.parent)
    free = status.f_bavail * status.f_frsize
    if free < needed:
        what = "a backup and the upgrade's journal" if backup else "the upgrade's journal"
        raise UpgradeRefused(
            f"There is not enough free space next to {path} for {what}: about {_megabytes(needed)} is needed, "
            f"{_megabytes(free)} is free; nothing was changed: free some space and try again."
        )


def _megabytes(size: int) -> str:
    return f"{size / (1 << 20):.1f} MB"


def _create_private(target: Path, mode: int) -> None:
    """Create `target`, empty, exclusively, with exactly `mode`, before a byte of the database
    is in it; FileExistsError if anything already has that name."""
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(descriptor, mode)  # the umask may have narrowed it further, never widened it
    finally:
        os.close(descriptor)


def _copy_failure(returncode: int, errors: bytes, partial: Path) -> OSError:
    """cp's failure as the OSError it stands for, so that the boundary can word it."""
    message = (errors or b"").decode(errors="replace").strip()
    if returncode == -signal.SIGXFSZ or "too large" in message.lower():
        return OSError(errno.EFBIG, "File too large", str(partial))
    if "no space" in message.lower():
        return OSError(errno.ENOSPC, "No space left on device", str(partial))
    if "permission denied" in message.lower():
        return OSError(errno.EACCES, "Permission denied", str(partial))
    return OSError(errno.EIO, message or f"cp exited with {returncode}", str(partial))


def _copy_with(copy_program: str, path: Path, partial: Path) -> None:
    """`cp` into the file `_create_private` made (cp keeps an existing destination's permissions)."""
    process = None
    try:
        with interrupts.interrupts_held():  # a signal inside Popen would lose the child, still copying
            process = subprocess.Popen(
                [copy_program, "--", str(path), str(partial)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        _, errors = process.communicate()
    except BaseException:
        if process is not None:
            # cp must be gone before its file is removed, or an open() it has under way
            # creates the file again after the removal.
            with interrupts.interrupts_held():
                process.kill()
                process.wait()
        raise
    if process.returncode != 0:
        raise _copy_failure(process.returncode, errors, partial)


def write_backup(path: Path, target: Path, *, write_ahead_log: bool = False) -> None:
    """Copy the database into `target`, the file `reserve_backup` created for it.

    The caller holds `target` before a byte is written, so that whatever happens from here
    on (a failure, Ctrl-C, SIGTERM at any instant) it knows which file to discard: see
    `discard_backup`.

    Called while this process holds SQLite's write lock and has written nothing: no other
    process can change the file, so copying it is consistent (SQLite's documented
    lock-then-copy backup) and as fast as `cp`. The copy runs in a child process, because
    POSIX locks belong to a process: closing any descriptor of the database file here
    would silently drop the write lock SQLite holds for us. In WAL mode committed pages
    may still be in the -wal file, so (as where there is no `cp`) the copy goes through
    SQLite's backup API, read by a second connection (the API refuses a source with an
    open write transaction). The copy is written under a temporary name, synced, then
    renamed over the empty reservation: a crash never leaves a half backup that looks whole,
    and any failure or interruption here removes what was written. The copy has the
    reservation's permissions: a 0600 database never gets a world-readable backup.
    """
    partial = _partial(target)
    copy_program = shutil.which("cp")
    try:
        _create_private(partial, stat.S_IMODE(target.stat().st_mode))
        if write_ahead_log or copy_program is None:
            source = sqlite3.connect(sqlite_uri(path, mode="ro"), uri=True)
            copy = sqlite3.connect(sqlite_uri(partial), uri=True)
            try:
                copy.execute("PRAGMA journal_mode = OFF")  # a new file: nothing to roll back to
                source.backup(copy)
            finally:
                copy.close()
                source.close()
        else:
            _copy_with(copy_program, path, partial)
        descriptor = os.open(partial, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(partial, target)  # over this command's own reservation, never another's
    except BaseException:
        with interrupts.interrupts_held():  # a second signal must not cut the clean-up short
            discard_backup(target)  # a signal may land just after the rename, too
        raise


def discard_backup(target: Path) -> None:
    """Remove the backup of a database that was left as it was (the copy would only be
    clutter), whether it was written whole, in part, or not at all."""
    _partial(target).unlink(missing_ok=True)
    target.unlink(missing_ok=True)


def _partial(target: Path) -> Path:
    return target.with_name(target.name + ".partial")
