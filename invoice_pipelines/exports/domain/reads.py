"""Set-based reads of one organization's month: invoices, their VAT breakdowns, their lines.

One query per kind of row for the whole month (no query per invoice). The month of an invoice is
its issue date's; a document without a date belongs to the month it was uploaded in, so it is
listed (and skipped with the reason) instead of vanishing from every export.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

from sqlalchemy import and_, func, insert, literal, null, select
from sqlalchemy.engine import Connection

from invoice_pipelines import sales_ledger
from invoice_pipelines.core.export_months import month_bounds
from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.db.incoming_months import incoming_in_month
from invoice_pipelines.db.incoming_status import validated
from invoice_pipelines.db.tables import (
    export_items,
    incoming_invoice_lines,
    incoming_invoice_taxes,
    incoming_invoices,
    sales_invoice_lines,
    sales_invoice_taxes,
    sales_invoices,
)
from invoice_pipelines.exports.domain.bookings import InvoiceRecord, TaxRow


def validated_in_month(organization_id: int, period: str):
    """The month's incoming invoices that wait in VALIDATED (a SELECT of their ids)."""
    t = incoming_invoices.c
    return select(t.id).where(
        incoming_in_month(organization_id, period), validated(organization_id=organization_id)
    )


def in_review_in_month(conn: Connection, organization_id: int, period: str) -> int:
    """How many of the month's incoming invoices wait in NEEDS_REVIEW: neither booked nor skipped
    (a person confirms or corrects them first), but an export says they are there."""
    where = incoming_in_month(organization_id, period, (Status.NEEDS_REVIEW.value,))
    return conn.execute(select(func.count()).select_from(incoming_invoices).where(where)).scalar()


def sales_in_month(organization_id: int, period: str):
    """The month's sales invoices an export lists (a SELECT of their ids)."""
    return select(sales_invoices.c.id).where(_sales_filter(organization_id, period))


def _sales_filter(organization_id: int, period: str):
    start, end = month_bounds(period)
    t = sales_invoices.c
    return and_(
        t.organization_id == organization_id,
        t.issue_date >= start,
        t.issue_date < end,
        t.status != "cancelled",
    )


def _month(organization_id: int, period: str, direction: str):
    """(the invoices table, its source with joins, the month's condition, order, the columns in
    InvoiceRecord's order, the VAT rows' table and invoice id column) of one direction."""
    if direction == "incoming":
        invoices, t = incoming_invoices, incoming_invoices.c
        tax_table, tax_invoice_id = (
            incoming_invoice_taxes,
            incoming_invoice_taxes.c.incoming_invoice_id,
        )
        where = incoming_in_month(organization_id, period)
        source, order = invoices, (t.issue_date, t.id)
        columns = _in_record_order(
            {
                "partner_name": t.seller_name,
                "partner_vat_id": t.seller_vat_id,
                "service_date": t.service_date,
                "status": t.status,
                "version": t.processing_version,
                **_invoice_columns(t),
            }
        )
    else:
        invoices, t = sales_invoices, sales_invoices.c
        tax_table, tax_invoice_id = sales_invoice_taxes, sales_invoice_taxes.c.sales_invoice_id
        where = _sales_filter(organization_id, period)
        source, columns = sales_records_source()
        order = (t.issue_date, t.sequence_number)
    return invoices, source, where, order, columns, tax_table, tax_invoice_id


# InvoiceRecord's partner and reference of a sales invoice: the sales ledger's field of each
SALES_RECORD_FIELDS = {
    "partner_name": "customer_name",
    "partner_vat_id": "customer_vat_id",
    "partner_country": "customer_country",
    "customer_number": "customer_number",
    "street": "customer_street",
    "postal_code": "customer_postal_code",
    "city": "customer_city",
    "corrects_number": "corrects_number",
}


