"""One chunk of a batch job in Python Decimal: SQLite orders, and customer-driven jobs on both engines."""

# SQLite stores NUMERIC as floats, so no money arithmetic happens in its SQL: a few set-based reads
# bring the chunk's orders and lines into Python, `core/totals.py` computes, executemany writes.
# The eligibility rules mirror `chunk_postgres.py` one for one (the tests hold them to it).

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from invoice_pipelines.billing.domain.contract import (
    INVOICEABLE_STATUSES,
    SKIP_CODES,
    ChunkContext,
    ChunkOutcome,
    item_message,
)
from invoice_pipelines.core.money import to_decimal
from invoice_pipelines.core.totals import LineAmounts, compute_totals, vat_problem
from invoice_pipelines.db.tables import (
    batch_job_items,
    customers,
    items,
    sales_invoice_lines,
    sales_invoice_taxes,
    sales_invoices,
    sales_order_lines,
    sales_orders,
)
from invoice_pipelines.queue.domain.item_rows import record_items


@dataclass(frozen=True)
class DraftLine:
    line_no: int
    line_type: str
    item_id: int | None
    description: str
    quantity: Decimal
    unit_price: Decimal
    vat_rate: Decimal
    vat_category: str
    is_stock_item: bool


@dataclass(frozen=True)
class Draft:
    """An invoice about to be written for one batch item."""

    batch_item_id: int
    position: int
    customer_id: int
    currency: str
    lines: list[DraftLine]
    sales_order_id: int | None = None


@dataclass(frozen=True)
class Rejection:
    """A batch item that gets no invoice, and why."""

    batch_item_id: int
    position: int
    code: str
    detail: object = None
    sales_order_id: int | None = None
    customer_id: int | None = None
    existing_invoice_id: int | None = None


def _pending_items(ctx: ChunkContext):  # a Select
    return (
        select(
            batch_job_items.c.id,
            batch_job_items.c.position,
            batch_job_items.c.sales_order_id,
            batch_job_items.c.customer_id,
            batch_job_items.c.payload,
        )
        .where(
            batch_job_items.c.batch_job_id == ctx.job_id,
            batch_job_items.c.position > ctx.after_position,
            batch_job_items.c.position <= ctx.after_position + ctx.limit,
            batch_job_items.c.status == "pending",
        )
        .order_by(batch_job_items.c.position)
    )


def _line_problem(lines: list[Any]) -> tuple[str, object] | None:
    """Item and VAT checks on an order's (or a request's) lines, in the order PostgreSQL applies them."""
    unknown = [ln.item_id for ln in lines if ln.item_id is not None and ln.item_found is None]
    if unknown:
        return "unknown_item", min(unknown)
    inactive = [ln.sku for ln in lines if ln.item_found is not None and not ln.item_active]
    if inactive:
        return "inactive_item", min(inactive)
    bad_vat = [
        f"{ln.vat_category} {to_decimal(ln.vat_rate):.2f}"
        for ln in lines
        if vat_problem(ln.vat_category, to_decimal(ln.vat_rate)) is not None
    ]
    if bad_vat:
        return "invalid_vat", min(bad_vat)
    return None


