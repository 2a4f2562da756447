"""What `invoice-pipelines invoices list` shows: an organization's sales invoices to the customers
a person names (by a part of the name, any case, or by the customer number), newest first, each
with its number, date, total, status and how far its delivery got (the newest delivery row: its
channel and state, or "not sent"). It is how a person finds the one invoice to hand to `peppol
send` (docs/demo.md's Peppol step) without SQL.

A read command: the sales ledger's fields in one query (the newest delivery joined by a
correlated subquery), no document writer, no Dagster (test_invoice_listing.py names what it may
load). Exit codes: 0 listed (none too), 1 no customer of the organization has that name."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine

from invoice_pipelines.area_parts import run_verb
from invoice_pipelines.core.text import terminal_text
from invoice_pipelines.db.tables import customers, deliveries, sales_invoices
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.sales_ledger import field, fields, joined

LISTED, NO_CUSTOMER = 0, 1
# what `--delivery` filters by: the newest delivery's state, or none at all
NOT_SENT = "not-sent"
# one line of the listing: an invoice's cells, or HEADER above them (a format's precision cuts a
# text to its column)
LINE = "{:>7}  {:<20.20} {:<10}  {:<30.30} {:>12} {:<3}  {:<14} {}"
HEADER = ("id", "number", "date", "customer", "gross", "cur", "status", "delivery")
NAMES = ("id", "invoice_number", "issue_date", "gross_total", "currency", "status")
CUSTOMER_NAMES = ("customer_number", "customer_name")
# the invoice's deliveries, among which the newest is the one joined
EARLIER = deliveries.alias("earlier")


@dataclass(frozen=True)
class Listed:
    """The invoices shown (newest first), whether more matched than `limit`, and how many
    customers the name matched."""

    invoices: list[dict]
    more: bool
    customers: int


def _like(text: str) -> str:
    """A LIKE pattern that finds `text` anywhere, its own % and _ taken as they are."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_customer_invoices(
    engine: Engine,
    organization_id: int,
    customer: str,
    *,
    status: str | None = None,
    delivery: str | None = None,
    limit: int = 50,
) -> Listed:
    """The organization's invoices to the customers whose name holds `customer` (any case) or
    whose number is it; `status` the invoice's, `delivery` the newest delivery's state
    (NOT_SENT: none)."""
    c, d = customers.c, deliveries.c
    named = or_(c.name.ilike(_like(customer.strip()), escape="\\"), c.customer_number == customer)
    newest = (
        select(func.max(EARLIER.c.id))
        .where(EARLIER.c.sales_invoice_id == field("id"))
        .correlate(sales_invoices)
        .scalar_subquery()
    )
    query = (
        select(*fields(*NAMES, *CUSTOMER_NAMES), d.channel, d.status.label("delivery"))
        .select_from(joined(*CUSTOMER_NAMES).outerjoin(deliveries, d.id == newest))
        .where(field("organization_id") == organization_id, named)
        .order_by(field("issue_date").desc(), field("id").desc())
        .limit(limit + 1)
    )
    if status is not None:
        query = query.where(field("status") == status)
    if delivery == NOT_SENT:
        query = query.where(d.id.is_(None))
    elif delivery is not None:
        query = query.where(d.status == delivery)
    with tenant_transaction(engine, organization_id) as conn:
        rows = [dict(row) for row in conn.execute(query).mappings()]
        matched = conn.execute(
            select(func.count()).where(c.organization_id == organization_id, named)
        ).scalar_one()
    return Listed(rows[:limit], len(rows) > limit, matched)


def run_invoices_command(args: argparse.Namespace) -> int:
    """The command the table names: its verb's function."""
    return run_verb(args, VERBS)


def run_list(args: argparse.Namespace) -> int:
    engine = args.resources.database
    org = args.organization
    listed = list_customer_invoices(
        engine,
        org.id,
        args.customer,
        status=args.status,
        delivery=args.delivery,
        limit=args.limit,
    )
    if not listed.customers:
        print(
            terminal_text(
                f"invoice-pipelines invoices list: {org.slug} has no customer named "
                f"{args.customer!r}"
            )
        )
        return NO_CUSTOMER
    if args.json:
        for invoice in listed.invoices:
            print(terminal_text(json.dumps(_shown(invoice), ensure_ascii=False)))
        return LISTED
    if not listed.invoices:
        print(terminal_text(f"no invoices of a customer named {args.customer!r} match"))
        return LISTED
    print(LINE.format(*HEADER).rstrip())
    for invoice in listed.invoices:
        shown = _shown(invoice)
        print(terminal_text(LINE.format(*(str(shown[key]) for key in SHOWN)).rstrip()))
    if listed.more:
        print(f"... and more: the newest {args.limit} shown (--limit)")
    return LISTED


# the keys of `_shown` in HEADER's order
SHOWN = ("id", "number", "date", "customer", "gross", "currency", "status", "delivery")


def _shown(invoice: dict) -> dict:
    """One invoice as the command prints it (its JSON line has these keys)."""
    delivered = invoice["delivery"]
    return {
        "id": invoice["id"],
        "number": invoice["invoice_number"],
        "date": invoice["issue_date"].isoformat(),
        "customer": invoice["customer_name"],
        "customer_number": invoice["customer_number"],
        "gross": f"{invoice['gross_total']:.2f}",
        "currency": invoice["currency"],
        "status": invoice["status"],
        "delivery": f"{invoice['channel']} {delivered}" if delivered else "not sent",
    }


VERBS = {"list": run_list}
