"""The one exception a refused command raises; every other failure is turned into it."""

from __future__ import annotations


class UpgradeRefused(Exception):
    """The database was left exactly as it was, for the reason in the message.

    Raised for a file that is not a SQLite database, a schema no StarPunk release had, a
    revision this code does not know, a lock held too long, a read-only file, ...: the
    message is one sentence saying what was found and what to do.
    """


class AnotherApplication(UpgradeRefused):
    """The database holds tables, none of them StarPunk's: whatever is asked, it is not ours to touch."""