def invoice_sales_orders(conn: Connection, ctx: ChunkContext) -> ChunkOutcome:
    """Invoice the job's next pending sales orders (the Python twin of chunk_postgres)."""
    batch = conn.execute(_pending_items(ctx)).all()
    if not batch:
        return ChunkOutcome()
    chunk_orders = (
        _pending_items(ctx).with_only_columns(batch_job_items.c.sales_order_id).scalar_subquery()
    )
    order_rows = conn.execute(
        select(
            sales_orders.c.id,
            sales_orders.c.status,
            sales_orders.c.customer_id,
            sales_orders.c.currency,
            customers.c.id.label("customer_found"),
            customers.c.active.label("customer_active"),
            customers.c.customer_number,
            sales_invoices.c.id.label("existing_invoice_id"),
        )
        .select_from(
            sales_orders.outerjoin(
                customers,
                (customers.c.id == sales_orders.c.customer_id)
                & (customers.c.organization_id == ctx.organization_id),
            ).outerjoin(sales_invoices, sales_invoices.c.sales_order_id == sales_orders.c.id)
        )
        .where(
            sales_orders.c.organization_id == ctx.organization_id,
            sales_orders.c.id.in_(chunk_orders),
        )
    ).all()
    orders = {r.id: r for r in order_rows}
    lines: dict[int, list[Any]] = defaultdict(list)
    for ln in conn.execute(
        select(
            sales_order_lines,
            items.c.id.label("item_found"),
            items.c.active.label("item_active"),
            items.c.sku,
            items.c.is_stock_item,
        )
        .select_from(
            sales_order_lines.outerjoin(
                items,
                (items.c.id == sales_order_lines.c.item_id)
                & (items.c.organization_id == ctx.organization_id),
            )
        )
        .where(sales_order_lines.c.sales_order_id.in_(chunk_orders))
        .order_by(sales_order_lines.c.sales_order_id, sales_order_lines.c.line_no)
    ):
        lines[ln.sales_order_id].append(ln)

    drafts: list[Draft] = []
    rejections: list[Rejection] = []
    for item in batch:
        order = orders.get(item.sales_order_id)
        problem = _order_problem(item, order, lines.get(item.sales_order_id, []))
        if problem is not None:
            code, detail = problem
            rejections.append(
                Rejection(
                    item.id,
                    item.position,
                    code,
                    detail,
                    sales_order_id=item.sales_order_id,
                    customer_id=order.customer_id if order is not None else None,
                    existing_invoice_id=order.existing_invoice_id if order is not None else None,
                )
            )
            continue
        drafts.append(
            Draft(
                batch_item_id=item.id,
                position=item.position,
                customer_id=order.customer_id,
                currency=order.currency,
                sales_order_id=order.id,
                lines=[
                    DraftLine(
                        line_no=ln.line_no,
                        line_type=ln.line_type,
                        item_id=ln.item_id,
                        description=ln.description,
                        quantity=ln.quantity,
                        unit_price=ln.unit_price,
                        vat_rate=ln.vat_rate,
                        vat_category=ln.vat_category,
                        is_stock_item=bool(ln.is_stock_item) and ln.line_type == "item",
                    )
                    for ln in lines[order.id]
                ],
            )
        )
    return write_chunk(conn, ctx, drafts, rejections)


def _order_problem(item: Any, order: Any, order_lines: list[Any]) -> tuple[str, object] | None:
    if order is None:
        return "unknown_order", (item.payload or {}).get("sales_order_id", item.sales_order_id)
    if order.status == "invoiced" or order.existing_invoice_id is not None:
        return "already_invoiced", None
    if order.status not in INVOICEABLE_STATUSES:
        return "wrong_status", order.status
    if order.customer_found is None:
        return "unknown_customer", order.customer_id
    if not order.customer_active:
        return "inactive_customer", order.customer_number
    if not order_lines:
        return "no_lines", None
    return _line_problem(order_lines)


@dataclass(frozen=True)
class _RequestLine:
    """A customer-driven line with its item looked up (same shape the checks expect)."""

    item_id: int | None
    item_found: int | None
    item_active: bool
    sku: str | None
    vat_category: str
    vat_rate: Decimal


