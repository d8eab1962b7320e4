"""The `starpunk-db` executable.

Loading the command (SQLAlchemy, Alembic) takes a few tenths of a second. An operator's
Ctrl-C, or a container's SIGTERM, in that moment gets the same one sentence as during the
work, never a traceback: only the standard library and app.refusals load before its
interrupt handling is in place.
"""

from __future__ import annotations

import sys

from app.refusals import INTERRUPTED, interrupts_as_exceptions


def main() -> int:
    try:
        with interrupts_as_exceptions():
            from app import cli

            return cli.main()
    except KeyboardInterrupt:
        print(f"starpunk-db: {INTERRUPTED}", file=sys.stderr)
        return 1
