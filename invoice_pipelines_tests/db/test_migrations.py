"""Migrations: an empty database goes to head and back on both engines, and head matches tables.py."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.migrate import (
    VERSION_TABLE,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from invoice_pipelines.db.tables import metadata


def _fresh_urls(tmp_path, pg_scratch_factory):
    return {"sqlite": f"sqlite:///{tmp_path / 'fresh.sqlite3'}", "postgresql": pg_scratch_factory()}


def test_upgrade_downgrade_upgrade_on_both_engines(tmp_path, pg_scratch_factory):
    for kind, url in _fresh_urls(tmp_path, pg_scratch_factory).items():
        engine = make_engine(url, owner=True)
        assert current_revision(engine) is None, kind
        assert upgrade(engine) == head_revision()
        tables = set(inspect(engine).get_table_names())
        assert set(metadata.tables) <= tables, kind
        # already at head: a second upgrade changes nothing
        assert upgrade(engine) == head_revision()

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


def test_older_database_is_upgraded(tmp_path, pg_scratch_factory):
    """A database left at the first revision (no row-level security yet) upgrades to head."""
    for url in _fresh_urls(tmp_path, pg_scratch_factory).values():
        engine = make_engine(url, owner=True)
        assert upgrade(engine, "0001") == "0001"
        assert upgrade(engine) == head_revision()
        engine.dispose()


def test_upgrading_a_database_with_invoices_keeps_every_row(tmp_path, pg_scratch_factory):
    """0004 rebuilds tables on SQLite (batch mode); no invoice line, breakdown or item may go with it."""
    from datetime import date
    from decimal import Decimal

    from sqlalchemy import func, insert, select

    from invoice_pipelines.db.tables import (
        batch_job_items,
        batch_jobs,
        customers,
        organizations,
        sales_invoice_lines,
        sales_invoice_taxes,
        sales_invoices,
        sales_orders,
    )
    from invoice_pipelines.db.tenancy import system_transaction

    counted = (
        sales_invoices,
        sales_invoice_lines,
        sales_invoice_taxes,
        batch_jobs,
        batch_job_items,
    )
    for kind, url in _fresh_urls(tmp_path, pg_scratch_factory).items():
        engine = make_engine(url, owner=True)
        assert upgrade(engine, "0003") == "0003"
        with system_transaction(engine, write=True) as conn:
            org = conn.execute(
                insert(organizations)
                .values(slug="old", name="Old GmbH")
                .returning(organizations.c.id)
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

        def counts(engine=engine) -> dict[str, int]:
            with system_transaction(engine) as conn:
                return {
                    t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                    for t in counted
                }

        assert counts() == dict.fromkeys((t.name for t in counted), 1), kind
        assert upgrade(engine) == head_revision()
        assert counts() == dict.fromkeys((t.name for t in counted), 1), kind
        assert downgrade(engine, "0003") == "0003"
        assert counts() == dict.fromkeys((t.name for t in counted), 1), kind
        engine.dispose()
