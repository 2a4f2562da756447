"""Dunning notices by e-mail through the production mailer to a real SMTP server on loopback, and
by SMS / WhatsApp through the production provider client over real HTTP to the messaging stand-in:
what arrives, in which language, at most once, and what a refusal or a dead run leaves."""

from __future__ import annotations

import socket
import threading
from datetime import date, timedelta

from sqlalchemy import insert, select, update

from invoice_pipelines.db.tables import dunning_notices, sales_invoice_documents
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.overdue.domain.notice_sending import send_notices
from invoice_pipelines.overdue.domain.pipeline import run_overdue
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines.resources.messaging.text_messages import TextMessages
from invoice_pipelines_devtools.standins.sms import TextProviderStandIn
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.overdue.helpers import customer, invoice, pay, set_settings

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
    store = LocalFiles(str(tmp_path))
    store.write("invoices/german.pdf", [b"%PDF-1.7 the invoice"])
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(
            insert(sales_invoice_documents).values(
                organization_id=org["id"], sales_invoice_id=german, kind="facturx",
                status="generated", storage_key="invoices/german.pdf",
            )
        )  # fmt: skip
    run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=TODAY)

    with SmtpSink() as sink:
        mailer = Smtp(port=sink.port, sender="mahnung@mueller.example")
        first = send_notices(db.engine, mailer, store, find_organization(db.engine, org["slug"]))
        again = send_notices(db.engine, mailer, store, find_organization(db.engine, org["slug"]))
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
    run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=TODAY)
    # a sending run died an hour ago after committing its intent for this one
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(
            update(dunning_notices)
            .where(dunning_notices.c.sales_invoice_id == stuck)
            .values(delivery_status="sending", delivery_started_at=utcnow() - timedelta(hours=1))
        )
    store = LocalFiles(str(tmp_path))

    with SmtpSink() as sink:
        sink.mailbox.refused_recipients.add("gone@kunde.example")
        sink.mailbox.temporary_failures = 1  # the first message that gets through: 451
        mailer = Smtp(port=sink.port)
        first = send_notices(db.engine, mailer, store, find_organization(db.engine, org["slug"]))
        second = send_notices(db.engine, mailer, store, find_organization(db.engine, org["slug"]))
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


def test_a_connection_the_server_closes_postpones_that_notice_and_the_rest_still_go(db, tmp_path):
    """The server closes the connection at one notice (a 421 for too many messages, a drop
    without a word): that notice never left, so it waits for the next run (not unknown), and the
    notices after it go over a new connection; once each."""
    org = _org(db)
    late = TODAY - timedelta(days=2)
    ids = [
        invoice(db, org, customer(db, org, email=f"kunde{i}@kunde.example"), late) for i in range(5)
    ]
    run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=TODAY)
    store = LocalFiles(str(tmp_path))
    with SmtpSink() as sink:
        sink.mailbox.messages_per_connection = 2  # the 3rd MAIL on a connection: 421, closed

        def drop_one(_message) -> None:
            if sink.mailbox.count() == 3:
                sink.mailbox.drops = 1  # and the one after the 3rd arrived: dropped

        sink.mailbox.on_message = drop_one
        mailer = Smtp(port=sink.port)
        first = send_notices(db.engine, mailer, store, find_organization(db.engine, org["slug"]))
        second = send_notices(db.engine, mailer, store, find_organization(db.engine, org["slug"]))
        arrived = sorted(m["To"] for m in sink.mailbox.messages)
    assert (first.sent, len(first.postponed), first.unknown, first.failed) == (3, 2, [], {})
    assert sorted(first.postponed.values()) == [
        "the SMTP server closed the connection before the message was handed over (Connection "
        "unexpectedly closed); the next attempt connects again",
        "the server answered 421 4.7.0 too many messages on this connection, closing",
    ]
    assert second.sent == 2 and not second.unknown
    assert arrived == sorted(f"kunde{i}@kunde.example" for i in range(5))
    assert {_delivery(db, org)[i][0] for i in ids} == {"sent"}


