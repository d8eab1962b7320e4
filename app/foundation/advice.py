"""The commands a sentence suggests, written so that they run where the sentence is read.

The same work runs behind `starpunk-db` and `flask db`, whose commands take the same
arguments: the interface in use says which program it is and which database it works on, and
every sentence that suggests a command builds it here, so that the advice can be pasted as it
stands, in another folder or shell than the one that printed it: the database is named by its
absolute path (not by the environment or the folder that found it), as one shell word.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import shlex
from collections.abc import Iterator
from dataclasses import dataclass

from .locations import database_file
from .printable import printable

STARPUNK_DB = "starpunk-db"


@dataclass(frozen=True)
class Program:
    name: str = STARPUNK_DB  # "starpunk-db", or "flask db"
    database: str | None = None  # the database as named on the command line; None: the default one


# A frozen dataclass: the default is never changed, only replaced.
_program: contextvars.ContextVar[Program] = contextvars.ContextVar("program", default=Program())  # noqa: B039


def command(arguments: str) -> str:
    """`starpunk-db ARGUMENTS [DATABASE]`, backticked as the sentences show commands."""
    program = _program.get()
    database = f" {shell_word(program.database)}" if program.database else ""
    return f"`{program.name} {arguments}{database}`"


def shell_word(name: str) -> str:
    """`name` as one word a shell reads back as `name`, on one line: quoted as needed, `./` before
    a leading dash (else it reads as an option), and characters a sentence must not hold
    (newlines, escapes, bytes that are not text) written as bash's $'...' escapes."""
    if name.startswith("-"):
        name = "./" + name
    if printable(name) == name:
        return shlex.quote(name)
    return "$'" + "".join(_ansi_c(character) for character in name) + "'"


def _ansi_c(character: str) -> str:
    if character in "\\'":
        return "\\" + character
    escaped = printable(character)  # \n, \x1b, \u202e, and \xHH for a byte of a name that is not text
    if escaped != character and 0x80 <= ord(character) < 0x100:
        return f"\\u{ord(character):04x}"  # a C1 character, not the lone byte bash writes for \xHH
    return escaped


def named_for_advice(database_url: str) -> str:
    """The database as suggested commands name it: its absolute path, or the URL when it is no
    plain file (such a URL is refused before any advice)."""
    path = database_file(database_url)
    return os.path.abspath(path) if path is not None else database_url


def program_name() -> str:
    return _program.get().name


@contextlib.contextmanager
def advising_as(name: str, database: str | None = None) -> Iterator[None]:
    """Within the block, suggested commands are `name ...`, on `database` when it is named."""
    token = _program.set(Program(name, database))
    try:
        yield
    finally:
        _program.reset(token)
