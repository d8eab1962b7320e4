"""Names inside SQLite's own SQL, read as SQLite reads them.

A name in a CREATE statement may be bare (`notes`), "double-quoted", [bracketed] or
`backticked`, with any character inside the quotes (`"pub-view"`, `[pub view]`, a doubled quote for a quote);
a regular expression for "a word after ON" gets all but the first wrong. Here the SQL is
split into tokens (string literals and comments kept whole, so that nothing inside them is
taken for a name) and names are compared as SQLite compares them: ASCII letters without
regard to case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|--[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<string>'(?:[^']|'')*'?)
  | (?P<quoted>"(?:[^"]|"")*"?|`(?:[^`]|``)*`?|\[[^\]]*\]?)
  | (?P<word>[^\W\d]\w*|\d\w*)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_CLOSING = {'"': '"', "`": "`", "[": "]"}


@dataclass(frozen=True)
class Token:
    kind: str  # "string", "quoted", "word" or "other"; comments and spaces are dropped
    text: str  # as written

    @property
    def is_name(self) -> bool:
        return self.kind in ("quoted", "word")

    @property
    def name(self) -> str:
        """The name the token stands for, its quotes removed."""
        if self.kind != "quoted":
            return self.text
        opening, body = self.text[0], self.text[1:]
        closing = _CLOSING[opening]
        if body.endswith(closing):
            body = body[:-1]
        return body if opening == "[" else body.replace(closing * 2, closing)

    def is_keyword(self, *keywords: str) -> bool:
        """A bare word only: `"ON"` in quotes is a name, not the keyword."""
        return self.kind == "word" and self.text.upper() in keywords


def tokens(sql: str) -> list[Token]:
    return [Token(match.lastgroup or "other", match.group()) for match in _TOKEN.finditer(sql) if match.lastgroup != "space"]


def same_name(first: str, second: str) -> bool:
    """SQLite's comparison of names: ASCII letters without regard to case, everything else exactly."""
    return name_key(first) == name_key(second)


def name_key(name: str) -> str:
    """The form under which SQLite finds `name`: for sets and dictionaries of names."""
    return name.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _name_after(items: list[Token], position: int) -> str | None:
    """The (possibly schema-qualified) name starting at `position`: its last part."""
    if position >= len(items) or not items[position].is_name:
        return None
    name = items[position].name
    while position + 2 < len(items) and items[position + 1].text == "." and items[position + 2].is_name:
        position += 2
        name = items[position].name
    return name


def trigger_table(create_trigger_sql: str) -> str:
    """The table or view a CREATE TRIGGER statement is on ("" if the statement has none)."""
    items = tokens(create_trigger_sql)
    started = False
    for position, item in enumerate(items):
        started = started or item.is_keyword("TRIGGER")
        if started and item.is_keyword("ON"):
            return _name_after(items, position + 1) or ""
    return ""


def virtual_table_module(create_sql: str) -> str:
    """The module of a CREATE VIRTUAL TABLE statement (`fts5`, `rtree`, ...), lower case; "" if none."""
    items = tokens(create_sql)
    if len(items) < 3 or not (items[0].is_keyword("CREATE") and items[1].is_keyword("VIRTUAL")):
        return ""
    for position, item in enumerate(items):
        if item.is_keyword("USING"):
            module = _name_after(items, position + 1)
            return name_key(module or "")
    return ""


def dropped_object(sql: str) -> str | None:
    """The name a `DROP TRIGGER|VIEW|TABLE|INDEX [IF EXISTS] [schema.]name` statement drops."""
    items = tokens(sql)
    if len(items) < 3 or not items[0].is_keyword("DROP") or not items[1].is_keyword("TRIGGER", "VIEW", "TABLE", "INDEX"):
        return None
    position = 2
    if position + 1 < len(items) and items[position].is_keyword("IF") and items[position + 1].is_keyword("EXISTS"):
        position += 2
    return _name_after(items, position)


def mentions(sql: str, name: str) -> bool:
    """Whether `sql` names `name` anywhere outside its string literals and comments."""
    return any(item.is_name and same_name(item.name, name) for item in tokens(sql))
