"""Where a start-up upgrade's progress goes: the host's logging, else stderr, once it is done.

An upgrade at start-up changes the file and writes a backup; whoever reads the container's
log must be able to see that, and where the backup is. The progress lines (the state
detected, its repairs, the backup, each revision) are INFO records of the logger
`starpunk_migrations`. They are held until the upgrade has committed: a refused upgrade
changed nothing and deleted its backup, so its progress would only mislead (the refusal
itself reaches the host as `UpgradeRefused`). Then they go to the host's handlers, at the
levels the host set (a host logging at WARNING sees only warnings); and when no handler would
receive them (the host configured no logging at all, as under gunicorn, whose own loggers are
not the root), to stderr at INFO, in gunicorn's own format, so that they land in the same log.
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


class _Held(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def progress_in_the_host_log() -> Iterator[None]:
    """The progress of the upgrade run inside, logged once it has succeeded."""
    logger = logging.getLogger(LOGGER)
    level, handlers, propagate = logger.level, logger.handlers, logger.propagate
    host_logs = logger.hasHandlers()
    held = _Held()
    if not host_logs and level == logging.NOTSET:
        logger.setLevel(logging.INFO)  # for stderr: nobody said which levels to show
    logger.handlers, logger.propagate = [held], False
    try:
        try:
            yield
        finally:
            logger.handlers, logger.propagate = handlers, propagate
        _log(logger, held.records, to_stderr=not host_logs)  # reached only once the upgrade is done
    finally:
        logger.setLevel(level)


def _log(logger: logging.Logger, records: list[logging.LogRecord], *, to_stderr: bool) -> None:
    fallback = None
    if records and to_stderr:
        fallback = logging.StreamHandler(sys.stderr)
        fallback.setFormatter(logging.Formatter(STDERR_FORMAT, STDERR_DATE_FORMAT))
        logger.addHandler(fallback)
    try:
        for record in records:
            logger.handle(record)
    finally:
        if fallback is not None:
            logger.removeHandler(fallback)
