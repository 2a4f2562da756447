"""Writing invoices of the past, set-based: a few statements per chunk of invoices (the existing
ones of the chunk in one SELECT, the new rows of each table in one executemany), never a query
per invoice. Each chunk runs in the caller's tenant transaction.

Sales invoices take their `sequence_number`s from the organization's invoice series
(`invoice_number_sequences` row `sales_invoices`), as one block under the series' row lock, as a
chunk of batch invoicing does: the series stays 1, 2, ... without a gap or a duplicate, and the
next new invoice takes the number after the block. Their `invoice_number` is the one the old
system gave them. Supplier invoices are VALIDATED, so the export of their month books them."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from invoice_pipelines.core.numbering import reserve_block
from invoice_pipelines.core.suppliers import name_skeleton, vat_id_key
from invoice_pipelines.db.inserts import insert_new
from invoice_pipelines.db.sequences import INVOICES, lock_sequence, set_sequence
from invoice_pipelines.db.tables import (
    customers,
    incoming_invoice_lines,
    incoming_invoice_taxes,
    incoming_invoices,
    sales_invoice_lines,
    sales_invoice_taxes,
    sales_invoices,
)
from invoice_pipelines.history.domain.records import PastInvoice, Refusal

# a customer an e-invoice names that the organization does not know: created with this prefix
# and a digest of its name and VAT id, so the same customer is found again the next time
NEW_CUSTOMER_PREFIX = "H-"


@dataclass
class Written:
    """What one chunk did: invoices imported, found already there, refused."""

    imported: int = 0
    already: int = 0
    refused: list[Refusal] = field(default_factory=list)
    numbers: list[PastInvoice] = field(default_factory=list)  # the sales invoices imported


def write_sales(
    conn: Connection, organization_id: int, invoices: list[PastInvoice], by: str, now: datetime
) -> Written:
    """Import a chunk of sales invoices of the past (history = true), with their customers."""
    written = Written()
    s = sales_invoices.c
    # the series' lock first: a second import (or a billing chunk) of the organization waits
    # here, then sees what this one wrote
    last = _lock_series(conn, organization_id)
    numbers = sorted({i.number for i in invoices})
    existing = dict(
        conn.execute(
            select(s.invoice_number, s.history).where(
                s.organization_id == organization_id, s.invoice_number.in_(numbers)
            )
        ).all()
    )
    new: dict[str, PastInvoice] = {}
    for invoice in invoices:
        if invoice.number in new or existing.get(invoice.number) is True:
            written.already += 1
        elif invoice.number in existing:
            written.refused.append(_issued_here(invoice))
        else:
            new[invoice.number] = invoice
    if not new:
        return written
    chosen = sorted(new.values(), key=lambda i: (i.issue_date, i.number))
    customer_ids = _customers(conn, organization_id, chosen)
    block, last_value = reserve_block(last, len(chosen))
    created_by = f"history import by {by}"
    conn.execute(
        insert(sales_invoices),
        [
            _sales_row(organization_id, invoice, counter, customer_ids, created_by)
            for invoice, counter in zip(chosen, block.numbers(), strict=True)
        ],
    )
    ids = dict(
        conn.execute(
            select(s.invoice_number, s.id).where(
                s.organization_id == organization_id, s.invoice_number.in_(sorted(new))
            )
        ).all()
    )
    taxes, lines = _sales_rates(organization_id, chosen, ids)
    conn.execute(insert(sales_invoice_taxes), taxes)
    conn.execute(insert(sales_invoice_lines), lines)
    _set_series(conn, organization_id, last_value, now)
    written.imported = len(chosen)
    written.numbers = chosen
    return written


def _issued_here(invoice: PastInvoice) -> Refusal:
    return Refusal(
        invoice.where,
        f"invoice {invoice.number}: the organization has an invoice of this number of its own "
        "(not history); not imported",
    )


def _sales_row(
    organization_id: int,
    invoice: PastInvoice,
    counter: int,
    customer_ids: dict[str, int],
    created_by: str,
) -> dict:
    gross = invoice.gross_total
    due = gross - invoice.amount_paid
    status = "paid" if due == 0 else "partially_paid" if invoice.amount_paid > 0 else "open"
    return {
        "organization_id": organization_id,
        "invoice_number": invoice.number,
        "sequence_number": counter,
        "customer_id": customer_ids[invoice.party_number or ""],
        "type_code": invoice.type_code,
        "issue_date": invoice.issue_date,
        "due_date": invoice.due_date or invoice.issue_date,
        "currency": invoice.currency,
        "net_total": invoice.net_total,
        "tax_total": invoice.tax_total,
        "gross_total": gross,
        "amount_paid": invoice.amount_paid,
        "amount_due": due,
        "status": status,
        "history": True,
        "created_by": created_by,
    }


def _sales_rates(
    organization_id: int, invoices: list[PastInvoice], ids: dict[str, int]
) -> tuple[list[dict], list[dict]]:
    """The VAT breakdown rows and one line per rate (quantity 1 at the rate's net: the lines of
    the old system are not imported, and these add up to the breakdown as the totals check
    reads them)."""
    taxes, lines = [], []
    for invoice in invoices:
        invoice_id = ids[invoice.number]
        for no, rate in enumerate(invoice.rates, start=1):
            common = {"organization_id": organization_id, "sales_invoice_id": invoice_id}
            taxes.append(
                {
                    **common,
                    "vat_category": rate.category,
                    "vat_rate": rate.rate,
                    "basis": rate.net,
                    "amount": rate.tax,
                }
            )
            lines.append(
                {
                    **common,
                    "line_no": no,
                    "description": f"{invoice.number}: net at {rate.category} {rate.rate} %",
                    "quantity": 1,
                    "unit_price": rate.net,
                    "net_amount": rate.net,
                    "vat_rate": rate.rate,
                    "vat_category": rate.category,
                }
            )
    return taxes, lines


def _customers(
    conn: Connection, organization_id: int, invoices: list[PastInvoice]
) -> dict[str, int]:
    """The customer id of each invoice's customer number, creating the customers the
    organization does not have (two statements and a SELECT). An e-invoice's buyer, which names
    no customer number of ours, is matched first by VAT id, then by name."""
    c = customers.c
    if any(i.party_number is None for i in invoices):
        _match_buyers(conn, organization_id, [i for i in invoices if i.party_number is None])
    wanted = {i.party_number or "": i for i in invoices}

    def known() -> dict[str, int]:
        query = select(c.customer_number, c.id).where(
            c.organization_id == organization_id, c.customer_number.in_(sorted(wanted))
        )
        return dict(conn.execute(query).all())

    found = known()
    missing = [
        {
            "organization_id": organization_id,
            "customer_number": number,
            "name": invoice.party_name,
            "vat_id": invoice.party_vat_id,
            "country": invoice.party_country or "DE",
        }
        for number, invoice in sorted(wanted.items())
        if number not in found
    ]
    if missing:
        conn.execute(insert(customers), missing)
        found = known()
    return found


def _match_buyers(conn: Connection, organization_id: int, invoices: list[PastInvoice]) -> None:
    """Give each e-invoice's buyer a customer number: an existing customer's with the same VAT
    id, else with the same name, else a new one (`H-` and a digest of name and VAT id)."""
    c = customers.c
    rows = conn.execute(
        select(c.customer_number, c.name, c.vat_id).where(c.organization_id == organization_id)
    ).all()
    by_vat = {vat_id_key(r.vat_id): r.customer_number for r in rows if r.vat_id}
    by_name = {name_skeleton(r.name): r.customer_number for r in rows}
    for invoice in invoices:
        vat, name = vat_id_key(invoice.party_vat_id), name_skeleton(invoice.party_name)
        number = (vat and by_vat.get(vat)) or by_name.get(name)
        if number is None:
            digest = hashlib.sha256(f"{name}\n{vat}".encode()).hexdigest()[:12]
            number = f"{NEW_CUSTOMER_PREFIX}{digest.upper()}"
        invoice.party_number = number


def _lock_series(conn: Connection, organization_id: int) -> int:
    """Lock the organization's invoice series for this transaction; its last value (0 when it
    has none yet). The same row lock batch invoicing takes: new invoices and history queue on it,
    so their blocks never overlap."""
    return lock_sequence(conn, organization_id, INVOICES)


def _set_series(conn: Connection, organization_id: int, last_value: int, now: datetime) -> None:
    set_sequence(conn, organization_id, INVOICES, last_value, now)


def write_supplier(
    conn: Connection, organization_id: int, invoices: list[PastInvoice], by: str, now: datetime
) -> Written:
    """Import a chunk of supplier invoices of the past: VALIDATED, history = true, keyed by
    `PastInvoice.incoming_hash` (the organization's unique content hash)."""
    written = Written()
    t = incoming_invoices.c
    by_hash: dict[str, PastInvoice] = {}
    for invoice in invoices:
        key = invoice.incoming_hash()
        if key in by_hash:
            written.already += 1
        else:
            by_hash[key] = invoice
    existing = set(
        conn.execute(
            select(t.content_hash).where(
                t.organization_id == organization_id, t.content_hash.in_(sorted(by_hash))
            )
        ).scalars()
    )
    new = {key: invoice for key, invoice in by_hash.items() if key not in existing}
    written.already += len(existing)
    if not new:
        return written
    created_by = f"history import by {by}"
    # a second import beside this one may have written some of them meanwhile: those are skipped
    # (ON CONFLICT DO NOTHING) and the rest come back with their ids
    ids = dict(
        conn.execute(
            insert_new(conn, incoming_invoices, ("organization_id", "content_hash")).returning(
                t.content_hash, t.id
            ),
            [_incoming_row(organization_id, key, i, created_by, now) for key, i in new.items()],
        ).all()
    )
    written.already += len(new) - len(ids)
    new = {key: invoice for key, invoice in new.items() if key in ids}
    common = [
        ({"organization_id": organization_id, "incoming_invoice_id": ids[k]}, i)
        for k, i in new.items()
    ]
    conn.execute(
        insert(incoming_invoice_taxes),
        [
            {**c, "vat_category": r.category, "vat_rate": r.rate, "basis": r.net, "amount": r.tax}
            for c, invoice in common
            for r in invoice.rates
        ],
    )
    lines = [
        {**c, "line_no": no, **asdict(line)}
        for c, invoice in common
        for no, line in enumerate(invoice.lines, start=1)
    ]
    if lines:
        conn.execute(insert(incoming_invoice_lines), lines)
    written.imported = len(new)
    return written


def _incoming_row(
    organization_id: int, key: str, invoice: PastInvoice, created_by: str, now: datetime
) -> dict:
    gross = invoice.gross_total
    return {
        "organization_id": organization_id,
        "status": "VALIDATED",
        "last_processed_at": now,
        "status_changed_at": now,
        "format": invoice.format,
        "content_hash": key,
        "raw_json": {"history_import": {"source": invoice.where, "by": created_by}, **invoice.raw},
        "invoice_number": invoice.number,
        "invoice_number_key": invoice.number_key,
        "type_code": invoice.type_code,
        "seller_name": invoice.party_name,
        "seller_vat_id": invoice.party_vat_id,
        "issue_date": invoice.issue_date,
        "due_date": invoice.due_date,
        "service_date": invoice.service_date,
        "currency": invoice.currency,
        "net_total": invoice.net_total,
        "tax_total": invoice.tax_total,
        "gross_total": gross,
        "amount_due": invoice.amount_due if invoice.amount_due is not None else gross,
        "history": True,
        "created_by": created_by,
    }