def invoice_customer_lines(conn: Connection, ctx: ChunkContext) -> ChunkOutcome:
    """Invoice the job's next customers with the items, quantities and prices they were given."""
    batch = conn.execute(_pending_items(ctx)).all()
    if not batch:
        return ChunkOutcome()
    currency = ctx.currency
    customer_ids = {int(b.payload["customer_id"]) for b in batch}
    item_ids = {
        ln["item_id"] for b in batch for ln in b.payload["lines"] if ln.get("item_id") is not None
    }
    known_customers = {
        r.id: r
        for r in conn.execute(
            select(customers.c.id, customers.c.active, customers.c.customer_number).where(
                customers.c.organization_id == ctx.organization_id, customers.c.id.in_(customer_ids)
            )
        )
    }
    known_items = {
        r.id: r
        for r in conn.execute(
            select(
                items.c.id,
                items.c.sku,
                items.c.name,
                items.c.active,
                items.c.unit_price,
                items.c.vat_rate,
                items.c.vat_category,
                items.c.is_stock_item,
            )
            .where(items.c.organization_id == ctx.organization_id, items.c.id.in_(item_ids))
            # invoice lines refer to items without a foreign key: the items stay until the commit
            # (PostgreSQL; SQLite's writer holds the database)
            .with_for_update(read=True, key_share=True)
        )
    }
    drafts: list[Draft] = []
    rejections: list[Rejection] = []
    for b in batch:
        customer_id = int(b.payload["customer_id"])
        customer = known_customers.get(customer_id)
        if customer is None:
            rejections.append(Rejection(b.id, b.position, "unknown_customer", customer_id))
            continue
        if not customer.active:
            rejections.append(
                Rejection(
                    b.id,
                    b.position,
                    "inactive_customer",
                    customer.customer_number,
                    customer_id=customer_id,
                )
            )
            continue
        draft_lines: list[DraftLine] = []
        checks: list[_RequestLine] = []
        for line_no, spec in enumerate(b.payload["lines"], start=1):
            item = known_items.get(spec.get("item_id"))
            rate = (
                to_decimal(spec["vat_rate"])
                if "vat_rate" in spec
                else (item.vat_rate if item else Decimal(0))
            )
            category = spec.get("vat_category") or (item.vat_category if item else "S")
            checks.append(
                _RequestLine(
                    item_id=spec.get("item_id"),
                    item_found=item.id if item else None,
                    item_active=bool(item.active) if item else False,
                    sku=item.sku if item else None,
                    vat_category=category,
                    vat_rate=rate,
                )
            )
            if spec.get("item_id") is not None and item is None:
                continue
            draft_lines.append(
                DraftLine(
                    line_no=line_no,
                    line_type=spec["line_type"],
                    item_id=spec.get("item_id"),
                    description=spec.get("description") or (item.name if item else ""),
                    quantity=to_decimal(spec["quantity"]),
                    unit_price=to_decimal(spec["unit_price"])
                    if "unit_price" in spec
                    else item.unit_price,
                    vat_rate=rate,
                    vat_category=category,
                    is_stock_item=bool(
                        item is not None and item.is_stock_item and spec["line_type"] == "item"
                    ),
                )
            )
        problem = _line_problem(checks)
        if problem is not None:
            rejections.append(
                Rejection(b.id, b.position, problem[0], problem[1], customer_id=customer_id)
            )
            continue
        drafts.append(Draft(b.id, b.position, customer_id, currency, draft_lines))
    return write_chunk(conn, ctx, drafts, rejections)


