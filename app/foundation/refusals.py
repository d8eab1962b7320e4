"""The one error boundary: whatever goes wrong becomes one sentence for the operator.

Every entry point (`alembic`, `starpunk-db`, `ensure_schema`) runs its work inside
`boundary()`: SQLite's errors, the operating system's (full disk, file-size limit, permission
denied), Alembic's, a revision failing on the data or on a user's own view, Ctrl-C and SIGTERM
all leave it as `UpgradeRefused`, whose message says what was found and what to do. The
traceback goes to the log (logger `starpunk_migrations.foundation.refusals`, level DEBUG), never to the operator's screen.

The sentences may promise "nothing was changed" because the callers only ever change a
database inside one SQLite transaction, which every failure rolls back. Once that transaction
has committed, the command records what it did (`Attempt.done`), and a failure after it (its
output to a full disk, say) is told as what it is: the change stands.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import UpgradeRefused
from .interrupts import INTERRUPTED, interrupt_received
from .printable import printable

log = logging.getLogger(__name__)


@dataclass
class Attempt:
    """What the boundary needs to word a sentence; the work fills it in as it goes."""

    where: Path | str | None = None  # the database file, or the URL when there is no file
    busy_timeout: float = 0.0
    running: str | None = None  # "revision 003 (Remove code_verifier ...)" while a revision runs
    action: str = "upgrade"
    # A caller that hands in its own connection (a test harness, an application) may raise
    # its own exceptions through Alembic's hooks: those are theirs, and pass through.
    foreign_exceptions_pass: bool = False
    # What the command changed, once its change is committed ("X was upgraded to 009; its
    # backup is ..."): a failure after that point can undo nothing, and must say so.
    done: str | None = None

    @property
    def subject(self) -> str:
        """The database, as the first words of a sentence."""
        return str(self.where) if self.where else "The database"

    @property
    def named(self) -> str:
        """The database, as named within a sentence."""
        return str(self.where) if self.where else "the database"


def _sqlite_error(error: BaseException) -> sqlite3.Error | None:
    original = getattr(error, "orig", error)
    return original if isinstance(original, sqlite3.Error) else None


_USER_OBJECT = re.compile(r"error in (view|trigger|index) (\S+?):? ", re.IGNORECASE)


def sentence(error: BaseException, attempt: Attempt) -> str:
    """One sentence for `error`: what was found and what to do."""
    where = attempt.named
    if isinstance(error, KeyboardInterrupt) or interrupt_received():
        return INTERRUPTED
    if isinstance(error, UpgradeRefused):
        return str(error)
    undecodable = _undecodable_text(error)
    if undecodable is not None:
        return _undecodable_sentence(undecodable, attempt)
    database_error = _sqlite_error(error)
    if database_error is not None:
        return _sqlite_sentence(database_error, attempt)
    if isinstance(error, UnicodeEncodeError):
        return (
            f"A name or path could not be written in this system's encoding ({sys.getfilesystemencoding()}: "
            f"{printable(error.object[error.start : error.end])}); nothing was changed: run with a UTF-8 locale "
            "(e.g. LC_ALL=C.UTF-8) or PYTHONUTF8=1, and try again."
        )
    if isinstance(error, OSError):
        return _os_sentence(error, attempt)
    if type(error).__module__.startswith("alembic"):
        return str(error)
    if isinstance(error, RecursionError | MemoryError):
        return f"The {attempt.action} of {where} ran out of memory; nothing was changed: free some memory and try again."
    first_line = (str(error).strip().splitlines() or [""])[0]
    return (
        f"The {attempt.action} of {where} failed unexpectedly ({type(error).__name__}: {first_line}); "
        "nothing was changed. Please report this as a bug, with the log."
    )


# The copy Alembic's batch mode makes of a table it rebuilds: the operator knows the table.
ALEMBIC_TEMPORARY_TABLE = "_alembic_tmp_"


def _sqlite_sentence(error: sqlite3.Error, attempt: Attempt) -> str:
    where = attempt.subject
    name = getattr(error, "sqlite_errorname", "") or ""
    text = str(error).replace(ALEMBIC_TEMPORARY_TABLE, "")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in text:
        return (
            f"{where} is locked by another program writing to it (perhaps another worker upgrading it), "
            f"still after {attempt.busy_timeout:g} seconds; stop that program or wait for it to finish, then try again."
        )
    if name == "SQLITE_READONLY_ROLLBACK":
        return (
            f"{where} holds the unfinished transaction of a program that crashed (its -journal file), which SQLite "
            "must roll back before reading it, but the file or its folder is read-only; make both writable by the "
            "user running StarPunk and try again."
        )
    if name.startswith("SQLITE_READONLY"):
        return f"{where} cannot be written (read-only file or folder); make both writable by the user running StarPunk and try again."
    if name == "SQLITE_NOTADB":
        return f"{where} is not a SQLite database; check the path, or restore the file from a backup."
    if name.startswith("SQLITE_CORRUPT"):
        return f"{where} is damaged ({text}); restore it from a backup."
    if name.startswith("SQLITE_CANTOPEN"):
        return f"{where} cannot be opened; check that the path and its folder exist and are readable by this user."
    if name.startswith("SQLITE_FULL") or (name.startswith("SQLITE_IOERR_WRITE") and "full" in text):
        return _no_room(attempt)
    if name.startswith(("SQLITE_PERM", "SQLITE_AUTH")):
        return f"{where} cannot be read by this user (permission denied); run as the user that owns StarPunk's data."
    if name.startswith("SQLITE_IOERR"):
        return (
            f"Reading or writing {attempt.named} failed ({text}): the disk is full, a file-size limit (ulimit -f) was "
            "reached, or the disk is failing; nothing was changed: free some space or raise the limit, and try again."
        )
    if text == "unsupported file format":  # the header's format numbers, or its schema's, are none SQLite knows
        return (
            f"{where} is in a file format this SQLite ({sqlite3.sqlite_version}) cannot read: a newer SQLite wrote it, "
            "or its header is damaged; nothing was changed: restore it from a backup."
        )
    if attempt.running:
        return _revision_sentence(error, text, attempt)
    return f"SQLite refused {attempt.named} ({text}); nothing was changed."


def _undecodable_text(error: BaseException) -> str | None:
    """What SQLite said, when its words or a value it read are bytes that are not UTF-8."""
    original = getattr(error, "orig", error)
    if isinstance(original, UnicodeDecodeError) and isinstance(original.object, bytes):
        # Python could not even make SQLite's message a string (it names an object of the file).
        return original.object.decode("utf-8", "backslashreplace")
    if isinstance(original, sqlite3.Error) and str(original).startswith("Could not decode to UTF-8"):
        return str(original)
    return None


def _undecodable_sentence(text: str, attempt: Attempt) -> str:
    if re.search(r"malformed|corrupt|not a database", text):
        return (
            f"{attempt.subject} is damaged ({printable(text)}), and holds text that is not valid UTF-8; restore it from a backup."
        )
    return (
        f"{attempt.subject} holds text that is not valid UTF-8 ({printable(text)}), which StarPunk never writes: the file "
        "is damaged or another program wrote to it; nothing was changed: restore it from a backup, or correct that text."
    )


def _revision_sentence(error: sqlite3.Error, text: str, attempt: Attempt) -> str:
    user_object = _USER_OBJECT.search(text + " ")
    if user_object is not None:
        kind, name = user_object.group(1).lower(), user_object.group(2)
        return (
            f"Your own {kind} {name} stops {attempt.running} ({text}); nothing was changed: "
            f"drop {name} (save its definition from sqlite_master first), run the upgrade, then create it again "
            "to match the new schema."
        )
    if isinstance(error, sqlite3.IntegrityError):
        return (
            f"{attempt.running} failed on the data in {attempt.named} ({text}); nothing was changed: "
            "correct the rows it names (or restore a backup if they are damaged) and run the upgrade again."
        )
    return (
        f"{attempt.running} failed on {attempt.named} ({text}); nothing was changed: if you added your own "
        "objects to StarPunk's tables, drop them and run the upgrade again; otherwise please report this as a bug."
    )


def _os_sentence(error: OSError, attempt: Attempt) -> str:
    where = attempt.subject
    filename = error.filename or where
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return _no_room(attempt)
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"{filename} cannot be read or written by this user (permission denied); run as the user that owns StarPunk's data, or fix its permissions."
    if error.errno == errno.EROFS:
        return f"{filename} is on a read-only file system; remount it read-write, or copy the database elsewhere, and try again."
    return f"{filename}: {error.strerror or error}; nothing was changed."


def _no_room(attempt: Attempt) -> str:
    return (
        f"There was no room to write {attempt.named} or its backup (the disk is full, or a file-size limit was "
        "reached); nothing was changed and nothing was left behind: free some space (or raise the limit) and try again."
    )


def _known(error: BaseException) -> bool:
    return (
        isinstance(error, KeyboardInterrupt | OSError | UnicodeError)
        or _sqlite_error(error) is not None
        or (type(error).__module__.startswith(("alembic", "sqlalchemy")))
    )


@contextlib.contextmanager
def boundary(attempt: Attempt) -> Iterator[Attempt]:
    """Everything raised inside leaves as `UpgradeRefused(one sentence)`; the details go to the log."""
    try:
        yield attempt
    except BrokenPipeError:
        # The reader of our output went away (`starpunk-db history | head`): not the database's doing.
        raise
    except (Exception, KeyboardInterrupt) as error:
        if attempt.done is not None:
            log.debug("%s of %s done, then failed", attempt.action, attempt.subject, exc_info=error)
            raise UpgradeRefused(printable(after_the_change(attempt.done, error))) from error
        if isinstance(error, UpgradeRefused):
            if interrupt_received():
                raise UpgradeRefused(INTERRUPTED) from None
            # One line that cannot act on a terminal or a log, whatever names from the file it quotes.
            error.args = (printable(str(error)),)
            raise
        if attempt.foreign_exceptions_pass and not _known(error):
            raise
        log.debug("%s of %s refused", attempt.action, attempt.named, exc_info=error)
        raise UpgradeRefused(printable(sentence(error, attempt))) from error


def after_the_change(done: str, error: BaseException) -> str:
    """The sentence for a failure once the change is committed: the change stands, and is said."""
    cause = error.__cause__ if isinstance(error, UpgradeRefused) and error.__cause__ is not None else error
    if isinstance(cause, OSError) and cause.strerror:
        detail = cause.strerror
    else:
        detail = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return f"{done}; then what followed failed ({detail}), which undoes none of it."


@contextlib.contextmanager
def refusing_sqlite_errors(path: Path | str | None, busy_timeout: float) -> Iterator[None]:
    """For the commands that only read: whatever goes wrong, as one sentence."""
    with boundary(Attempt(where=path, busy_timeout=busy_timeout, action="reading")):
        yield
