"""Test data for billing: an organization with customers, items and sales orders, built fast."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import Engine, func, insert, select

from invoice_pipelines.billing.domain import chunk_postgres, chunk_python
from invoice_pipelines.billing.domain.contract import ChunkContext
from invoice_pipelines.db.tables import (
    customers,
    items,
    sales_invoice_lines,
    sales_invoice_taxes,
    sales_invoices,
    sales_order_lines,
    sales_orders,
)
from invoice_pipelines.db.tenancy import tenant_transaction

D = Decimal
_numbers = itertools.count(1)

# sku -> (price, VAT rate, category, stock item, inventory)
ITEMS: dict[str, tuple[Decimal, Decimal, str, bool, Decimal]] = {
    "TOOL": (D("24.90"), D("19.00"), "S", True, D("1000")),
    "BOOK": (D("39.95"), D("7.00"), "S", True, D("500")),
    "HOUR": (D("78.50"), D("19.00"), "S", False, D("0")),
    "EXPORT": (D("100.00"), D("0.00"), "AE", False, D("0")),
    "ZERO": (D("15.00"), D("0.00"), "Z", False, D("0")),
    "ODD": (D("0.3333"), D("19.00"), "S", True, D("100")),
}


@dataclass
class Shop:
    """One organization's master data in a test database."""

    engine: Engine
    org: dict
    customer_ids: list[int]
    item_ids: dict[str, int]
    order_ids: list[int] = field(default_factory=list)

    @property
    def org_id(self) -> int:
        return self.org["id"]

    def add_order(
        self,
        lines: Sequence[tuple],
        *,
        status: str = "reviewed",
        customer: int = 0,
        order_date: date = date(2026, 11, 2),
        currency: str = "EUR",
    ) -> int:
        """An order with `lines`: (sku, quantity) or (sku, quantity, unit_price), or
        ("discount", amount, vat_category, vat_rate) for a discount line (negative price)."""
        with tenant_transaction(self.engine, self.org_id, write=True) as conn:
            order_id = conn.execute(
                insert(sales_orders)
                .values(
                    organization_id=self.org_id,
                    order_number=f"SO-{next(_numbers):06d}",
                    customer_id=self.customer_ids[customer],
                    order_date=order_date,
                    status=status,
                    currency=currency,
                )
                .returning(sales_orders.c.id)
            ).scalar_one()
            rows = [self._line(order_id, n, spec) for n, spec in enumerate(lines, start=1)]
            if rows:
                conn.execute(insert(sales_order_lines), rows)
        self.order_ids.append(order_id)
        return order_id

    def _line(self, order_id: int, line_no: int, spec: tuple) -> dict:
        base = {"organization_id": self.org_id, "sales_order_id": order_id, "line_no": line_no}
        if spec[0] == "discount":
            _, amount, category, rate = spec
            return {
                **base,
                "line_type": "discount",
                "item_id": None,
                "description": "Discount",
                "quantity": D(1),
                "unit_price": -D(amount),
                "vat_rate": D(rate),
                "vat_category": category,
            }
        sku, quantity, *price = spec
        unit_price, rate, category, _stock, _inv = ITEMS[sku]
        return {
            **base,
            "line_type": "item",
            "item_id": self.item_ids[sku],
            "description": sku.title(),
            "quantity": D(quantity),
            "unit_price": D(price[0]) if price else unit_price,
            "vat_rate": rate,
            "vat_category": category,
        }

    def add_many(
        self, count: int, lines: Sequence[tuple] = (("TOOL", 2), ("BOOK", 1), ("HOUR", "1.5"))
    ) -> list[int]:
        """`count` reviewed orders with the same lines, in one transaction (for the bigger tests)."""
        with tenant_transaction(self.engine, self.org_id, write=True) as conn:
            first = next(_numbers)
            for _ in range(count):
                next(_numbers)
            rows = [
                {
                    "organization_id": self.org_id,
                    "order_number": f"SO-{first:06d}-{n:06d}",
                    "customer_id": self.customer_ids[0],
                    "order_date": date(2026, 11, 2),
                    "status": "reviewed",
                }
                for n in range(count)
            ]
            conn.execute(insert(sales_orders), rows)
            ids = list(
                conn.execute(
                    select(sales_orders.c.id)
                    .where(sales_orders.c.order_number.like(f"SO-{first:06d}-%"))
                    .order_by(sales_orders.c.id)
                ).scalars()
            )
            conn.execute(
                insert(sales_order_lines),
                [
                    self._line(order_id, n, spec)
                    for order_id in ids
                    for n, spec in enumerate(lines, start=1)
                ],
            )
        self.order_ids.extend(ids)
        return ids

    def add_orders(self, count: int, **kwargs) -> list[int]:
        return [
            self.add_order([("TOOL", 2), ("BOOK", 1), ("HOUR", "1.5")], **kwargs)
            for _ in range(count)
        ]

    def set_active(self, table, row_id: int, active: bool) -> None:
        with tenant_transaction(self.engine, self.org_id, write=True) as conn:
            conn.execute(table.update().where(table.c.id == row_id).values(active=active))

    def invoices(self) -> list[dict]:
        with tenant_transaction(self.engine, self.org_id) as conn:
            return [
                dict(r)
                for r in conn.execute(
                    select(sales_invoices)
                    .where(sales_invoices.c.organization_id == self.org_id)
                    .order_by(sales_invoices.c.sequence_number)
                ).mappings()
            ]

    def invoice_lines(self, invoice_id: int) -> list[dict]:
        with tenant_transaction(self.engine, self.org_id) as conn:
            return [
                dict(r)
                for r in conn.execute(
                    select(sales_invoice_lines)
                    .where(sales_invoice_lines.c.sales_invoice_id == invoice_id)
                    .order_by(sales_invoice_lines.c.line_no)
                ).mappings()
            ]

    def breakdown(self, invoice_id: int) -> list[tuple[str, Decimal, Decimal, Decimal]]:
        with tenant_transaction(self.engine, self.org_id) as conn:
            return [
                (r.vat_category, r.vat_rate, r.basis, r.amount)
                for r in conn.execute(
                    select(sales_invoice_taxes)
                    .where(sales_invoice_taxes.c.sales_invoice_id == invoice_id)
                    .order_by(sales_invoice_taxes.c.vat_category, sales_invoice_taxes.c.vat_rate)
                )
            ]

    def order_status(self, order_id: int) -> str:
        with tenant_transaction(self.engine, self.org_id) as conn:
            return conn.execute(
                select(sales_orders.c.status).where(sales_orders.c.id == order_id)
            ).scalar_one()

    def inventory(self, sku: str) -> Decimal:
        with tenant_transaction(self.engine, self.org_id) as conn:
            return conn.execute(
                select(items.c.inventory_quantity).where(items.c.id == self.item_ids[sku])
            ).scalar_one()

    def invoice_count_per_order(self) -> dict[int, int]:
        with tenant_transaction(self.engine, self.org_id) as conn:
            return dict(
                conn.execute(
                    select(sales_invoices.c.sales_order_id, func.count())
                    .where(sales_invoices.c.organization_id == self.org_id)
                    .group_by(sales_invoices.c.sales_order_id)
                ).all()
            )


