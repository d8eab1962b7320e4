"""Where a start-up upgrade's progress goes: the host's logging, else stderr.

An upgrade at start-up changes the file and writes a backup; whoever reads the container's
log must be able to see that, and where the backup is. The progress lines (the state
detected, its repairs, the backup, each revision) are INFO records of the logger
`starpunk_migrations`. For the length of the upgrade that logger passes INFO on, unless the
host set its level itself; and when no handler would receive them (the host configured no
logging at all, as under gunicorn, whose own loggers are not the root), they go to stderr,
in gunicorn's own format, so that they land in the same log.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

LOGGER = "starpunk_migrations"
# gunicorn's error log format, so that the lines read as part of the same log.
STDERR_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] starpunk_migrations: %(message)s"
STDERR_DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"


@contextlib.contextmanager
def progress_in_the_host_log() -> Iterator[None]:
    logger = logging.getLogger(LOGGER)
    level = logger.level
    if level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    handler = None
    if not logger.hasHandlers():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(STDERR_FORMAT, STDERR_DATE_FORMAT))
        logger.addHandler(handler)
    try:
        yield
    finally:
        if handler is not None:
            logger.removeHandler(handler)
        logger.setLevel(level)
