"""An invoice of an organization's past as the history import reads it, from a CSV file or an
e-invoice, before it is written: plain values, checked by the house's rules (Decimal amounts,
cents, net + VAT = gross per rate, the VAT of a rate as `core/totals.py` rounds it).

A source that cannot be read gives a `Refusal` (where, and why in one sentence), never an
exception: one bad row never stops the rest of a file."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cached_property
from typing import Any, Literal

from invoice_pipelines.core.money import CENT, ZERO
from invoice_pipelines.core.rules import invoice_number_key
from invoice_pipelines.core.suppliers import name_skeleton, vat_id_key
from invoice_pipelines.core.totals import vat_amount, vat_problem

Direction = Literal["sales", "supplier"]
# the type codes an invoice of the past may have: invoice, credit note, corrected, self-billed
TYPE_CODES = ("380", "381", "384", "389")
# a supplier's VAT per rate may be a cent off the house's rounding (EN 16931 BR-CO-17 is met by
# line-wise rounding too); our own sales invoices are held to it exactly (billing/checks.py's
# totals_consistent checks every sales invoice, history included)
SUPPLIER_VAT_TOLERANCE = CENT
MAX_SALES_NUMBER = 64  # sales_invoices.invoice_number
MAX_INCOMING_NUMBER = 128  # incoming_invoices.invoice_number
MAX_NAME = 255


class Invalid(ValueError):
    """One value that cannot be imported; its message is the sentence a person reads."""


@dataclass(frozen=True)
class Refusal:
    """Something the import refused: where (`file:line`, `file:lines 3, 4` or a file name) and
    why."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(frozen=True)
class Rate:
    """One VAT rate of an invoice: its category, rate and net, VAT and gross amounts."""

    category: str
    rate: Decimal
    net: Decimal
    tax: Decimal

    @property
    def gross(self) -> Decimal:
        return self.net + self.tax


@dataclass(frozen=True)
class Line:
    """A line as an e-invoice states it (supplier invoices keep their lines)."""

    description: str | None
    quantity: Decimal | None
    unit_code: str | None
    unit_price: Decimal | None
    net_amount: Decimal | None
    vat_category: str | None
    vat_rate: Decimal | None


@dataclass
class PastInvoice:
    """One invoice of the past, checked and ready to be written. `party_*` is the customer of a
    sales invoice and the supplier of a supplier invoice."""

    where: str
    direction: Direction
    number: str
    type_code: str
    issue_date: date
    due_date: date | None
    currency: str
    rates: list[Rate]
    party_name: str
    party_vat_id: str | None = None
    party_number: str | None = None  # a sales invoice's customer number
    party_country: str | None = None
    service_date: date | None = None
    amount_paid: Decimal = ZERO
    amount_due: Decimal | None = None  # what the document says is due, when it says it
    lines: list[Line] = field(default_factory=list)
    format: str = "history-csv"
    content_hash: str | None = None  # an e-invoice file's bytes (the intake's hash)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def net_total(self) -> Decimal:
        return sum((r.net for r in self.rates), ZERO)

    @property
    def tax_total(self) -> Decimal:
        return sum((r.tax for r in self.rates), ZERO)

    @property
    def gross_total(self) -> Decimal:
        return self.net_total + self.tax_total

    @cached_property
    def number_key(self) -> str | None:
        """`core.rules.invoice_number_key` of the number, computed once (it is not cheap)."""
        return invoice_number_key(self.number)

    def supplier_key(self) -> str:
        """Who the supplier is for the import's key: its VAT id, else its name as a person
        reads it (as the exports' partner accounts key suppliers)."""
        vat = vat_id_key(self.party_vat_id)
        return f"vat:{vat}" if vat else f"name:{name_skeleton(self.party_name)}"

    def incoming_hash(self) -> str:
        """The supplier invoice's `content_hash` (unique per organization): an e-invoice file's
        bytes, as the intake hashes them, so a file uploaded before is the same document; a CSV
        row's supplier and invoice number, so importing it again finds it."""
        if self.content_hash:
            return self.content_hash
        key = f"history-csv\n{self.supplier_key()}\n{self.number_key}"
        return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_rates(rates: list[Rate], direction: Direction) -> None:
    """The house's rules on an invoice's VAT breakdown: one row per (category, rate), a category
    that fits its rate, and the VAT of each rate as `core/totals.vat_amount` rounds it (a
    supplier's within a cent)."""
    if not rates:
        raise Invalid("no VAT rate: an invoice needs at least one (net, VAT, gross) row")
    seen: set[tuple[str, Decimal]] = set()
    for r in rates:
        key = (r.category, r.rate.normalize())
        if key in seen:
            raise Invalid(f"VAT {r.category} {r.rate} % appears twice in the invoice")
        seen.add(key)
        problem = vat_problem(r.category, r.rate)
        if problem:
            raise Invalid(problem)
        expected = vat_amount(r.net, r.rate)
        off = abs(r.tax - expected)
        allowed = SUPPLIER_VAT_TOLERANCE if direction == "supplier" else ZERO
        if off > allowed:
            raise Invalid(
                f"VAT {r.tax} is not {r.rate} % of {r.net} ({expected}, rounded half up"
                + (f", within {allowed})" if allowed else ")")
            )


def check_invoice(invoice: PastInvoice) -> None:
    """The rules on the invoice as a whole (its rates are checked by `check_rates`)."""
    limit = MAX_SALES_NUMBER if invoice.direction == "sales" else MAX_INCOMING_NUMBER
    if not invoice.number:
        raise Invalid("no invoice number")
    if len(invoice.number) > limit:
        raise Invalid(f"invoice number {invoice.number[:40]!r}... is longer than {limit}")
    if invoice.type_code not in TYPE_CODES:
        raise Invalid(f"type code {invoice.type_code!r}: one of {', '.join(TYPE_CODES)}")
    if not invoice.party_name or len(invoice.party_name) > MAX_NAME:
        raise Invalid(f"the {_party(invoice)}'s name is empty or longer than {MAX_NAME}")
    check_rates(invoice.rates, invoice.direction)
    gross = invoice.gross_total
    if invoice.amount_paid < 0 or (gross >= 0 and invoice.amount_paid > gross):
        raise Invalid(f"amount paid {invoice.amount_paid} is not between 0 and the gross {gross}")


def _party(invoice: PastInvoice) -> str:
    return "customer" if invoice.direction == "sales" else "supplier"
