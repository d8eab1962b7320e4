"""What people call the StarPunk release whose schema each revision is."""

from __future__ import annotations

from collections.abc import Mapping

# What people call the StarPunk releases whose schema each revision is.
RELEASE_NAMES: Mapping[str | None, str] = {
    None: "empty",
    "v0_1_0": "v0.1",
    "v0_4_0": "v0.4",
    "001": "v0.8 / legacy v0.9.x",
    "002": "v1.0.0-rc.1 .. rc.3",
    "004": "v1.0",
    "005": "v1.1",
    "007": "v1.2",
    "008": "v1.3",
    "009": "v1.4 / v1.5",
}


def release_name(revision: str | None) -> str:
    return RELEASE_NAMES.get(revision, f"revision {revision}")


# Tables whose rows StarPunk itself throws away: Micropub tokens and authorization codes,
# credentials it invalidated on purpose (002 rebuilt tokens, 004 dropped both), and auth_state,
# CSRF/PKCE state that lives about five minutes. Only their rows may go when a file is brought in
# step with the revision it is at; any other table's rows are content.
DISPOSABLE_TABLES = frozenset({"tokens", "authorization_codes", "auth_state"})