def write_chunk(
    conn: Connection, ctx: ChunkContext, drafts: list[Draft], rejections: list[Rejection]
) -> ChunkOutcome:
    """Write the drafts as invoices numbered last_value+1.. in position order; record every item."""
    drafts = sorted(drafts, key=lambda d: d.position)
    invoice_rows = []
    computed = []
    for n, draft in enumerate(drafts, start=1):
        counter = ctx.last_value + n
        totals = compute_totals(
            LineAmounts(ln.quantity, ln.unit_price, ln.vat_category, ln.vat_rate)
            for ln in draft.lines
        )
        computed.append(totals)
        invoice_rows.append(
            {
                "organization_id": ctx.organization_id,
                "invoice_number": ctx.number_format.format(counter, ctx.issue_date),
                "sequence_number": counter,
                "sales_order_id": draft.sales_order_id,
                "customer_id": draft.customer_id,
                "batch_job_id": ctx.job_id,
                "issue_date": ctx.issue_date,
                "due_date": ctx.due_date,
                "currency": draft.currency,
                "net_total": totals.net_total,
                "tax_total": totals.tax_total,
                "gross_total": totals.gross_total,
                "amount_due": totals.amount_due,
                "created_by": ctx.created_by,
                "created_at": ctx.now,
                "updated_at": ctx.now,
            }
        )
    invoice_ids: dict[int, int] = {}
    if invoice_rows:
        conn.execute(insert(sales_invoices), invoice_rows)
        by_counter = dict(
            conn.execute(
                select(sales_invoices.c.sequence_number, sales_invoices.c.id).where(
                    sales_invoices.c.organization_id == ctx.organization_id,
                    sales_invoices.c.sequence_number.between(
                        ctx.last_value + 1, ctx.last_value + len(drafts)
                    ),
                )
            ).all()
        )
        line_rows = []
        tax_rows = []
        stock: dict[int, Decimal] = defaultdict(Decimal)
        for n, (draft, totals) in enumerate(zip(drafts, computed, strict=True), start=1):
            invoice_id = by_counter[ctx.last_value + n]
            invoice_ids[draft.batch_item_id] = invoice_id
            for ln, net in zip(draft.lines, totals.line_nets, strict=True):
                line_rows.append(
                    {
                        "organization_id": ctx.organization_id,
                        "sales_invoice_id": invoice_id,
                        "line_no": ln.line_no,
                        "line_type": ln.line_type,
                        "item_id": ln.item_id,
                        "description": ln.description,
                        "quantity": ln.quantity,
                        "unit_price": ln.unit_price,
                        "net_amount": net,
                        "vat_rate": ln.vat_rate,
                        "vat_category": ln.vat_category,
                    }
                )
                if ln.is_stock_item and ln.item_id is not None:
                    stock[ln.item_id] += ln.quantity
            for vat in totals.breakdown:
                tax_rows.append(
                    {
                        "organization_id": ctx.organization_id,
                        "sales_invoice_id": invoice_id,
                        "vat_category": vat.vat_category,
                        "vat_rate": vat.vat_rate,
                        "basis": vat.basis,
                        "amount": vat.amount,
                    }
                )
        conn.execute(insert(sales_invoice_lines), line_rows)
        conn.execute(insert(sales_invoice_taxes), tax_rows)
        order_ids = [{"b_id": d.sales_order_id} for d in drafts if d.sales_order_id is not None]
        if order_ids:
            conn.execute(
                update(sales_orders)
                .where(sales_orders.c.id == bindparam("b_id"))
                .values(status="invoiced", invoiced_at=ctx.now, updated_at=ctx.now),
                order_ids,
            )
        _take_from_stock(conn, ctx, stock)

    outcome = ChunkOutcome(processed=len(drafts) + len(rejections), succeeded=len(drafts))
    item_rows = [
        {
            "b_id": d.batch_item_id,
            "b_status": "succeeded",
            "b_code": None,
            "b_message": None,
            "b_invoice": invoice_ids[d.batch_item_id],
        }
        for d in drafts
    ]
    for r in sorted(rejections, key=lambda r: r.position):
        skipped = r.code in SKIP_CODES
        message = item_message(r.code, r.detail)
        item_rows.append(
            {
                "b_id": r.batch_item_id,
                "b_status": "skipped" if skipped else "failed",
                "b_code": r.code,
                "b_message": message,
                "b_invoice": r.existing_invoice_id,
            }
        )
        if skipped:
            outcome.skipped += 1
        else:
            outcome.failed += 1
            outcome.errors.append(
                {
                    "position": r.position,
                    "sales_order_id": r.sales_order_id,
                    "customer_id": r.customer_id,
                    "code": r.code,
                    "message": message,
                }
            )
    record_items(conn, item_rows, ctx.now)
    return outcome


def _take_from_stock(conn: Connection, ctx: ChunkContext, stock: dict[int, Decimal]) -> None:
    if not stock:
        return
    rows = [{"b_id": item_id, "b_qty": qty} for item_id, qty in sorted(stock.items())]
    if conn.dialect.name == "postgresql":
        # exact NUMERIC arithmetic in the database, no read-modify-write race with other writers
        conn.execute(
            update(items)
            .where(items.c.id == bindparam("b_id"))
            .values(
                inventory_quantity=items.c.inventory_quantity - bindparam("b_qty"),
                updated_at=ctx.now,
            ),
            rows,
        )
        return
    # SQLite: read, subtract in Decimal, write back; the transaction holds the write lock
    current = dict(
        conn.execute(
            select(items.c.id, items.c.inventory_quantity).where(items.c.id.in_(list(stock)))
        ).all()
    )
    conn.execute(
        update(items)
        .where(items.c.id == bindparam("b_id"))
        .values(inventory_quantity=bindparam("b_new"), updated_at=ctx.now),
        [{"b_id": i, "b_new": current[i] - q} for i, q in sorted(stock.items()) if i in current],
    )
