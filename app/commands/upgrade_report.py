"""What one upgrade did, as it goes: the state found, the backup, each revision applied.

The report is filled in by Alembic's `on_version_apply` hook; it also tells the error
boundary which revision runs now, so that a failure can name it. Progress goes to the logger
`starpunk_migrations.commands.upgrade_report` at INFO.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..adoption.detection import DatabaseState
from ..foundation import refusals
from ..foundation.printable import printable

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext, MigrationInfo
    from alembic.script import Script

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppliedRevision:
    revision: str
    description: str
    upgrade: bool
    seconds: float


@dataclass
class UpgradeReport:
    """What one run did: readable by `starpunk-db` and returned by `upgrade_database`."""

    database: str
    state: DatabaseState | None = None
    backup: Path | None = None
    backup_credentials: tuple[str, ...] = ()  # the plaintext credentials the backup holds (schema.credentials)
    applied: list[AppliedRevision] = field(default_factory=list)
    revision: str | None = None
    committed: bool = False
    _step_started: float = 0.0
    _steps: list[Any] = field(default_factory=list)
    _attempt: refusals.Attempt | None = None

    def start_steps(self, steps: list[Any] | None = None, attempt: refusals.Attempt | None = None) -> None:
        self._step_started = time.perf_counter()
        self._steps, self._attempt = list(steps or []), attempt
        self._announce_running()

    def _announce_running(self) -> None:
        """Tell the boundary which revision runs now, so a failure can name it."""
        if self._attempt is None:
            return
        upcoming = self._steps[len(self.applied)] if len(self.applied) < len(self._steps) else None
        script: Script | None = getattr(upcoming, "revision", None)
        if script is None:
            self._attempt.running = None
            return
        description = (script.doc or "").strip().splitlines()[0] if script.doc else ""
        self._attempt.running = f"revision {script.revision}" + (f" ({description})" if description else "")

    def step_applied(self, *, ctx: MigrationContext, step: MigrationInfo, heads: Any, run_args: Any) -> None:
        now = time.perf_counter()
        # Alembic's revision map holds Scripts (with their docstring) under the Revision type.
        script = cast("Script | None", step.up_revision)
        applied = AppliedRevision(
            revision=", ".join(step.destination_revision_ids) if step.is_stamp else step.up_revision_id or "",
            description=(script.doc or "").strip().splitlines()[0] if script is not None and not step.is_stamp else "",
            upgrade=step.is_upgrade,
            seconds=now - self._step_started,
        )
        self._step_started = now
        self.applied.append(applied)
        verb = "stamped" if step.is_stamp else "applied" if applied.upgrade else "reverted"
        log.info("%s %s  %s  (%.3f s)", verb, applied.revision, applied.description, applied.seconds)
        self._announce_running()


def detected_sentence(state: DatabaseState, read_only: bool = False, missing: Path | None = None) -> str:
    """What detection found, as the upgrade says it; `missing`: the file that is not there yet."""
    if missing is not None:
        return printable(f"There is no database at {missing}: an upgrade would create it, and run every revision.")
    if state.revision is None:
        return "Detected an empty database: every revision " + ("would" if read_only else "will") + " run from the start."
    parts = [f"Detected StarPunk state '{state.name}', which is revision {state.revision}"]
    if state.repairs:
        parts.append(f"after {len(state.repairs)} repair(s) ({'; '.join(repair.phrase() for repair in state.repairs)})")
    if state.missing_migration_rows:
        parts.append(f"adding {len(state.missing_migration_rows)} schema_migrations row(s)")
    if state.unknown_tables:
        parts.append(f"leaving non-StarPunk table(s) {', '.join(state.unknown_tables)} alone")
    ending = f"; an upgrade would stamp {state.revision} (nothing was written)." if read_only else f"; stamping {state.revision}."
    return printable(", ".join(parts) + ending)  # it names the file's own tables, and goes to logs
