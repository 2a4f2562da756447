"""Text from outside (a customer's or the organization's name, an address, an invoice number) as a
letter may show it.

A letter's line is cells separated by tabs (`resources.messaging.letters.Letter`): a tab inside a name would
move the rest of it into the right-hand column. So every value placed on a letter is one line of
visible text: invisible characters (bidi overrides, embeddings and isolates, zero-width characters)
are removed, so a name is drawn in the order it is stored; control characters (tab, line breaks,
escapes) become spaces; runs of white space become one space (`core.text.printable`, the rule of
our files and tables).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from invoice_pipelines.core.text import printable


def letter_text(value: str | None) -> str:
    """`value` as one line of visible text ("" for None)."""
    return " ".join(printable(value or "").split())


def letter_values(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row whose text values are `letter_text` (nested mappings too); other values as they are."""
    return {
        key: letter_text(value)
        if isinstance(value, str)
        else letter_values(value)
        if isinstance(value, Mapping)
        else value
        for key, value in row.items()
    }
