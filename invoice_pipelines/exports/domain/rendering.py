"""A version rendered: the DATEV data rows, the invoices CSV's rows and bytes, the partner rows."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from invoice_pipelines.core.datev import Booking, BookingLines, Header
from invoice_pipelines.exports.domain import formatting
from invoice_pipelines.exports.domain.bookings import InvoiceRecord
from invoice_pipelines.exports.domain.csv import (
    INVOICE_COLUMNS,
    cells_file,
    decimal_cell,
    text_cell,
)
from invoice_pipelines.exports.domain.job import Job
from invoice_pipelines.exports.domain.plan import Booked


@dataclass
class Rendered:
    """What a version writes, rendered: the DATEV data rows and the invoices CSV's rows, with the
    export's settings that shape them (`head`)."""

    head: tuple  # adviser, client, chart, account length, fiscal year, currency, closed, encoding
    bookings: list[str]  # DATEV data rows
    cells: list[tuple]  # rows of the invoices CSV, each cell as `rows_file` writes it
    booked: Booked  # what the rows are of (`invoices` reads them again only when asked)
    partners: dict

    @cached_property
    def invoices(self) -> list[tuple]:
        """The invoices CSV's rows as values (what `rows_file` writes as `csv`; the fingerprint of
        a version written before it hashed the bytes hashes these)."""
        partners = self.partners
        return [
            (
                inv.id,
                inv.number,
                inv.type_code,
                inv.issue_date,
                inv.due_date,
                partners[inv.partner_key].account,
                inv.partner_name,
                inv.partner_vat_id,
                inv.currency,
                inv.net_total,
                inv.tax_total,
                inv.gross_total,
                formatting.breakdown_text(inv),
                inv.corrects_number,
            )
            for inv, _ in self.booked
        ]

    @cached_property
    def csv(self) -> list[bytes]:
        """The invoices CSV's bytes: the file written and what the fingerprint hashes."""
        return list(cells_file(INVOICE_COLUMNS, self.cells))

    @cached_property
    def bookings_text(self) -> bytes:
        """The DATEV data rows as one run of UTF-8 (one update per kind of row gives the digest
        of one update per row), for either fingerprint."""
        return "".join(self.bookings).encode("utf-8")


def render(job: Job, header: Header, booked: Booked, partners, result) -> Rendered:
    encoding = job.settings.encoding
    line = BookingLines(encoding).line
    bookings = [line(b) for _, rows in booked for b in rows]
    if result.payments:
        # the month's payments after its invoices (exports/domain/payments.py)
        bookings.extend(line(b) for _, rows in result.payments for b in rows)
    head = (
        header.adviser_number,
        header.client_number,
        header.chart,
        header.account_length,
        header.fiscal_year_start,
        header.currency,
        job.closed,
        encoding,
    )
    return Rendered(head, bookings, invoice_cells(booked, partners), booked, partners)


def invoice_cells(booked: Booked, partners) -> list[tuple]:
    """The invoices CSV's rows (`Rendered.invoices`) with each cell as `rows_file` writes it:
    `text_cell` in the text columns, `decimal_cell` for an amount, ids and dates as they are (the
    csv writer writes those as `rows_file` does). What repeats from invoice to invoice (a
    supplier's name and VAT id, the type code, currency and corrected number) is made safe once.
    A test keeps the bytes the same as `rows_file`'s of `Rendered.invoices`."""
    codes: dict[tuple, tuple] = {}  # (type code, currency, corrected number) -> their cells
    names: dict[tuple, tuple] = {}  # (account, name, VAT id) -> their cells
    rows = []
    append = rows.append
    breakdown = formatting.breakdown_text
    for inv, _ in booked:
        key = (inv.type_code, inv.currency, inv.corrects_number)
        code = codes.get(key)
        if code is None:
            code = codes[key] = tuple(map(text_cell, key))
        key = (partners[inv.partner_key].account, inv.partner_name, inv.partner_vat_id)
        name = names.get(key)
        if name is None:
            name = names[key] = (key[0], text_cell(key[1]), text_cell(key[2]))
        append(
            (
                inv.id,
                text_cell(inv.number),
                code[0],
                inv.issue_date,
                inv.due_date,
                name[0],
                name[1],
                name[2],
                code[1],
                decimal_cell(inv.net_total),
                decimal_cell(inv.tax_total),
                decimal_cell(inv.gross_total),
                text_cell(breakdown(inv)),
                code[2],
            )
        )
    return rows


def partner_rows(booked: Booked, partners, payments=()) -> list[dict]:
    """The partner accounts the bookings use (the invoices' and the payments'), with the address
    where one is known."""
    if payments:
        booked = [*booked, *((payment.invoice, rows) for payment, rows in payments)]
    addresses = _addresses(booked)
    used = {inv.partner_key for inv, _ in booked}
    return [
        {
            "account": partners[key].account,
            "name": partners[key].name,
            "vat_id": partners[key].vat_id,
            "country": partners[key].country,
            **addresses.get(key, {}),
        }
        for key in sorted(used, key=lambda k: partners[k].account)
    ]


def _addresses(booked: list[tuple[InvoiceRecord, list[Booking]]]) -> dict[str, dict]:
    """partner key -> address (customers have one; suppliers' addresses are not stored)."""
    found: dict[str, dict] = {}
    for inv, _ in booked:
        if inv.street or inv.city:
            found.setdefault(
                inv.partner_key,
                {"street": inv.street, "postal_code": inv.postal_code, "city": inv.city},
            )
    return found
