"""The VAT breakdown and lines of a read document as rows of incoming_invoice_taxes/_lines.

Works on the JSON form of the invoice (`Invoice.to_json_dict()`, what raw_json keeps), so the
intake and the migration that backfills older documents write the same rows. Values that do not
fit their column (an absurd rate, an over-long unit code) are left empty rather than failing the
document: the rows are for exports and listings, raw_json keeps what the document said.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

MAX_AMOUNT = Decimal(10) ** 16  # NUMERIC(18, 2)
MAX_RATE = Decimal(1000)  # NUMERIC(5, 2)


def _decimal(value: Any, limit: Decimal = MAX_AMOUNT) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() and abs(number) < limit else None


def _text(value: Any, length: int, *, code: bool = False) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    if len(value) > length:
        # a code cut short would look valid ("EURO" -> "EUR"): leave it out; text is shortened
        return None if code else value[:length]
    return value


def breakdown_rows(organization_id: int, document_id: int, invoice: dict) -> list[dict]:
    rows = []
    for entry in invoice.get("vat_breakdown") or ():
        if not isinstance(entry, dict):
            continue
        rows.append(
            {
                "organization_id": organization_id,
                "incoming_invoice_id": document_id,
                "vat_category": _text(entry.get("category"), 2, code=True),
                "vat_rate": _decimal(entry.get("rate"), MAX_RATE),
                "basis": _decimal(entry.get("basis")),
                "amount": _decimal(entry.get("amount")),
            }
        )
    return rows


def line_rows(organization_id: int, document_id: int, invoice: dict) -> list[dict]:
    rows = []
    for number, line in enumerate(invoice.get("lines") or (), start=1):
        if not isinstance(line, dict):
            continue
        rows.append(
            {
                "organization_id": organization_id,
                "incoming_invoice_id": document_id,
                "line_no": number,
                "description": _text(line.get("description") or line.get("item_description"), 512),
                "quantity": _decimal(line.get("quantity"), Decimal(10) ** 14),
                "unit_code": _text(line.get("unit_code"), 8, code=True),
                "unit_price": _decimal(line.get("unit_price"), Decimal(10) ** 14),
                "net_amount": _decimal(line.get("net_amount")),
                "vat_category": _text(line.get("vat_category"), 2, code=True),
                "vat_rate": _decimal(line.get("vat_rate"), MAX_RATE),
            }
        )
    return rows