def sales_records_source():
    """The sales invoices joined to what their InvoiceRecord reads besides them (the customer,
    the invoice a credit note corrects: sales_ledger.py), and InvoiceRecord's fields as columns
    of that source in the constructor's order: `InvoiceRecord(*row)` of a row that selects them.
    The month's invoices and the month's payments (exports/domain/payments.py) read their invoices this
    way."""
    ledger = {record: sales_ledger.field(name) for record, name in SALES_RECORD_FIELDS.items()}
    columns = {**ledger, **_invoice_columns(sales_invoices.c)}
    return sales_ledger.joined(*SALES_RECORD_FIELDS.values()), _in_record_order(columns)


def _invoice_columns(t) -> dict:
    """The fields both directions' invoice tables have under the same names."""
    return {
        "id": t.id,
        "number": t.invoice_number,
        "type_code": t.type_code,
        "issue_date": t.issue_date,
        "due_date": t.due_date,
        "currency": t.currency,
        "net_total": t.net_total,
        "tax_total": t.tax_total,
        "gross_total": t.gross_total,
    }


def _in_record_order(columns: dict) -> list:
    """InvoiceRecord's fields in its constructor's order, NULL where `columns` has none."""
    return [columns.get(name, null()).label(name) for name in RECORD_FIELDS]


def load_invoices(
    conn: Connection,
    organization_id: int,
    period: str,
    direction: str,
    *,
    with_vat_rows: bool = True,
) -> list[InvoiceRecord]:
    """The month's exportable invoices with their VAT breakdowns, ordered by date and id.

    Both directions read through one query shape: the columns are InvoiceRecord's fields in
    their order (NULL where a direction has no such value), fetched at once and passed by
    position. (Labelled columns read as mappings cost a third of the export's read phase: each
    row fetched on its own and turned into keyword arguments.) `with_vat_rows=False`: without
    their VAT breakdowns, which the caller reads (`vat_rows_query`, in the same snapshot) and
    gives them (`attach_vat_rows`).
    """
    records = invoice_records(
        conn.execute(invoices_query(organization_id, period, direction)).all()
    )
    if with_vat_rows:
        attach_vat_rows(
            records, conn.execute(vat_rows_query(organization_id, period, direction)).all()
        )
    return records


def invoices_query(organization_id: int, period: str, direction: str):
    """The month's exportable invoices, InvoiceRecord's fields as columns, in the export's order
    (`invoice_records` of its rows; `load_invoices` reads it)."""
    _, source, where, order, columns, _, _ = _month(organization_id, period, direction)
    return select(*columns).select_from(source).where(where).order_by(*order)


def invoice_records(rows) -> list[InvoiceRecord]:
    """The rows of `invoices_query` as records, without their VAT breakdowns."""
    return [InvoiceRecord(*row) for row in rows]


def vat_rows_query(organization_id: int, period: str, direction: str):
    """The VAT breakdown rows of the month's invoices: (invoice id, category, rate, basis,
    amount), in the order they were stored."""
    invoices, _, where, _, _, tax_table, tax_invoice_id = _month(organization_id, period, direction)
    return (
        select(
            tax_invoice_id,
            tax_table.c.vat_category,
            tax_table.c.vat_rate,
            tax_table.c.basis,
            tax_table.c.amount,
        )
        .join(invoices, invoices.c.id == tax_invoice_id)
        .where(where)
        .order_by(tax_table.c.id)
    )


def attach_vat_rows(records: list[InvoiceRecord], rows) -> None:
    """Each row of `vat_rows_query` to its invoice's `taxes`."""
    by_id = {r.id: r.taxes for r in records}
    for invoice_id, category, rate, basis, amount in rows:
        found = by_id.get(invoice_id)
        if found is not None:
            found.append(TaxRow(category, rate, basis, amount))


# InvoiceRecord's fields that a query fills, in the order its constructor takes them
RECORD_FIELDS = tuple(f.name for f in fields(InvoiceRecord) if f.name != "taxes")


