"""The organization (tenant) as one value: found once where work enters (a run's partition key,
a command's `--org`, a sensor's tick) and handed down, so no function below asks "slug or id?".

Plain Python and cheap to import (`incoming list` imports it): the lookup that makes one is
`db/tenancy.find_organization`.
"""

from __future__ import annotations

from collections.abc import Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class Organization:
    """One row of `organizations` (db/tables.py), read-only. `settings` is its JSON settings;
    `section` reads one of them."""

    id: int
    slug: str
    name: str
    country: str = "DE"
    currency: str = "EUR"
    timezone: str = "Europe/Berlin"
    invoice_number_format: str = "RE-{year}-{counter:06d}"
    vat_id: str | None = None
    # its tax number (Steuernummer)
    tax_number: str | None = None
    # DATEV: Beraternummer (the tax advisor's number), Mandantennummer (the client's), chart
    datev_berater_nr: int | None = None
    datev_mandant_nr: int | None = None
    datev_chart: str = "SKR03"
    active: bool = True
    peppol_participant: str | None = None
    # suspended (tenants/domain/lifecycle.py): automatic work requests nothing for it until resumed
    suspended_at: datetime | None = None
    suspension_reason: str | None = None
    # offboarded (tenants/domain/lifecycle.py): its data read-only until deleted (migration 0055)
    offboarded_at: datetime | None = None
    settings: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        # a copy of its own, read-only at the top; the sections stay JSON (dicts and lists) for
        # the parsers that check them, so a section is a reader's copy to read, not to change
        object.__setattr__(self, "settings", MappingProxyType(deepcopy(dict(self.settings or {}))))

    def __hash__(self) -> int:
        return hash(self.id)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Organization:
        """The value of an `organizations` row (its other columns, timestamps, are left out)."""
        return cls(**{name: row[name] for name in cls.__dataclass_fields__ if name in row})

    def section(self, name: str) -> Any:
        """One section of the settings (`dunning`, `exports`, `seller`, ...) as stored, `{}` when
        unset; the section's own parser says when it is no JSON object."""
        return self.settings.get(name) or {}

    @property
    def suspended(self) -> bool:
        return self.suspended_at is not None

    @property
    def offboarded(self) -> bool:
        return self.offboarded_at is not None

    @property
    def seller(self) -> Mapping[str, Any]:
        """What its documents say about it as the seller (`settings["seller"]`: address, IBAN)."""
        return self.section("seller")
