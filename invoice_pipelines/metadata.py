"""Markdown tables for Dagster metadata: the one way every asset and check builds a table.

Cells hold supplier names, invoice numbers, file names and error messages, which anyone who can
send an invoice controls. The Dagster UI renders metadata markdown (GitHub flavour), so a raw
`![x](http://evil/p.png)` would load an image from a stranger's server when someone opens the run,
and `[click](http://evil)` would put a phishing link next to our own text. Every cell is therefore
made plain text:

- `core.text.printable`: no control or invisible characters (a line break would end the row);
- cut to `limits.MAX_TEXT_FIELD_CHARS`;
- every character markdown gives a meaning to (``\\ ` * _ [ ] ( ) ! < > # | ~ & @``) is
  backslash-escaped, so no link, image, emphasis, HTML tag or entity forms and `|` stays inside its
  cell;
- bare addresses that GFM turns into links by themselves (`http://…`, `www.…`, `a@b.c`) are broken
  up by escapes (`:\\/\\/`, `www\\.`, `\\@`): they render as the same text, not as a link.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from invoice_pipelines.core.text import cut, printable
from invoice_pipelines.limits import MAX_TEXT_FIELD_CHARS

_SPECIAL = re.compile(r"([\\`*_\[\]()!<>#|~&@])")
_SCHEME = re.compile(r"://")
_WWW = re.compile(r"(www)\.", re.IGNORECASE)
_ALIGN = {"l": "---", "r": "---:", "c": ":---:"}


def markdown_cell(value: object, max_chars: int = MAX_TEXT_FIELD_CHARS) -> str:
    """`value` as the plain-text content of one markdown table cell."""
    if value is None:
        return ""
    text = format(value, "f") if isinstance(value, Decimal) else str(value)
    text = cut(printable(text), max_chars).strip()
    text = _SPECIAL.sub(r"\\\1", text)
    text = _SCHEME.sub(r":\\/\\/", text)
    return _WWW.sub(r"\1\\.", text)


def markdown_table(
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    align: str = "",
    limit: int | None = None,
) -> str:
    """A markdown table of `rows` under `header`, every cell escaped by `markdown_cell`.

    `align` has one letter per column (`l`, `r` or `c`; left where it is short). With `limit`, at
    most that many rows are shown and a last row says how many more there are.
    """
    width = len(header)
    align = align.ljust(width, "l")
    lines = [
        "| " + " | ".join(markdown_cell(name) for name in header) + " |",
        "|" + "|".join(_ALIGN[a] for a in align[:width]) + "|",
    ]
    shown = 0
    more = 0
    for row in rows:
        if limit is not None and shown >= limit:
            more += 1
            continue
        cells = [markdown_cell(v) for v in row][:width]
        cells += [""] * (width - len(cells))
        lines.append("| " + " | ".join(cells) + " |")
        shown += 1
    if more:
        filler = [""] * max(width - 2, 0)
        lines.append("| " + " | ".join(["…", *filler, f"{more} more"][-width:]) + " |")
    return "\n".join(lines)


class Markdown(str):
    """A metadata value the UI renders as markdown (a table from `markdown_table`), among the
    plain values (int, float, str) an asset's metadata is built from without Dagster: a run
    records it as `MetadataValue.md` (lib/asset_metadata.py), a command's report to Dagster
    sends it as text (resources/dagster_instance/dagster_ui.py)."""


class Location(str):
    """A metadata value that is a file's place (a path or a store's URL): a run records it as
    `MetadataValue.path` (lib/asset_metadata.py), a command's report sends it as text."""


@dataclass(frozen=True)
class CheckFinding:
    """What an asset check found, as plain values built without Dagster: the one rule a run's
    check wraps into an `AssetCheckResult` (lib/asset_metadata.check_result) and a command
    that changed what the check reads reports to the UI (resources/dagster_instance/dagster_ui.CheckEvent).
    `severity` is Dagster's AssetCheckSeverity value, WARN or ERROR; `metadata` holds plain
    values as an asset's figures do (int, float, str, `Markdown`, a JSON list or dict)."""

    passed: bool
    description: str
    metadata: Mapping[str, object] = field(default_factory=dict)
    severity: str = "WARN"