def booked_lines_query(
    organization_id: int,
    period: str,
    direction: str,
    export_id: int | None = None,
    *,
    skipped: Sequence[int] | None = None,
):
    """The lines of the invoices an export booked (the month's, less the skipped), in the export's
    order, with the columns of the lines CSV. Run it in the export's snapshot.

    The skipped invoices are those the export `export_id` recorded as skipped, or the ids in
    `skipped` (for a transaction beside the export's, which cannot see its uncommitted items)."""
    if direction == "incoming":
        t, invoice = incoming_invoice_lines.c, incoming_invoices
        invoice_id, unit_code = t.incoming_invoice_id, t.unit_code
        order = (invoice.c.issue_date, invoice.c.id)
        month = incoming_in_month(organization_id, period)
        skipped_column = export_items.c.incoming_invoice_id
    else:
        t, invoice = sales_invoice_lines.c, sales_invoices
        invoice_id, unit_code = t.sales_invoice_id, null()
        order = (invoice.c.issue_date, invoice.c.sequence_number)
        month = _sales_filter(organization_id, period)
        skipped_column = export_items.c.sales_invoice_id
    if skipped is None:
        if export_id is None:
            raise ValueError("booked_lines_query needs the export's id or its skipped invoices")
        where = and_(month, invoice.c.id.not_in(_skipped_ids(export_id, skipped_column)))
    elif skipped:
        where = and_(month, invoice.c.id.not_in(sorted(skipped)))
    else:
        where = month
    return (
        select(
            invoice_id.label("invoice_id"),
            invoice.c.invoice_number.label("invoice_number"),
            t.line_no.label("line_no"),
            t.description.label("description"),
            t.quantity.label("quantity"),
            unit_code.label("unit_code"),
            t.unit_price.label("unit_price"),
            t.net_amount.label("net_amount"),
            t.vat_category.label("vat_category"),
            t.vat_rate.label("vat_rate"),
        )
        .select_from(invoice_id.table)
        .join(invoice, invoice.c.id == invoice_id)
        .where(where)
        .order_by(*order, t.line_no)
    )


def _skipped_ids(export_id: int, column):
    """The invoices an export skipped (recorded before the booked ones). Used as NOT IN: a hashed
    subplan on PostgreSQL, never a nested loop over the export, as long as the skipped ids fit in
    its hash memory (about 150,000 at the default work_mem; past that NOT IN scans them for every
    invoice, as the documents sensor's query once did: documents/pipeline.waiting_for_documents).
    A month skips a handful; one that skipped more than that would want an anti-join here too."""
    return select(column).where(
        export_items.c.export_id == export_id,
        export_items.c.status == "skipped",
        column.is_not(None),
    )


def insert_booked_items(organization_id: int, period: str, direction: str, export_id: int):
    """INSERT ... SELECT of an `exported` item for every invoice of the month the export did not
    skip. Run it in the export's snapshot: it then covers exactly the invoices that were read."""
    if direction == "incoming":
        t = incoming_invoices.c
        column, version, where = "incoming_invoice_id", t.processing_version, incoming_in_month
        table = incoming_invoices
    else:
        t = sales_invoices.c
        column, version, where = "sales_invoice_id", null(), _sales_filter
        table = sales_invoices
    source = select(
        literal(organization_id),
        literal(export_id),
        t.id,
        t.invoice_number,
        literal("exported"),
        version,
        t.net_total,
        t.tax_total,
        t.gross_total,
    ).where(
        where(organization_id, period),
        t.id.not_in(_skipped_ids(export_id, getattr(export_items.c, column))),
    )
    return insert(export_items).from_select(
        [
            "organization_id",
            "export_id",
            column,
            "invoice_number",
            "status",
            "document_version",
            "net_total",
            "tax_total",
            "gross_total",
        ],
        source.select_from(table),
    )


def booked_incoming(organization_id: int, period: str, export_id: int):
    """Condition on incoming_invoices: the month's documents the export booked (not skipped)."""
    return and_(
        incoming_in_month(organization_id, period),
        incoming_invoices.c.id.not_in(_skipped_ids(export_id, export_items.c.incoming_invoice_id)),
    )
