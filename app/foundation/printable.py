"""Text from a database file, made safe to put in a sentence or on a terminal.

Names and SQL in a file are whatever its writer put there: a table called
"x\\n\\x1b[2KDone: nothing to see here" would print a forged line, erase the real one, or
recolour the terminal, and a host application would log it as two entries. Every name or
text from a file goes through `printable` before it reaches a sentence, a printed line or a
log record: control characters (newlines, escapes, C1 codes), the invisible controls that
reorder a line (bidirectional overrides), line separators, and the bytes of a file name that
is not valid in the file-name encoding (surrogate escapes) become visible escapes such as
`\\n`, `\\x1b` and `\\u202e`. It changes nothing else and nothing twice: a printable text is
returned as it is.
"""

from __future__ import annotations

import unicodedata

_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Format characters that reorder what follows them (the "Trojan Source" characters).
_BIDIRECTIONAL = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def printable(text: object) -> str:
    """`text` (or its str()) with every character that would act on a terminal or a log shown as an escape."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(_escaped(character) for character in text)


def _escaped(character: str) -> str:
    if character not in _BIDIRECTIONAL and unicodedata.category(character) not in _HIDDEN_CATEGORIES:
        return character
    if character in _SHORT:
        return _SHORT[character]
    code = ord(character)
    if 0xDC80 <= code <= 0xDCFF:  # a byte of a file name that is not valid text (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown_value(value: object) -> str:
    """A column's value as SQL would write it (`3`, `'hello'`, `NULL`, `X'00ff'`), printable."""
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    if isinstance(value, str):
        return printable("'" + value.replace("'", "''") + "'")
    return printable(value)
