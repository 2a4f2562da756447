"""What an organization may be added without, and what each gap holds back until it is set.

`organizations add` takes the DATEV numbers as optional (docs/organizations.md), so an
organization without them is a state the product knows, not a mistake a run finds at the next
month-end: its months are held from the DATEV exports (nothing exported, its invoices wait),
`organizations add` and `show` name the gap and what it blocks, the `organizations_ready` check
lists every organization with one, and the export runs succeed, naming the gap in their
metadata. Plain Python: the lifecycle, the listing and the exports ask the same function.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Gap:
    """One setting an organization lacks: its columns, what it is, what waits for it."""

    settings: tuple[str, ...]
    what: str
    blocks: str

    def how(self, slug: str) -> str:
        """The command that closes the gap."""
        options = " ".join(f"--{name.replace('_', '-')} N" for name in self.settings)
        return f"invoice-pipelines organizations change {slug} {options} --why ..."

    def sentence(self, slug: str) -> str:
        return f"{slug} has no {self.what}: {self.blocks}; set it with `{self.how(slug)}`"


DATEV_NUMBERS = Gap(
    settings=("datev_berater_nr", "datev_mandant_nr"),
    what="DATEV Beraternummer/Mandantennummer",
    blocks="its months are held from the DATEV exports (nothing exported, its invoices wait) "
    "until both are set",
)


def gaps(values: Mapping[str, Any] | Any) -> list[Gap]:
    """The settings `values` (an organization's row, or its `Organization`) lacks; the DATEV
    chart is not one of them: without it, SKR03 is used. An organization that exports no
    direction (settings exports.directions `[]`, a company booking elsewhere) needs no numbers."""
    read = values.get if isinstance(values, Mapping) else lambda name: getattr(values, name, None)
    found = []
    if _exports_anything(read("settings")) and any(
        read(name) is None for name in DATEV_NUMBERS.settings
    ):
        found.append(DATEV_NUMBERS)
    return found


def _exports_anything(settings: Any) -> bool:
    exports = settings.get("exports") if isinstance(settings, Mapping) else None
    return not (isinstance(exports, Mapping) and exports.get("directions") == [])


def missing_text(values: Mapping[str, Any] | Any) -> str:
    """The gaps as one short text ("" when ready): what a listing or metadata shows."""
    return "; ".join(f"{gap.what} ({', '.join(gap.settings)})" for gap in gaps(values))


def held_because(org: Any) -> str:
    """Why nothing reads an organization's uploads now ("" when something does): suspended, with
    its reason, or offboarded. `org` an `Organization`."""
    if org.offboarded:
        return "offboarded: its data are read-only"
    if org.suspended:
        return f"suspended: {org.suspension_reason or 'no reason given'}"
    return ""
