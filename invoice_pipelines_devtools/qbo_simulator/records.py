"""What every simulated entity is made of: a stored record, the tombstone a hard delete leaves, what
one write may see, references and amounts read the way clients send them, and the rules several
entities share (a customer's or vendor's DisplayName, a priced line's amount)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from invoice_pipelines_devtools.qbo_simulator import wire
from invoice_pipelines_devtools.qbo_simulator.wire import Fault

CENT = Decimal("0.01")
ZERO = Decimal("0")


@dataclass
class Record:
    entity: str
    data: dict
    created: float
    updated: float

    @property
    def id(self) -> str:
        return self.data["Id"]

    @property
    def active(self) -> bool:
        return self.data.get("Active", True) is not False


@dataclass
class Tombstone:
    entity: str
    id: str
    deleted: float


@dataclass
class WriteContext:
    """What one write may see: a batch hides the objects created earlier in the same batch."""

    hidden: set[tuple[str, str]] = field(default_factory=set)
    include: set[str] = field(default_factory=set)


def ref_value(ref: object) -> str | None:
    """The id a reference names: `{"value": "3", "name": ...}` or the bare value."""
    if isinstance(ref, dict):
        value = ref.get("value")
        return None if value is None else str(value)
    if ref is None:
        return None
    return str(ref)


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def truthy(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def id_key(value: str):
    """Ids in QBO's order: numeric ones by number, then the others (TaxCode "TAX") by text."""
    return (0, int(value), "") if value.isdigit() else (1, 0, value)


def display_name(data: dict) -> str:
    """A customer's or vendor's DisplayName: as sent, else from the person's names or the
    company name (2020 when there is none); QBO's name characters and length."""
    for key in ("DisplayName", "Title", "GivenName", "MiddleName", "FamilyName", "Suffix"):
        wire.check_name_characters(key, data.get(key))
    name = data.get("DisplayName")
    if not name:
        parts = [
            data.get(key)
            for key in ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")
            if data.get(key)
        ]
        name = " ".join(str(p) for p in parts) or data.get("CompanyName")
    if not name or not str(name).strip():
        raise wire.required_param("DisplayName")
    name = str(name).strip()
    if len(name) > 500:
        raise wire.invalid_value("DisplayName", "longer than 500 characters")
    return name


def priced_amount(line: dict, detail: dict) -> Decimal:
    """A line's Amount: as sent, or Qty x UnitPrice when it is not (6070 when both are sent and
    disagree); Qty and UnitPrice kept as exact decimals in `detail`."""
    qty = wire.to_decimal(detail.get("Qty"))
    price = wire.to_decimal(detail.get("UnitPrice"))
    amount = wire.to_decimal(line.get("Amount"))
    if amount is None:
        if qty is None or price is None:
            raise wire.required_param("Line.Amount")
        amount = money(qty * price)
    elif qty is not None and price is not None and money(qty * price) != amount:
        raise Fault(
            400,
            "6070",
            "Amount is not equal to UnitPrice * Qty",
            f"Amount is not equal to UnitPrice * Qty. Supplied value:{amount}",
        )
    if qty is not None:
        detail["Qty"] = qty
    if price is not None:
        detail["UnitPrice"] = price
    return amount
