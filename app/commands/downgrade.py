"""Going back to an earlier revision: what it would lose, then the downgrade itself.

The downgrade runs through Alembic and env.py like an upgrade (commands.upgrade): one locked
transaction, a backup of the file first, refusals that touch nothing. What each reverted
revision cannot bring back is read from its docstring (evolution.revision_history).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..evolution.revision_history import RevisionEntry, revision_history
from ..foundation.advice import command
from ..foundation.errors import UpgradeRefused
from ..foundation.locations import DEFAULT_BUSY_TIMEOUT
from ..foundation.scripts import alembic_config
from .planned_state import PlannedState
from .upgrade_report import UpgradeReport


@dataclass(frozen=True)
class DowngradePlan:
    current: str | None
    target: str | None  # None: base, every table dropped
    reverted: list[RevisionEntry]  # newest first, in the order they run

    @property
    def losses(self) -> list[RevisionEntry]:
        return [entry for entry in self.reverted if entry.loses_data]


def plan_downgrade(current: str | None, target: str) -> DowngradePlan:
    """The revisions a downgrade from `current` to `target` reverts; `UpgradeRefused` for a
    target that is unknown or not below `current`."""
    history = revision_history()
    chain = [entry.revision for entry in history]
    wanted = None if target == "base" else target
    if wanted is not None and wanted not in chain:
        raise UpgradeRefused(
            f"There is no revision {target!r}; {command('history')} lists them ({', '.join(chain)}, or base); nothing was changed."
        )
    if current is None:
        raise UpgradeRefused("The database has no revision yet (it is empty); there is nothing to downgrade.")
    position = chain.index(current)
    stop = -1 if wanted is None else chain.index(wanted)
    if stop > position:
        raise UpgradeRefused(
            f"Revision {target} is newer than the database's revision {current}; use {command(f'upgrade --to {target}')}."
        )
    return DowngradePlan(current, wanted, list(reversed(history[stop + 1 : position + 1])))


def downgrade_database(
    database_url: str, target: str, *, planned: DowngradePlan | None = None, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
) -> UpgradeReport:
    """`alembic downgrade TARGET`, with the backup written first (never optional here); with
    `planned`, only from the revision that plan reverts from (the operator agreed to its list)."""
    from alembic import command

    expected = None if planned is None else PlannedState(planned.current)
    config = alembic_config(database_url, backup=True, busy_timeout=busy_timeout, planned_state=expected)
    command.downgrade(config, target)
    report: UpgradeReport = config.attributes["report"]
    return report
