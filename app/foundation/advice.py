"""The commands a sentence suggests, written so that they run where the sentence is read.

The same work runs behind `starpunk-db` and `flask db`, whose commands take the same
arguments: the interface in use says which program it is (and the database the operator
named on its command line, if any), and every sentence that suggests a command builds it
here, so that the advice can be pasted as it stands.
"""

from __future__ import annotations

import contextlib
import contextvars
import shlex
from collections.abc import Iterator
from dataclasses import dataclass

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
    database = f" {shlex.quote(program.database)}" if program.database else ""
    return f"`{program.name} {arguments}{database}`"


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
