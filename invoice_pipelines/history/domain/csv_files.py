"""The history import's CSV layout (docs/exports.md, "Onboarding an organization with history"):
one row per invoice and VAT rate, a header row naming the columns, UTF-8 (a byte-order mark is
fine), `,` or `;` between fields (the header's choice). An invoice with two rates is two rows of
the same invoice number (of the same supplier); its invoice columns are repeated, or left empty
on its later rows.

Amounts are decimal numbers with a point or a comma and no thousands separator, at most two
decimals (`1234.56`, `1234,56`); dates are `YYYY-MM-DD` or `DD.MM.YYYY`. A row that breaks a rule
refuses its invoice with the row's line; the other invoices of the file are read all the same."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from invoice_pipelines.core.money import ZERO
from invoice_pipelines.core.suppliers import name_skeleton, vat_id_key
from invoice_pipelines.history.domain.records import (
    Direction,
    Invalid,
    PastInvoice,
    Rate,
    Refusal,
    check_invoice,
)

RATE_COLUMNS = ("vat_category", "vat_rate", "net", "tax", "gross")
SALES_INVOICE_COLUMNS = (
    "invoice_number",
    "issue_date",
    "due_date",
    "customer_number",
    "customer_name",
    "currency",
    "amount_paid",
)
SALES_OPTIONAL = ("type_code", "customer_vat_id", "customer_country")
SUPPLIER_INVOICE_COLUMNS = (
    "supplier_name",
    "supplier_vat_id",
    "invoice_number",
    "issue_date",
    "due_date",
    "currency",
)
SUPPLIER_OPTIONAL = ("type_code", "service_date")
COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sales": (SALES_INVOICE_COLUMNS + RATE_COLUMNS, SALES_OPTIONAL),
    "supplier": (SUPPLIER_INVOICE_COLUMNS + RATE_COLUMNS, SUPPLIER_OPTIONAL),
}
_EXTRA = "\0extra"  # the cell that marks a row with more fields than the header
_AMOUNT = re.compile(r"^-?\d+(?:[.,]\d{1,2})?$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_GERMAN_DATE = re.compile(r"^\d{1,2}\.\d{1,2}\.\d{4}$")


def read_csv(path: Path, direction: Direction) -> tuple[list[PastInvoice], list[Refusal]]:
    """The invoices of one CSV file, and what it refused (with the file and line of each)."""
    required, optional = COLUMNS[direction]
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [Refusal(str(path), f"cannot be read as UTF-8 text: {exc}")]
    header = text.split("\n", 1)[0]
    reader = csv.DictReader(text.splitlines(keepends=True), delimiter=_delimiter(header))
    columns = [c.strip() for c in reader.fieldnames or ()]
    missing = [c for c in required if c not in columns]
    if missing:
        why = f"the header lacks {', '.join(missing)} (a {direction} file needs {', '.join(required)})"
        return [], [Refusal(f"{path}:1", why)]
    unknown = [c for c in columns if c and c not in required and c not in optional]
    if unknown:
        return [], [Refusal(f"{path}:1", f"unknown columns {', '.join(unknown)}")]
    groups: dict[str, list[tuple[int, dict[str, str]]]] = {}
    names: dict[str, str] = {}
    for line, row in _rows(reader):
        cells = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if row.get(None):  # cells beyond the header's: refused, never dropped
            extra = len(row[None])
            cells[_EXTRA] = f"{extra} field{'s' if extra > 1 else ''} more than the header names"
        groups.setdefault(_invoice_key(cells, direction, names), []).append((line, cells))
    invoices, refused = [], []
    for rows in groups.values():
        try:
            invoices.append(_invoice(path, rows, direction))
        except _RowInvalid as exc:
            refused.append(Refusal(f"{path}:{exc.line}", str(exc)))
    return invoices, refused


class _RowInvalid(Invalid):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def _delimiter(header: str) -> str:
    return ";" if header.count(";") > header.count(",") else ","


def _rows(reader: csv.DictReader) -> Iterator[tuple[int, dict[str, str]]]:
    """Each row with the line it starts on (a quoted field may span lines)."""
    start = 2
    for row in reader:
        yield start, row
        start = reader.line_num + 1


def _invoice_key(cells: dict[str, str], direction: Direction, names: dict[str, str]) -> str:
    """The rows of one invoice: the same invoice number (of the same supplier: its VAT id, else
    its name as a person reads it, `names` remembering each name's)."""
    number = cells.get("invoice_number", "")
    if direction == "sales":
        return number
    vat = vat_id_key(cells.get("supplier_vat_id"))
    if vat:
        return f"vat:{vat}\n{number}"
    name = cells.get("supplier_name", "")
    if name not in names:
        names[name] = name_skeleton(name)
    return f"name:{names[name]}\n{number}"


def _invoice(path: Path, rows: list[tuple[int, dict[str, str]]], direction: Direction):
    """The invoice of one group of rows; `_RowInvalid` with the line of the first wrong row."""
    first_line, first = rows[0]
    rates = []
    for line, cells in rows:
        try:
            if _EXTRA in cells:
                raise Invalid(cells[_EXTRA])
            _same_invoice(first, cells, direction)
            rates.append(_rate(cells))
        except Invalid as exc:
            raise _RowInvalid(line, _in_invoice(first, rows, str(exc))) from None
    try:
        invoice = _header(first, direction, f"{path}:{_lines(rows)}")
        invoice.rates = rates
        check_invoice(invoice)
    except Invalid as exc:
        raise _RowInvalid(first_line, _in_invoice(first, rows, str(exc))) from None
    return invoice


def _in_invoice(first: dict[str, str], rows: list, message: str) -> str:
    number = first.get("invoice_number") or "(no number)"
    if len(rows) == 1:
        return f"invoice {number}: {message}"
    return f"invoice {number} (lines {_lines(rows)}): {message}; the invoice is not imported"


def _lines(rows: list[tuple[int, dict[str, str]]]) -> str:
    return ", ".join(str(line) for line, _ in rows)


def _same_invoice(first: dict[str, str], cells: dict[str, str], direction: Direction) -> None:
    """A later row of an invoice repeats its invoice columns or leaves them empty."""
    required, optional = COLUMNS[direction]
    for column in (*required, *optional):
        if column in RATE_COLUMNS or not cells.get(column):
            continue
        if cells[column] != first.get(column, ""):
            raise Invalid(
                f"{column} {cells[column]!r} differs from the invoice's first row "
                f"({first.get(column, '')!r})"
            )


def _header(cells: dict[str, str], direction: Direction, where: str) -> PastInvoice:
    currency = cells["currency"].upper()
    if not _CURRENCY.match(currency):
        raise Invalid(f"currency {cells['currency']!r} is not a three-letter code (EUR)")
    common = {
        "where": where,
        "direction": direction,
        "number": cells["invoice_number"],
        "type_code": cells.get("type_code") or "380",
        "issue_date": _date(cells, "issue_date"),
        "currency": currency,
        "rates": [],
    }
    if direction == "sales":
        number = cells["customer_number"]
        if not number or len(number) > 64:
            raise Invalid("the customer number is empty or longer than 64")
        country = (cells.get("customer_country") or "DE").upper()
        return PastInvoice(
            **common,
            due_date=_date(cells, "due_date"),
            party_name=cells["customer_name"],
            party_number=number,
            party_vat_id=cells.get("customer_vat_id") or None,
            party_country=country[:2],
            amount_paid=_amount(cells, "amount_paid", empty=ZERO),
        )
    return PastInvoice(
        **common,
        due_date=_date(cells, "due_date", required=False),
        service_date=_date(cells, "service_date", required=False),
        party_name=cells["supplier_name"],
        party_vat_id=cells["supplier_vat_id"] or None,
    )


def _rate(cells: dict[str, str]) -> Rate:
    rate = _amount(cells, "vat_rate")
    if rate < 0:
        raise Invalid(f"vat_rate {rate} is negative")
    category = cells["vat_category"].upper()
    if not category:
        if rate == 0:
            raise Invalid("a 0 % row needs its vat_category (Z, E, AE, K, G or O)")
        category = "S"
    net, tax, gross = _amount(cells, "net"), _amount(cells, "tax"), _amount(cells, "gross")
    if net + tax != gross:
        raise Invalid(f"net {net} + tax {tax} is {net + tax}, not the gross {gross}")
    return Rate(category, rate, net, tax)


def _amount(cells: dict[str, str], column: str, *, empty: Decimal | None = None) -> Decimal:
    value = cells.get(column, "")
    if not value and empty is not None:
        return empty
    if column == "vat_rate":
        ok = re.fullmatch(r"\d+(?:[.,]\d+)?", value)
    else:
        ok = _AMOUNT.match(value)
    if not ok:
        raise Invalid(
            f"{column} {value!r} is not an amount (digits, a point or comma, at most two decimals)"
        )
    try:
        return Decimal(value.replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        raise Invalid(f"{column} {value!r} is not a number") from None


def _date(cells: dict[str, str], column: str, *, required: bool = True) -> date | None:
    value = cells.get(column, "")
    if not value:
        if required:
            raise Invalid(f"no {column}")
        return None
    try:
        if _ISO_DATE.match(value):
            return date.fromisoformat(value)
        if _GERMAN_DATE.match(value):
            return datetime.strptime(value, "%d.%m.%Y").date()
    except ValueError:
        pass
    raise Invalid(f"{column} {value!r} is not a date (YYYY-MM-DD or DD.MM.YYYY)")
