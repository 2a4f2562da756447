"""Migrations: an empty database goes to head and back on both engines, and head matches tables.py."""

from datetime import date
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, insert, inspect, select

from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.migrate import (
    VERSION_TABLE,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from invoice_pipelines.db.tables import (
    batch_job_items,
    batch_jobs,
    customers,
    metadata,
    organizations,
    sales_invoice_lines,
    sales_invoice_taxes,
    sales_invoices,
    sales_orders,
)
from invoice_pipelines.db.tenancy import system_transaction


def _fresh_url(kind: str, tmp_path, pg_scratch_factory) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    return pg_scratch_factory()


COUNTED = (
    sales_invoices,
    sales_invoice_lines,
    sales_invoice_taxes,
    batch_jobs,
    batch_job_items,
)


def _counts(engine) -> dict[str, int]:
    with system_transaction(engine) as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in COUNTED
        }


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_upgrade_downgrade_upgrade_on_both_engines(kind, tmp_path, pg_scratch_factory):
    """An empty database goes to head, back to base and to head again. On the way it is an older
    database that upgrades: left at the first revision (no row-level security yet), then at 0003
    with an invoice in it, whose rows 0004 keeps although it rebuilds tables on SQLite (batch
    mode): no invoice line, breakdown or item may go with it, up to head nor back down to 0003.
    (One database for all of it: migrating from empty is what costs.)"""
    engine = make_engine(_fresh_url(kind, tmp_path, pg_scratch_factory), owner=True)
    assert current_revision(engine) is None, kind
    assert upgrade(engine, "0001") == "0001"
    assert upgrade(engine, "0003") == "0003"
    with system_transaction(engine, write=True) as conn:
        org = conn.execute(
            insert(organizations).values(slug="old", name="Old GmbH").returning(organizations.c.id)
        ).scalar_one()
        customer = conn.execute(
            insert(customers)
            .values(organization_id=org, customer_number="K1", name="Kunde")
            .returning(customers.c.id)
        ).scalar_one()
        order = conn.execute(
            insert(sales_orders)
            .values(
                organization_id=org,
                order_number="SO-1",
                customer_id=customer,
                order_date=date(2026, 11, 2),
                status="invoiced",
            )
            .returning(sales_orders.c.id)
        ).scalar_one()
        job = conn.execute(
            insert(batch_jobs).values(organization_id=org).returning(batch_jobs.c.id)
        ).scalar_one()
        conn.execute(
            insert(batch_job_items).values(
                organization_id=org, batch_job_id=job, position=1, sales_order_id=order
            )
        )
        invoice = conn.execute(
            insert(sales_invoices)
            .values(
                organization_id=org,
                invoice_number="RE-1",
                sequence_number=1,
                sales_order_id=order,
                customer_id=customer,
                batch_job_id=job,
                issue_date=date(2026, 11, 2),
                due_date=date(2026, 11, 2),
                currency="EUR",
                net_total=Decimal("10.00"),
                tax_total=Decimal("1.90"),
                gross_total=Decimal("11.90"),
                amount_due=Decimal("11.90"),
            )
            .returning(sales_invoices.c.id)
        ).scalar_one()
        conn.execute(
            insert(sales_invoice_lines).values(
                organization_id=org,
                sales_invoice_id=invoice,
                line_no=1,
                description="Werkzeug",
                quantity=Decimal("1"),
                unit_price=Decimal("10.00"),
                net_amount=Decimal("10.00"),
                vat_rate=Decimal("19.00"),
            )
        )
        conn.execute(
            insert(sales_invoice_taxes).values(
                organization_id=org,
                sales_invoice_id=invoice,
                vat_category="S",
                vat_rate=Decimal("19.00"),
                basis=Decimal("10.00"),
                amount=Decimal("1.90"),
            )
        )

    one_each = dict.fromkeys((t.name for t in COUNTED), 1)
    assert _counts(engine) == one_each, kind

    assert upgrade(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert set(metadata.tables) <= tables, kind
    assert _counts(engine) == one_each, kind
    # already at head: a second upgrade changes nothing
    assert upgrade(engine) == head_revision()

    assert downgrade(engine, "0003") == "0003"
    assert _counts(engine) == one_each, kind
    assert downgrade(engine, "base") is None
    left = set(inspect(engine).get_table_names()) - {VERSION_TABLE}
    assert left == set(), f"{kind}: tables left after downgrade: {left}"

    assert upgrade(engine) == head_revision()
    engine.dispose()


def test_head_schema_matches_table_definitions(db):
    with db.owner_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diffs = [d for d in compare_metadata(context, metadata) if VERSION_TABLE not in repr(d)]
    assert diffs == []
