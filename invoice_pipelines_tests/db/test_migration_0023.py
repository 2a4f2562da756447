"""Migration 0023 (issue 40) on a database with issued invoices: an invoice that already has a
generated document gets the steps the payment pull read for it until then (its customer's own,
else the organization's; [] for a credit note), so upgrading changes no settlement; an invoice
without a generated document keeps NULL (no terms told, no discount). The downgrade drops the
column. PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.migrate import downgrade, head_revision, upgrade
from invoice_pipelines.db.tables import (
    customers,
    organizations,
    sales_invoice_documents,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import system_transaction

D = Decimal
# the head's tables have columns 0022 lacks: write only the ones 0022 has
OLD_INVOICES = sa.table(
    "sales_invoices",
    *(sa.column(c.name, c.type) for c in sales_invoices.c if c.name != "skonto_steps"),
)
TWO = [{"days": 10, "percent": "2"}]
OWN = [{"days": 7, "percent": "3"}]


def _invoice(conn, org: int, customer: int, n: int, **values) -> int:
    return conn.execute(
        sa.insert(OLD_INVOICES)
        .values(
            organization_id=org,
            invoice_number=f"RE-{n}",
            sequence_number=n,
            customer_id=customer,
            issue_date=date(2026, 11, 2),
            due_date=date(2026, 11, 16),
            currency="EUR",
            net_total=D("100.00"),
            tax_total=D("19.00"),
            gross_total=D("119.00"),
            amount_due=D("119.00"),
            **values,
        )
        .returning(OLD_INVOICES.c.id)
    ).scalar_one()


def _seed(engine) -> dict[str, int]:
    with system_transaction(engine, write=True) as conn:
        org = conn.execute(
            sa.insert(organizations)
            .values(slug="terms", name="Terms GmbH", settings={"skonto": TWO})
            .returning(organizations.c.id)
        ).scalar_one()
        default, own = (
            conn.execute(
                sa.insert(customers)
                .values(organization_id=org, customer_number=number, name=number, skonto=skonto)
                .returning(customers.c.id)
            ).scalar_one()
            for number, skonto in (("K-D", None), ("K-O", OWN))
        )
        ids = {
            "default": _invoice(conn, org, default, 1),
            "own": _invoice(conn, org, own, 2),
            "failed": _invoice(conn, org, default, 3),
            "unwritten": _invoice(conn, org, default, 4),
        }
        ids["credit"] = _invoice(
            conn, org, default, 5, type_code="381", corrects_invoice_id=ids["default"]
        )
        conn.execute(
            sa.insert(sales_invoice_documents),
            [
                {
                    "organization_id": org,
                    "sales_invoice_id": ids[name],
                    "kind": "facturx",
                    "status": "failed" if name == "failed" else "generated",
                }
                for name in ("default", "own", "failed", "credit")
            ],
        )
    return ids


def test_0023_records_the_terms_of_invoices_with_a_document(tmp_path, pg_scratch_factory):
    urls = {"sqlite": f"sqlite:///{tmp_path / 'old.sqlite3'}", "postgresql": pg_scratch_factory()}
    for kind, url in urls.items():
        engine = make_engine(url, owner=True)
        assert upgrade(engine, "0022") == "0022"
        ids = _seed(engine)
        assert upgrade(engine) == head_revision()
        with system_transaction(engine) as conn:
            steps = dict(
                conn.execute(sa.select(sales_invoices.c.id, sales_invoices.c.skonto_steps)).all()
            )
        assert {name: steps[i] for name, i in ids.items()} == {
            "default": TWO,
            "own": OWN,
            "failed": None,
            "unwritten": None,
            "credit": [],
        }, kind
        assert downgrade(engine, "0022") == "0022"
        with engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("sales_invoices")}
        assert "skonto_steps" not in columns and "credit_reason" in columns, kind
        engine.dispose()
