"""Fees and interest of notices invoiced through batch invoicing: once, never on the original."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from invoice_pipelines.billing.domain.invoicing import process_batch_job
from invoice_pipelines.db.tables import batch_jobs, sales_invoices
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.overdue.domain.pipeline import run_overdue
from invoice_pipelines_tests.overdue.helpers import customer, invoice, notices, set_settings

TODAY = date(2026, 11, 20)


def test_fees_and_interest_become_one_invoice_per_customer_once(db):
    org = db.new_organization(timezone="UTC")
    set_settings(
        db,
        org,
        {"dunning": {"fee_invoices": True, "law": "none",
                     "interest": {"base_rate_percent": "1.27", "margin_percent": "9"}}},
    )  # fmt: skip
    kunde, other = customer(db, org), customer(db, org)
    late = TODAY - timedelta(days=20)
    originals = [invoice(db, org, kunde, late), invoice(db, org, kunde, late)]
    invoice(db, org, other, TODAY - timedelta(days=2))  # a reminder: no fee, no interest

    first = run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=TODAY)
    again = run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=TODAY)

    assert (first.notices_invoiced, again.notices_invoiced) == (2, 0)
    assert again.fee_invoice_job_id is None
    with tenant_transaction(db.engine, org["id"]) as conn:
        job = conn.execute(
            select(batch_jobs).where(batch_jobs.c.id == first.fee_invoice_job_id)
        ).one()
    assert job.kind == "customer_lines"
    (entry,) = job.request["customers"]
    assert entry["customer_id"] == kunde
    assert [line["description"].split(" zu ")[0] for line in entry["lines"]] == [
        "Mahngebühr (first_dunning)",
        f"Verzugszinsen {late.isoformat()} bis {TODAY.isoformat()}",
    ] * 2
    assert {line["vat_category"] for line in entry["lines"]} == {"O"}

    processed = process_batch_job(db.engine, job.id, system=db.system_engine, workers=1)
    assert processed.status == "completed"
    charged = sum(n["fee"] + n["interest"] for n in notices(db, org))
    with tenant_transaction(db.engine, org["id"]) as conn:
        fee_invoice = conn.execute(
            select(sales_invoices).where(sales_invoices.c.batch_job_id == job.id)
        ).one()
        unchanged = conn.execute(
            select(func.sum(sales_invoices.c.amount_due)).where(sales_invoices.c.id.in_(originals))
        ).scalar_one()
    assert fee_invoice.customer_id == kunde
    assert fee_invoice.gross_total == charged == Decimal("10.00") + 2 * Decimal("0.67")
    assert fee_invoice.tax_total == Decimal("0.00")
    assert unchanged == Decimal("238.00")  # the original invoices are never edited
