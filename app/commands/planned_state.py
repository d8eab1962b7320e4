"""The state a command's plan was made from, checked again under the command's write lock.

`downgrade` and `stamp` read the file, say what they will do (and `downgrade --yes` has the
operator's consent to what it listed), then take the write lock. Another program may write in
between: an upgrade that commits there turns "Revert: 007" into reverting 009, 008 and 007,
and a stamp of 007 into "use downgrade". So under the lock the file's state is compared with
the one the plan was made from; if it differs, nothing is done and the operator is asked to
run the command again, to see the plan for the file as it now is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..adoption.detection import DatabaseState
from ..foundation.errors import UpgradeRefused


@dataclass(frozen=True)
class PlannedState:
    """What the plan saw: the revision (stamped or detected), and whether it was stamped
    (None: either will do, as for a downgrade, which reverts the same revisions)."""

    revision: str | None
    managed: bool | None = None

    def check(self, state: DatabaseState, where: Path | str) -> None:
        """Refuse, having changed nothing, when the file is no longer in the planned state."""
        if state.revision == self.revision and self.managed in (None, state.managed):
            return
        was = describe(self.revision, self.managed)
        refuse_changed(where, was, describe(state.revision, state.managed if self.managed is not None else None))


def describe(revision: str | None, managed: bool | None) -> str:
    shown = f"at revision {revision}" if revision else "empty"
    if managed is None or revision is None:
        return shown
    return shown + (" (stamped)" if managed else " (not stamped)")


def refuse_changed(where: Path | str, was: str, now: str) -> None:
    raise UpgradeRefused(
        f"{where} changed after the plan above was made: it was {was}, it is now {now} (another program, "
        "perhaps an upgrade, wrote to it meanwhile); nothing was changed: run the command again to see "
        "what it would do now."
    )
