"""Ctrl-C and SIGTERM (a container stopping) as exceptions the error boundary can answer.

Inside `interrupts_as_exceptions()` both raise KeyboardInterrupt, so the transaction is
rolled back and "Interrupted; nothing was changed" is said. What must not stop half-way
runs under `interrupts_held()`; once a change is committed, `change_committed()` makes
later signals harmless, since nothing is left to undo.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

INTERRUPTED = "Interrupted; nothing was changed (the database is as it was)."


class _InterruptState(threading.local):
    depth = 0
    received: int | None = None  # a signal arrived: the boundary answers "Interrupted"
    held = False
    pending: int | None = None  # arrived while held, to be raised once the hold ends
    committed = False  # the change is committed: nothing is left to interrupt


_interrupts = _InterruptState()


def _raise_interrupt(number: int, _frame: object) -> None:
    if _interrupts.committed:
        return  # the change is done and kept; all that is left is saying so
    _interrupts.received = number
    if _interrupts.held:
        _interrupts.pending = number
        return
    raise KeyboardInterrupt(signal.Signals(number).name)


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM do not cut the block short; one that arrives meanwhile is raised
    as the block ends (unless the change was committed in it). For what must not stop
    half-way: the clean-up after a failure (a second Ctrl-C must not leave the backup
    behind), starting a child process (a signal inside `Popen` loses the child, which then
    goes on writing), a commit and the record that it happened."""
    held, _interrupts.held = _interrupts.held, True
    try:
        yield
    finally:
        _interrupts.held = held
        if not held:
            raise_pending_interrupt()


def raise_pending_interrupt() -> None:
    """Inside a hold, at a point where stopping is safe: raise a signal that arrived meanwhile."""
    if _interrupts.pending is not None:
        number, _interrupts.pending = _interrupts.pending, None
        raise KeyboardInterrupt(signal.Signals(number).name)


def change_committed() -> None:
    """Called, inside a hold, once the command's change is committed: from here on Ctrl-C and
    SIGTERM can undo nothing, and "Interrupted; nothing was changed" would be untrue, so the
    command goes on to report what it did."""
    _interrupts.committed = True
    _interrupts.pending = None


@contextlib.contextmanager
def interrupts_as_exceptions() -> Iterator[None]:
    """For the length of the block, SIGINT and SIGTERM raise KeyboardInterrupt (so the
    transaction is rolled back and the boundary says so) instead of killing the process.

    Only in the main thread, and only where the handler is still Python's default: an
    application's own handlers are left alone.
    """
    if threading.current_thread() is not threading.main_thread() or _interrupts.depth:
        _interrupts.depth += 1
        try:
            yield
        finally:
            _interrupts.depth -= 1
        return
    previous = {}
    for number, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL)):
        if signal.getsignal(number) is default:
            previous[number] = signal.signal(number, _raise_interrupt)
    _interrupts.depth += 1
    _interrupts.received = _interrupts.pending = None
    _interrupts.committed = False
    try:
        yield
    finally:
        _interrupts.depth -= 1
        _interrupts.received = _interrupts.pending = None
        _interrupts.committed = False
        for number, handler in previous.items():
            signal.signal(number, handler)


def interrupt_received() -> bool:
    """Whether a signal arrived inside the current `interrupts_as_exceptions()` block."""
    return _interrupts.received is not None
