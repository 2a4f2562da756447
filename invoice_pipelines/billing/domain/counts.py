"""What the billing assets report about an organization: its sales orders by status, customers and
items, and what one batch job invoiced. Plain queries; billing/assets.py makes metadata of them."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from invoice_pipelines.db.tables import customers, items, sales_invoices, sales_orders
from invoice_pipelines.db.tenancy import tenant_transaction


def order_counts(engine: Engine, organization_id: int) -> tuple[dict[str, int], int, int]:
    """({order status: count}, customers, items) of an organization."""
    with tenant_transaction(engine, organization_id) as conn:
        by_status = dict(
            conn.execute(
                select(sales_orders.c.status, func.count())
                .where(sales_orders.c.organization_id == organization_id)
                .group_by(sales_orders.c.status)
            ).all()
        )
        n_customers = conn.execute(
            select(func.count())
            .select_from(customers)
            .where(customers.c.organization_id == organization_id)
        ).scalar_one()
        n_items = conn.execute(
            select(func.count())
            .select_from(items)
            .where(items.c.organization_id == organization_id)
        ).scalar_one()
    return by_status, n_customers, n_items


def invoiced_amounts(
    engine: Engine, organization_id: int, job_id: int
) -> dict[str, dict[str, str]]:
    """Net, VAT and gross of the invoices a batch job created, per currency (exact decimals)."""
    with tenant_transaction(engine, organization_id) as conn:
        rows = conn.execute(
            select(
                sales_invoices.c.currency,
                func.sum(sales_invoices.c.net_total),
                func.sum(sales_invoices.c.tax_total),
                func.sum(sales_invoices.c.gross_total),
            )
            .where(
                sales_invoices.c.organization_id == organization_id,
                sales_invoices.c.batch_job_id == job_id,
            )
            .group_by(sales_invoices.c.currency)
        ).all()
    return {
        currency: {"net": f"{net:.2f}", "vat": f"{vat:.2f}", "gross": f"{gross:.2f}"}
        for currency, net, vat, gross in rows
    }
