"""The `starpunk-db` executable.

Loading the command (SQLAlchemy, Alembic) takes a few tenths of a second. An operator's
Ctrl-C, or a container's SIGTERM, in that moment gets the same one sentence as during the
work, never a traceback: only the standard library and foundation.interrupts load before its
interrupt handling is in place.
"""

from __future__ import annotations

import sys

from .foundation.interrupts import INTERRUPTED, interrupts_as_exceptions


def main() -> int:
    for stream in (sys.stdout, sys.stderr):
        # A character the terminal's encoding lacks (a name under LC_ALL=C) is shown as an
        # escape rather than ending the command half-way through its report.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        with interrupts_as_exceptions():
            from .cli import main as cli

            return cli.main()
    except KeyboardInterrupt:
        print(f"starpunk-db: {INTERRUPTED}", file=sys.stderr)
        return 1
