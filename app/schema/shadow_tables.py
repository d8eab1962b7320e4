"""The shadow tables in which SQLite keeps a virtual table's data.

Each module names them after its virtual table: an FTS5 table `notes_fts` keeps
`notes_fts_data`, `notes_fts_idx`, ... They are SQLite's, never compared nor reported. They
are known by the virtual table's actual name and its module's suffixes, never by a prefix:
a user's FTS5 table `note` must not make StarPunk's `note_media` a shadow table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .sql_names import name_key, virtual_table_module

# What each of SQLite's modules with shadow tables adds to its table's name.
SHADOW_SUFFIXES: Mapping[str, tuple[str, ...]] = {
    "fts5": ("_data", "_idx", "_content", "_docsize", "_config"),
    "fts4": ("_content", "_segments", "_segdir", "_docsize", "_stat"),
    "fts3": ("_content", "_segments", "_segdir", "_docsize", "_stat"),
    "rtree": ("_node", "_rowid", "_parent"),
    "rtree_i32": ("_node", "_rowid", "_parent"),
    "geopoly": ("_node", "_rowid", "_parent"),
}


def shadow_table_keys(virtual_tables: Iterable[tuple[str, str]]) -> frozenset[str]:
    """The shadow tables of these `(name, CREATE VIRTUAL TABLE ...)`, as `name_key`s."""
    return frozenset(
        name_key(name + suffix) for name, sql in virtual_tables for suffix in SHADOW_SUFFIXES.get(virtual_table_module(sql), ())
    )
