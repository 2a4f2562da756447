"""Migration 0045 (issue 58): the partial index of the deliveries over Peppol not yet delivered.
Upgrade, downgrade and upgrade again on SQLite and PostgreSQL keep every delivery; the index holds
only what `peppol_undelivered` asks for; on PostgreSQL, with 20,000 e-mail deliveries beside a
few over Peppol (one invoice each) and the table analyzed, the check's own query (`undelivered_query`, with its
parameters bound as the driver binds them) is planned through the index, and `undelivered`
finds the same rows with and without it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.migrate import downgrade, head_revision, upgrade
from invoice_pipelines.db.tables import customers, deliveries, organizations, sales_invoices
from invoice_pipelines.db.tenancy import system_transaction
from invoice_pipelines.delivery.domain.peppol_overview import undelivered, undelivered_query

INDEX = "ix_deliveries_peppol_undelivered"
E_MAILS = 20_000
LONG_AGO = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _seed(engine, invoices: int = E_MAILS) -> int:
    """`invoices` invoices, each e-mailed once (every tenth failed), and over Peppol for the
    first two: RE-1 unknown, then failed; RE-2 failed, then sent."""
    with system_transaction(engine, write=True) as conn:
        org = conn.execute(
            sa.insert(organizations)
            .values(slug="channels", name="Channels GmbH")
            .returning(organizations.c.id)
        ).scalar_one()
        customer = conn.execute(
            sa.insert(customers)
            .values(organization_id=org, customer_number="K-1", name="Kunde")
            .returning(customers.c.id)
        ).scalar_one()
        invoice = {
            "organization_id": org,
            "customer_id": customer,
            "issue_date": date(2026, 1, 2),
            "due_date": date(2026, 1, 16),
            "currency": "EUR",
            "net_total": Decimal("100.00"),
            "tax_total": Decimal("19.00"),
            "gross_total": Decimal("119.00"),
            "amount_due": Decimal("119.00"),
        }
        conn.execute(
            sa.insert(sales_invoices),
            [
                {**invoice, "invoice_number": f"RE-{n}", "sequence_number": n}
                for n in range(1, invoices + 1)
            ],
        )
        s = sales_invoices.c
        conn.execute(
            sa.insert(deliveries).from_select(
                [
                    "organization_id",
                    "sales_invoice_id",
                    "channel",
                    "sequence",
                    "recipient",
                    "status",
                    "created_at",
                ],  # fmt: skip
                sa.select(
                    s.organization_id,
                    s.id,
                    sa.literal("email"),
                    sa.literal(0),
                    sa.literal("x"),
                    sa.case((s.sequence_number % 10 == 0, "failed"), else_="sent"),
                    sa.literal(LONG_AGO, deliveries.c.created_at.type),
                ).where(s.organization_id == org),
            )
        )
        first, second = conn.execute(
            sa.select(s.id)
            .where(s.organization_id == org, s.sequence_number.in_([1, 2]))
            .order_by(s.sequence_number)
        ).scalars()
        row = {"organization_id": org, "created_at": LONG_AGO}
        peppol = {**row, "channel": "peppol", "recipient": "0208:0123456749"}
        conn.execute(
            sa.insert(deliveries),
            [
                {**peppol, "sales_invoice_id": second, "sequence": 0, "status": "failed"},
                {**peppol, "sales_invoice_id": second, "sequence": 1, "status": "sent"},
                {**peppol, "sales_invoice_id": first, "sequence": 0, "status": "unknown"},
                {**peppol, "sales_invoice_id": first, "sequence": 1, "status": "failed"},
            ],
        )
    return org


def _indexes(engine) -> set[str]:
    return {index["name"] for index in sa.inspect(engine).get_indexes("deliveries")}


def _found(engine) -> list[tuple]:
    with system_transaction(engine) as conn:
        return [(r.invoice_number, r.sequence, r.status) for r in undelivered(conn)]


def _plan(engine) -> str:
    query = undelivered_query(now=datetime.now(UTC), after=timedelta(hours=1))
    with system_transaction(engine) as conn:
        compiled = query.compile(dialect=conn.dialect)
        rows = conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params).scalars()
        return "\n".join(rows)


def test_0045_indexes_the_undelivered_peppol_deliveries(
    tmp_path, pg_migrated_factory, sqlite_migrated_factory
):
    # a database at 0044: a copy of the worker's migrated one taken back down (migrating an empty
    # database up to 0044 took several times as long; going from empty to head and back is
    # db/test_migrations.py's)
    urls = {
        "sqlite": sqlite_migrated_factory(tmp_path / "old.sqlite3"),
        "postgresql": pg_migrated_factory(),
    }
    expected = [("RE-1", 0, "unknown"), ("RE-1", 1, "failed")]
    for kind, url in urls.items():
        engine = make_engine(url, owner=True)
        assert downgrade(engine, "0044") == "0044"
        _seed(engine)
        assert INDEX not in _indexes(engine)
        before = _found(engine)
        assert sorted(before) == expected, kind

        assert upgrade(engine) == head_revision()
        assert INDEX in _indexes(engine)
        assert _found(engine) == before
        if kind == "postgresql":
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE deliveries")
                size = conn.exec_driver_sql(
                    "SELECT count(*) FROM deliveries WHERE channel = 'peppol' AND status <> 'sent'"
                ).scalar_one()
            assert size == 3  # what the index holds: RE-2's failed first attempt too
            plan = _plan(engine)
            assert INDEX in plan, plan

        assert downgrade(engine, "0044") == "0044"
        assert INDEX not in _indexes(engine)
        if kind == "postgresql":
            assert INDEX not in _plan(engine)
        with system_transaction(engine) as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(deliveries)).scalar_one()
        assert count == E_MAILS + 4
        assert upgrade(engine) == head_revision()
        assert INDEX in _indexes(engine)
        engine.dispose()
