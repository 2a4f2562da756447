"""The sales ledger as the areas read it: a sales invoice with its customer and, for a credit note,
the invoice it corrects (BT-25, BT-26; billing/domain/credit_notes.py), its lines and its VAT breakdown.

The documents, the deliveries, the exports, the dunning notices and the QuickBooks syncs read their
invoices here, each the fields it needs, many invoices per query (CHUNK ids to a query). A field is
named as a row carries it: the invoice's columns under their own names (`invoice_number`,
`gross_total`, ...), the customer's with `customer_` before them (`customer_name`,
`customer_email`; `customer_number` as it is), the corrected invoice's number and date as
`corrects_number` and `corrects_date`. A reader that needs another name for a field says so
(`fields(invoice_total="gross_total")`). The customer is joined when a field of it is used, the
corrected invoice when one of its is: a read pays for no join it does not need. Rows that point at
invoices (QuickBooks' push queue, its mappings) read their invoices' fields in the same query:
`joined_to(queue, queue.c.sales_invoice_id, *names)`. The credit notes of invoices are read the
other way round (`read_credit_notes`). An invoice a migration brought in is history
(`not_history`): whatever picks invoices up on its own leaves it out.

The ledger is read here, never written: whoever writes an invoice (billing, the payment pulls, the
dunning) or its own state about one (a queue row, a sync mapping) does so where it always did.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import Select, select
from sqlalchemy.engine import Connection, Row, RowMapping
from sqlalchemy.sql.elements import ColumnElement, Label
from sqlalchemy.sql.expression import FromClause

from invoice_pipelines.core.chunks import chunked
from invoice_pipelines.db.tables import (
    customers,
    sales_invoice_lines,
    sales_invoice_taxes,
    sales_invoices,
)

# ids in one IN list: far below PostgreSQL's 65,535 parameters and SQLite's 32,766
CHUNK = 5000

# a credit note's `corrects_invoice_id` names the invoice it corrects (no foreign key: tables.py)
corrected = sales_invoices.alias("corrected")


def _customer_field(column: str) -> str:
    return column if column.startswith("customer_") else f"customer_{column}"


INVOICE_FIELDS: dict[str, ColumnElement] = {column.name: column for column in sales_invoices.c}
# the customer's id is the invoice's `customer_id`; its organization the invoice's
CUSTOMER_FIELDS: dict[str, ColumnElement] = {
    _customer_field(column.name): column
    for column in customers.c
    if column.name not in ("id", "organization_id")
}
CORRECTED_FIELDS: dict[str, ColumnElement] = {
    "corrects_number": corrected.c.invoice_number,
    "corrects_date": corrected.c.issue_date,
}
FIELDS: dict[str, ColumnElement] = {**INVOICE_FIELDS, **CUSTOMER_FIELDS, **CORRECTED_FIELDS}


def field(name: str) -> ColumnElement:
    """The column of one field, for a condition, an order or a label of the reader's own."""
    try:
        return FIELDS[name]
    except KeyError:
        raise KeyError(f"the sales ledger has no field {name!r}") from None


def fields(*names: str, **renamed: str) -> list[Label]:
    """The fields `names` labelled with their names, then the fields `renamed` names
    (label=field) under the labels given."""
    return [field(name).label(name) for name in names] + [
        field(name).label(label) for label, name in renamed.items()
    ]


def not_history() -> ColumnElement:
    """The condition of an invoice that is today's work: not history (`history`, 0036: brought in
    by a migration, exported and reported like any other). What a sensor, a schedule or a batch
    picks up on its own to render, send, push or dun adds it; a person who names an invoice
    does not."""
    return sales_invoices.c.history.is_(False)


def joined(*names: str) -> FromClause:
    """`sales_invoices` joined to what the fields `names` come from: the customer (every invoice
    has one), the corrected invoice (outer: only a credit note names one)."""
    wanted = set(names)
    source: FromClause = sales_invoices
    if wanted & CUSTOMER_FIELDS.keys():
        source = source.join(customers, customers.c.id == sales_invoices.c.customer_id)
    if wanted & CORRECTED_FIELDS.keys():
        source = source.outerjoin(corrected, corrected.c.id == sales_invoices.c.corrects_invoice_id)
    return source


def joined_to(source: FromClause, invoice_id: ColumnElement, *names: str) -> FromClause:
    """`source` joined to the invoices its column `invoice_id` names, and to what the fields
    `names` come from (as `joined`): one query reads rows that point at invoices with them."""
    return source.join(joined(*names), sales_invoices.c.id == invoice_id)


def select_invoices(*names: str, **renamed: str) -> Select:
    """SELECT of the fields (as `fields` labels them) from what they need joined; the reader adds
    its conditions and order."""
    return select(*fields(*names, **renamed)).select_from(joined(*names, *renamed.values()))


def read_invoices(
    conn: Connection,
    organization_id: int,
    invoice_ids: Iterable[int],
    *names: str,
    **renamed: str,
) -> list[Row]:
    """The organization's invoices among `invoice_ids` with the fields asked for, in no particular
    order (ids it does not have are left out); one query per CHUNK ids."""
    return _read_where(conn, organization_id, sales_invoices.c.id, invoice_ids, names, renamed)


def read_credit_notes(
    conn: Connection,
    organization_id: int,
    invoice_ids: Iterable[int],
    *names: str,
    **renamed: str,
) -> list[Row]:
    """The organization's credit notes of the invoices `invoice_ids` (their `corrects_invoice_id`
    among them), with the fields asked for, in no particular order; one query per CHUNK ids."""
    column = sales_invoices.c.corrects_invoice_id
    return _read_where(conn, organization_id, column, invoice_ids, names, renamed)


def _read_where(conn, organization_id, column, ids, names, renamed) -> list[Row]:
    """The organization's invoices whose `column` is among `ids`, one query per CHUNK ids."""
    query = select_invoices(*names, **renamed)
    return [
        row
        for chunk in chunked(ids, CHUNK)
        for row in conn.execute(
            query.where(sales_invoices.c.organization_id == organization_id, column.in_(chunk))
        ).all()
    ]


def read_lines(conn: Connection, invoice_ids: Iterable[int]) -> dict[int, list[RowMapping]]:
    """Each invoice's `sales_invoice_lines` rows in line order; one query per CHUNK ids."""
    lines: dict[int, list[RowMapping]] = defaultdict(list)
    for chunk in chunked(invoice_ids, CHUNK):
        for row in conn.execute(
            select(sales_invoice_lines)
            .where(sales_invoice_lines.c.sales_invoice_id.in_(chunk))
            .order_by(sales_invoice_lines.c.sales_invoice_id, sales_invoice_lines.c.line_no)
        ).mappings():
            lines[row["sales_invoice_id"]].append(row)
    return lines


def read_vat_breakdowns(conn: Connection, invoice_ids: Iterable[int]) -> dict[int, list[tuple]]:
    """Each invoice's VAT breakdown, (category, rate, basis, amount) in the order it was stored;
    one query per CHUNK ids."""
    t = sales_invoice_taxes.c
    taxes: dict[int, list[tuple]] = defaultdict(list)
    for chunk in chunked(invoice_ids, CHUNK):
        for invoice_id, category, rate, basis, amount in conn.execute(
            select(t.sales_invoice_id, t.vat_category, t.vat_rate, t.basis, t.amount)
            .where(t.sales_invoice_id.in_(chunk))
            .order_by(t.id)
        ):
            taxes[invoice_id].append((category, rate, basis, amount))
    return taxes
