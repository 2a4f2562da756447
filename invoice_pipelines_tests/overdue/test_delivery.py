"""Dunning notices by e-mail through the production mailer to a real SMTP server on loopback:
what arrives, in which language, at most once, and what a refusal or a dead run leaves."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import insert, select, update

from invoice_pipelines.db.tables import dunning_notices, sales_invoice_documents
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.overdue.delivery import send_notices
from invoice_pipelines.overdue.pipeline import run_overdue
from invoice_pipelines.resources.files import LocalFileStore
from invoice_pipelines.resources.mail import SmtpMailer
from invoice_pipelines.standins.smtp import SmtpSink
from invoice_pipelines_tests.overdue.helpers import customer, invoice, set_settings

TODAY = date(2026, 11, 20)
EMAIL_LEVELS = {
    "deliver": True,
    "levels": [
        {"name": "reminder", "days": 1, "channel": "email"},
        {"name": "first_dunning", "days": 14, "fee_fixed": "5.00", "channel": "email"},
        {"name": "final_notice", "days": 30, "fee_fixed": "10.00"},  # stays in-app
    ],
}


def _org(db, settings=EMAIL_LEVELS):
    org = db.new_organization(timezone="UTC", name="Müller Werkzeugbau GmbH")
    set_settings(db, org, {"dunning": settings})
    return org


def _delivery(db, org) -> dict[int, tuple]:
    n = dunning_notices.c
    with tenant_transaction(db.engine, org["id"]) as conn:
        rows = conn.execute(
            select(n.sales_invoice_id, n.delivery_status, n.delivery_error, n.message_id).where(
                n.organization_id == org["id"]
            )
        )
        return {
            r.sales_invoice_id: (r.delivery_status, r.delivery_error, r.message_id) for r in rows
        }


def test_notices_are_mailed_once_in_the_customers_language_with_the_invoice_pdf(db, tmp_path):
    org = _org(db)
    german = invoice(
        db, org, customer(db, org, email="einkauf@kunde.example"), TODAY - timedelta(days=20)
    )
    english = invoice(
        db,
        org,
        customer(db, org, email="ap@client.example", language="en"),
        TODAY - timedelta(days=2),
    )
    in_app = invoice(
        db, org, customer(db, org, email="x@kunde.example"), TODAY - timedelta(days=40)
    )
    store = LocalFileStore(root=str(tmp_path))
    store.write("invoices/german.pdf", [b"%PDF-1.7 the invoice"])
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(
            insert(sales_invoice_documents).values(
                organization_id=org["id"], sales_invoice_id=german, kind="facturx",
                status="generated", storage_key="invoices/german.pdf",
            )
        )  # fmt: skip
    run_overdue(db.engine, org["slug"], on=TODAY)

    with SmtpSink() as sink:
        mailer = SmtpMailer(port=sink.port, sender="mahnung@mueller.example")
        first = send_notices(db.engine, mailer, store, org["slug"])
        again = send_notices(db.engine, mailer, store, org["slug"])
        messages = {m["To"]: m for m in sink.mailbox.messages}

    assert (first.sent, again.sent) == (2, 0)
    assert set(messages) == {"einkauf@kunde.example", "ap@client.example"}
    mahnung = messages["einkauf@kunde.example"]
    assert mahnung["Subject"].startswith("1. Mahnung: Rechnung RE-")
    text = mahnung.get_body(("plain",)).get_content()
    assert "Mahngebühren: 5,00 EUR" in text and "Gesamtforderung: 124,00 EUR" in text
    (pdf,) = list(mahnung.iter_attachments())
    assert pdf.get_content() == b"%PDF-1.7 the invoice"
    reminder = messages["ap@client.example"]
    assert reminder["Subject"].startswith("Payment reminder: invoice RE-")
    assert "119,00 EUR" not in reminder.get_body(("plain",)).get_content()  # English amounts
    assert not list(reminder.iter_attachments())  # no PDF written for it
    delivery = _delivery(db, org)
    assert delivery[german][0] == delivery[english][0] == "sent"
    assert delivery[german][2] == mahnung["Message-ID"]
    assert delivery[in_app] == (None, None, None)  # a final notice stays in-app


def test_refusals_fail_or_postpone_and_a_dead_run_leaves_unknown(db, tmp_path):
    org = _org(db)
    late = TODAY - timedelta(days=2)
    no_address = invoice(db, org, customer(db, org), late)
    refused = invoice(db, org, customer(db, org, email="gone@kunde.example"), late)
    later = invoice(db, org, customer(db, org, email="later@kunde.example"), late)
    stuck = invoice(db, org, customer(db, org, email="stuck@kunde.example"), late)
    run_overdue(db.engine, org["slug"], on=TODAY)
    # a sending run died an hour ago after committing its intent for this one
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(
            update(dunning_notices)
            .where(dunning_notices.c.sales_invoice_id == stuck)
            .values(delivery_status="sending", delivery_started_at=utcnow() - timedelta(hours=1))
        )
    store = LocalFileStore(root=str(tmp_path))

    with SmtpSink() as sink:
        sink.mailbox.refused_recipients.add("gone@kunde.example")
        sink.mailbox.temporary_failures = 1  # the first message that gets through: 451
        mailer = SmtpMailer(port=sink.port)
        first = send_notices(db.engine, mailer, store, org["slug"])
        second = send_notices(db.engine, mailer, store, org["slug"])
        arrived = [m["To"] for m in sink.mailbox.messages]

    assert (first.sent, len(first.failed), len(first.postponed), len(first.unknown)) == (0, 2, 1, 1)
    assert arrived == ["later@kunde.example"]  # after its 451, on the next run; once
    assert second.sent == 1 and not second.failed
    delivery = _delivery(db, org)
    assert delivery[no_address][:2] == ("failed", "the customer has no e-mail address")
    assert delivery[refused][0] == "failed" and "550" in delivery[refused][1]
    assert delivery[later][0] == "sent"
    assert delivery[stuck][0] == "unknown"  # never sent again on its own
    assert "stuck@kunde.example" not in arrived
