"""Names as QuickBooks Online accepts them.

QBO refuses a customer's DisplayName (and its name parts) or an item's Name that holds a colon, a
tab or a line break (fault 2040 "Invalid String": the colon separates parent and child in
`FullyQualifiedName`, e.g. "Parent:Child"); DisplayName is at most 500 characters, an item's Name
100. Our names may hold any of that (a supplier's "ACME: Berlin", a pasted line break), so what we
write is the name QBO takes: each colon becomes " - ", every control character a space, runs of
white space one space, and the result is cut to the field's length. The name in our database stays
as it is; a name read back from QBO is the cleaned one.
"""

from __future__ import annotations

import re
import unicodedata

DISPLAY_NAME_MAX = 500
ITEM_NAME_MAX = 100

_SPACES = re.compile(r"\s+")


def qbo_name(name: str, limit: int) -> str:
    """`name` as QBO accepts it in DisplayName/Name (see the module docstring). A name of white
    space and colons alone comes back empty, and QBO refuses it as missing, as it refuses ours."""
    text = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch
        for ch in str(name).replace(":", " - ")
    )
    if not _SPACES.sub("", str(name).replace(":", "")):
        return ""
    return _SPACES.sub(" ", text).strip()[:limit].rstrip()


def qbo_display_name(name: str) -> str:
    return qbo_name(name, DISPLAY_NAME_MAX)


def qbo_item_name(name: str) -> str:
    return qbo_name(name, ITEM_NAME_MAX)
