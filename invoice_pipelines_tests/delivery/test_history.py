"""History (an invoice a migration brought in) is never sent unless a person names it: a sending run
without ids leaves it out, and the sending an invoicing job asked for skips it. Counted on the
SMTP server's side."""

from __future__ import annotations

from sqlalchemy import select, update

from invoice_pipelines.billing.domain.invoicing import process_batch_job
from invoice_pipelines.billing.domain.invoicing_kinds import (
    enqueue_customer_lines,
    follow_up_options,
)
from invoice_pipelines.db.tables import batch_jobs, sales_invoices
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.delivery.domain.batch import COMMUNICATIONS
from invoice_pipelines.delivery.domain.pipeline import send_invoice_emails
from invoice_pipelines.documents.domain.batch import run_invoice_job
from invoice_pipelines.documents.domain.pipeline import generate_documents
from invoice_pipelines.queue.domain.jobs import job_item_outcomes
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.delivery.test_batch import _customer, _org, _work
from invoice_pipelines_tests.delivery.test_email import delivery_column
from invoice_pipelines_tests.exports.books import sales_invoice


def _mark_history(db, org_id: int, *invoice_ids: int) -> None:
    with tenant_transaction(db.engine, org_id, write=True) as conn:
        conn.execute(
            update(sales_invoices).where(sales_invoices.c.id.in_(invoice_ids)).values(history=True)
        )


def _delivered(db, org_id: int) -> dict[int, object]:
    return delivery_column(db, org_id, "status")


def test_a_run_without_ids_sends_no_history_and_a_named_history_invoice_goes(db, tmp_path):
    org = _org(db)
    buyer = _customer(db, org["id"], "K-1", "einkauf@kunde.example")
    past = sales_invoice(db.engine, org["id"], buyer)
    today = sales_invoice(db.engine, org["id"], buyer)
    store = LocalFiles(str(tmp_path))
    # both have their documents (the history's because a person asked for them)
    assert (
        generate_documents(
            db.engine, store, find_organization(db.engine, org["slug"]), [past, today]
        ).generated
        == 2
    )
    _mark_history(db, org["id"], past)

    with SmtpSink() as sink:
        mailer = Smtp(port=sink.port, sender="rechnung@mueller.example")
        unnamed = send_invoice_emails(
            db.engine, store, mailer, find_organization(db.engine, org["slug"])
        )
        assert (unnamed.requested, unnamed.sent) == (1, 1)
        assert _delivered(db, org["id"]) == {today: "sent"}
        again = send_invoice_emails(
            db.engine, store, mailer, find_organization(db.engine, org["slug"]), retry_failed=True
        )
        assert again.requested == 0  # history is not left as work to do
        named = send_invoice_emails(
            db.engine, store, mailer, find_organization(db.engine, org["slug"]), [past]
        )
        arrived = len(sink.mailbox.messages)
    assert named.sent == 1 and not named.failed
    assert _delivered(db, org["id"]) == {today: "sent", past: "sent"}
    assert arrived == 2


def test_the_sending_an_invoicing_job_asked_for_skips_history(db, tmp_path):
    org = _org(db)
    buyers = [_customer(db, org["id"], f"K-{n}", f"k{n}@kunde.example") for n in (1, 2)]
    line = {"description": "Wartung", "unit_price": "120.00", "vat_rate": "19", "vat_category": "S"}
    job_id = enqueue_customer_lines(
        db.engine,
        find_organization(db.engine, org["slug"]),
        [{"customer_id": c, "lines": [line]} for c in buyers],
        invoice_date="2026-11-20",
        created_by="carla",
        options=follow_up_options(generate_pdf=True, send_immediately=True, channel="email"),
    )
    assert process_batch_job(db.engine, job_id, system=db.system_engine).successful_count == 2
    with tenant_transaction(db.engine, org["id"]) as conn:
        [follow_up] = conn.execute(
            select(batch_jobs.c.id).where(
                batch_jobs.c.organization_id == org["id"], batch_jobs.c.kind == COMMUNICATIONS
            )
        ).scalars()
        past = conn.execute(
            select(sales_invoices.c.id).where(
                sales_invoices.c.batch_job_id == job_id, sales_invoices.c.customer_id == buyers[0]
            )
        ).scalar_one()
    _mark_history(db, org["id"], past)
    store = LocalFiles(str(tmp_path))
    with SmtpSink() as sink:
        sent = run_invoice_job(
            db.engine, follow_up, _work(db, store, sink), system=db.system_engine
        )
        recipients = [m["To"] for m in sink.mailbox.messages]
    assert (sent.status, sent.successful_count, sent.skipped_count) == ("completed", 1, 1)
    assert recipients == ["k2@kunde.example"]
    [skipped] = job_item_outcomes(db.engine, sent, statuses=("skipped",))
    assert (skipped["sales_invoice_id"], skipped["error_code"]) == (past, "history")
    assert past not in _delivered(db, org["id"])