TEXT_LEVELS = {
    "deliver": True,
    "levels": [
        {"name": "reminder", "days": 1, "channel": "sms"},
        {"name": "first_dunning", "days": 14, "fee_fixed": "5.00", "channel": "whatsapp"},
        {"name": "final_notice", "days": 30, "fee_fixed": "10.00"},  # stays in-app
    ],
}


def _text_delivery(db, org) -> dict[int, dict]:
    n = dunning_notices.c
    with tenant_transaction(db.engine, org["id"]) as conn:
        rows = conn.execute(
            select(n.sales_invoice_id, n.delivery_status, n.delivery_error, n.recipient,
                   n.message_id).where(n.organization_id == org["id"])
        ).mappings()  # fmt: skip
        return {r["sales_invoice_id"]: dict(r) for r in rows}


def test_sms_and_whatsapp_notices_go_once_in_the_customers_language(db, tmp_path):
    org = _org(db, TEXT_LEVELS)
    german = invoice(
        db, org, customer(db, org, phone="+49 (151) 234-5678"), TODAY - timedelta(days=20)
    )
    english = invoice(
        db,
        org,
        customer(db, org, phone="0044 7700 900123", language="en"),
        TODAY - timedelta(days=2),
    )
    in_app = invoice(db, org, customer(db, org, phone="+4915199999999"), TODAY - timedelta(days=40))
    run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=TODAY)
    store = LocalFiles(str(tmp_path))

    with TextProviderStandIn() as api, SmtpSink() as sink:
        provider = TextMessages(base_url=api.url)
        mailer = Smtp(port=sink.port)
        first = send_notices(
            db.engine,
            mailer,
            store,
            find_organization(db.engine, org["slug"]),
            text_messages=provider,
        )
        again = send_notices(
            db.engine,
            mailer,
            store,
            find_organization(db.engine, org["slug"]),
            text_messages=provider,
        )
        messages = {m["to"]: m for m in api.outbox.messages}
        mails = list(sink.mailbox.messages)

    assert (first.sent, again.sent, len(api.outbox.messages), mails) == (2, 0, 2, [])
    assert set(messages) == {"whatsapp:+491512345678", "+447700900123"}
    mahnung = messages["whatsapp:+491512345678"]["body"]
    assert mahnung.startswith("Müller Werkzeugbau GmbH: 1. Mahnung zu Rechnung RE-")
    assert f"fällig am {TODAY - timedelta(days=20):%d.%m.%Y}" in mahnung
    # what is open, the fee and the total claimed, each named as what it is
    assert "Offen: 119,00 EUR, Mahngebühren: 5,00 EUR, Gesamtforderung: 124,00 EUR." in mahnung
    reminder = messages["+447700900123"]["body"]
    assert "Payment reminder, invoice RE-" in reminder and " for 119.00 EUR, " in reminder
    assert (
        f"due {TODAY - timedelta(days=2):%Y-%m-%d}" in reminder
        and "Still open: 119.00 EUR." in reminder
    )
    delivery = _text_delivery(db, org)
    assert delivery[german]["delivery_status"] == delivery[english]["delivery_status"] == "sent"
    assert delivery[german]["recipient"] == "+491512345678"
    assert delivery[german]["message_id"] == messages["whatsapp:+491512345678"]["sid"]
    assert delivery[in_app]["delivery_status"] is None  # a final notice stays in-app


