"""Migration 0047 (issue 59): the reviewed orders in `reviewed_sales_orders`. On SQLite and
PostgreSQL a database with orders of every status upgrades with exactly its reviewed ones waiting,
the status index gone and (PostgreSQL) fillfactor 45 on `sales_orders`; the triggers keep the table
from then on; a downgrade brings the index back, drops the table and its triggers, and keeps every
order."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.migrate import downgrade, upgrade
from invoice_pipelines.db.tenancy import system_transaction

STATUSES = ("draft", "pending", "reviewed", "invoiced", "cancelled", "reviewed")


def _seed(engine) -> list[int]:
    """An organization with one order per entry of STATUSES; the reviewed ones' ids."""
    with system_transaction(engine, write=True) as conn:
        org = conn.execute(
            sa.text("INSERT INTO organizations (slug, name) VALUES ('old', 'Old') RETURNING id")
        ).scalar_one()
        customer = conn.execute(
            sa.text(
                "INSERT INTO customers (organization_id, customer_number, name) "
                "VALUES (:org, 'K1', 'Kunde') RETURNING id"
            ),
            {"org": org},
        ).scalar_one()
        reviewed = []
        for n, status in enumerate(STATUSES, start=1):
            order = conn.execute(
                sa.text(
                    "INSERT INTO sales_orders (organization_id, order_number, customer_id, "
                    "order_date, status) VALUES (:org, :number, :customer, :day, :status) "
                    "RETURNING id"
                ),
                {
                    "org": org,
                    "number": f"SO-{n}",
                    "customer": customer,
                    "day": date(2026, 11, n),
                    "status": status,
                },
            ).scalar_one()
            if status == "reviewed":
                reviewed.append(order)
    return reviewed


def _waiting(engine) -> list[int]:
    with system_transaction(engine) as conn:
        return sorted(
            conn.execute(sa.text("SELECT sales_order_id FROM reviewed_sales_orders")).scalars()
        )


def _indexes(engine) -> set[str]:
    return {i["name"] for i in sa.inspect(engine).get_indexes("sales_orders")}


def _fillfactor(engine) -> list | None:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT reloptions FROM pg_class WHERE relname = 'sales_orders'")
        ).scalar_one()


def test_upgrade_fills_the_table_and_downgrade_brings_the_index_back(tmp_path, pg_scratch_factory):
    urls = {"sqlite": f"sqlite:///{tmp_path / 'm.sqlite3'}", "postgresql": pg_scratch_factory()}
    for kind, url in urls.items():
        engine = make_engine(url, owner=True)
        assert upgrade(engine, "0046") == "0046"
        reviewed = _seed(engine)
        assert "ix_sales_orders_org_status_date" in _indexes(engine), kind

        assert upgrade(engine, "0047") == "0047"
        assert _waiting(engine) == sorted(reviewed), kind
        assert "ix_sales_orders_org_status_date" not in _indexes(engine), kind
        if kind == "postgresql":
            assert _fillfactor(engine) == ["fillfactor=45"]
        # from here on the database keeps it: one reviewed order invoiced
        with system_transaction(engine, write=True) as conn:
            conn.execute(
                sa.text("UPDATE sales_orders SET status = 'invoiced' WHERE id = :id"),
                {"id": reviewed[0]},
            )
        assert _waiting(engine) == reviewed[1:], kind

        assert downgrade(engine, "0046") == "0046"
        assert "ix_sales_orders_org_status_date" in _indexes(engine), kind
        assert "reviewed_sales_orders" not in sa.inspect(engine).get_table_names(), kind
        if kind == "postgresql":
            assert _fillfactor(engine) is None
        with system_transaction(engine, write=True) as conn:
            # no trigger left behind: orders are written as before
            conn.execute(sa.text("UPDATE sales_orders SET status = 'reviewed'"))
            assert conn.execute(sa.text("SELECT count(*) FROM sales_orders")).scalar_one() == 6

        assert upgrade(engine, "0047") == "0047"
        assert len(_waiting(engine)) == len(STATUSES), kind
        engine.dispose()