def make_shop(db, **org_values) -> Shop:  # a TestDatabase
    """A fresh organization with two customers and the ITEMS catalogue."""
    org = db.new_organization(**org_values)
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        customer_ids = [
            conn.execute(
                insert(customers)
                .values(organization_id=org["id"], customer_number=f"K-{n}", name=f"Customer {n}")
                .returning(customers.c.id)
            ).scalar_one()
            for n in (1, 2)
        ]
        item_ids = {
            sku: conn.execute(
                insert(items)
                .values(
                    organization_id=org["id"],
                    sku=sku,
                    name=sku.title(),
                    unit_price=price,
                    vat_rate=rate,
                    vat_category=category,
                    is_stock_item=stock,
                    inventory_quantity=inventory,
                )
                .returning(items.c.id)
            ).scalar_one()
            for sku, (price, rate, category, stock, inventory) in ITEMS.items()
        }
    return Shop(db.engine, org, customer_ids, item_ids)


def hook_chunk_writes(kind: str, after_writes: Callable[[ChunkContext], None]):
    """(module, name, wrapper): patch module.name with wrapper to act inside every chunk.

    The wrapper does the chunk's writes, then calls after_writes(ctx) before the chunk commits;
    `ctx.last_value` is where the chunk's numbers start. On PostgreSQL that is `write_chunk`, which
    both the one-chunk-at-a-time path and the chunks in flight of `pipeline.py` call.
    """
    module, name = (
        (chunk_postgres, "write_chunk")
        if kind == "postgresql"
        else (chunk_python, "invoice_sales_orders")
    )
    real = getattr(module, name)

    def wrapper(conn, ctx, *rest):
        outcome = real(conn, ctx, *rest)
        after_writes(ctx)
        return outcome

    return module, name, wrapper