class _Hangup:
    """An HTTP endpoint on loopback that reads the request and closes without answering: the
    provider may or may not have taken the message."""

    def __enter__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.requests = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.getsockname()[1]}"

    def _serve(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                self.requests += 1

    def __exit__(self, *exc):
        self.server.close()


def test_text_refusals_fail_or_postpone_and_a_broken_request_is_never_resent(db, tmp_path):
    org = _org(db, TEXT_LEVELS)
    late = TODAY - timedelta(days=2)
    broken = invoice(db, org, customer(db, org, phone="+491701111111"), late)
    no_phone = invoice(db, org, customer(db, org), late)
    local = invoice(db, org, customer(db, org, phone="0421 123456"), late)
    throttled = invoice(db, org, customer(db, org, phone="+491702222222"), late)
    later = invoice(db, org, customer(db, org, phone="+491703333333"), late)
    run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=TODAY)
    store = LocalFiles(str(tmp_path))
    mailer = Smtp(port=1)  # no e-mail level: never connected

    without_provider = send_notices(
        db.engine, mailer, store, find_organization(db.engine, org["slug"])
    )
    assert len(without_provider.postponed) == 5 and without_provider.sent == 0
    with _Hangup() as hangup:
        cut = send_notices(
            db.engine, mailer, store, find_organization(db.engine, org["slug"]),
            text_messages=TextMessages(base_url=hangup.url),
        )  # fmt: skip
        assert hangup.requests == 1
    assert cut.unknown and len(cut.postponed) == 4  # the rest waits for the next run
    with TextProviderStandIn() as api:
        api.outbox.throttle_next = 1  # the first message that gets through: 429
        provider = TextMessages(base_url=api.url)
        first = send_notices(
            db.engine,
            mailer,
            store,
            find_organization(db.engine, org["slug"]),
            text_messages=provider,
        )
        second = send_notices(
            db.engine,
            mailer,
            store,
            find_organization(db.engine, org["slug"]),
            text_messages=provider,
        )
        arrived = [m["to"] for m in api.outbox.messages]

    assert (first.sent, len(first.failed), len(first.postponed)) == (1, 2, 1)
    assert second.sent == 1 and not second.failed
    assert sorted(arrived) == ["+491702222222", "+491703333333"]  # each once
    delivery = _text_delivery(db, org)
    assert delivery[broken]["delivery_status"] == "unknown"  # never sent again on its own
    assert delivery[no_phone]["delivery_status"] == "failed"
    assert delivery[no_phone]["delivery_error"] == "the customer has no phone number"
    assert "not in E.164 form" in delivery[local]["delivery_error"]
    assert delivery[throttled]["delivery_status"] == delivery[later]["delivery_status"] == "sent"


def test_a_postponed_notice_is_withdrawn_once_paid_or_replaced_by_the_next_level(db, tmp_path):
    org = _org(db, TEXT_LEVELS)
    paid = invoice(db, org, customer(db, org, phone="+491701111111"), TODAY - timedelta(days=2))
    still_open = invoice(
        db, org, customer(db, org, phone="+491702222222"), TODAY - timedelta(days=12)
    )
    run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=TODAY)
    store, mailer = LocalFiles(str(tmp_path)), Smtp(port=1)
    with TextProviderStandIn() as api:
        api.outbox.fail_next = 2  # the provider is down: both reminders back to pending
        provider = TextMessages(base_url=api.url)
        down = send_notices(
            db.engine,
            mailer,
            store,
            find_organization(db.engine, org["slug"]),
            text_messages=provider,
        )
        assert len(down.postponed) == 2 and not api.outbox.messages
        # meanwhile one invoice is paid, and four days later the other is due for a first dunning
        pay(db, org, paid, "119.00", TODAY + timedelta(days=1), status="paid")
        run_overdue(
            db.engine, find_organization(db.engine, org["slug"]), on=TODAY + timedelta(days=4)
        )
        later = send_notices(
            db.engine,
            mailer,
            store,
            find_organization(db.engine, org["slug"]),
            text_messages=provider,
        )
        arrived = [m["body"] for m in api.outbox.messages]

    assert later.sent == 1 and len(later.withdrawn) == 2
    assert len(arrived) == 1 and "1. Mahnung zu Rechnung" in arrived[0]  # not the old reminder
    n = dunning_notices.c
    with tenant_transaction(db.engine, org["id"]) as conn:
        rows = conn.execute(
            select(n.sales_invoice_id, n.level_name, n.delivery_status, n.delivery_error)
            .where(n.organization_id == org["id"])
            .order_by(n.sales_invoice_id, n.level)
        ).all()
    assert [tuple(r) for r in rows] == [
        (paid, "reminder", "failed", "withdrawn before sending: the invoice is no longer owed"),
        (still_open, "reminder", "failed", "withdrawn before sending: a later notice replaced it"),
        (still_open, "first_dunning", "sent", None),
    ]
