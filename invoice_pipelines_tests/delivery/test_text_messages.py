"""SMS and WhatsApp through the production provider client over real HTTP to a local stand-in of
a Twilio-style API: what arrives, the E.164 check, refusals, rate limits, at most once."""

from __future__ import annotations

from sqlalchemy import select, update

from invoice_pipelines.db.tables import customers, deliveries
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.delivery.domain.pipeline import send_invoices
from invoice_pipelines.resources.messaging.channels import TextTransport
from invoice_pipelines.resources.messaging.text_messages import TextMessages
from invoice_pipelines_devtools.standins.sms import TextProviderStandIn
from invoice_pipelines_tests.delivery.test_email import _shop
from invoice_pipelines_tests.exports.books import customer, sales_invoice


def _phone(db, org_id: int, customer_id: int, phone: str | None) -> None:
    with tenant_transaction(db.engine, org_id, write=True) as conn:
        conn.execute(update(customers).where(customers.c.id == customer_id).values(phone=phone))


def test_sms_and_whatsapp_go_once_each_with_amount_due_date_and_reference(db, tmp_path):
    org, ids, store = _shop(db, tmp_path, 2)
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(
            update(customers)
            .where(customers.c.organization_id == org["id"])
            .values(phone="+49 (151) 234-5678")
        )
    with TextProviderStandIn() as api:
        provider = TextMessages(base_url=api.url)
        sms = send_invoices(
            db.engine, store, TextTransport(provider), find_organization(db.engine, org["slug"])
        )
        whatsapp = send_invoices(
            db.engine,
            store,
            TextTransport(provider, "whatsapp"),
            find_organization(db.engine, org["slug"]),
        )
        again = send_invoices(
            db.engine, store, TextTransport(provider), find_organization(db.engine, org["slug"])
        )
        sent = list(api.outbox.messages)
    assert sms.sent == 2 and whatsapp.sent == 2 and again.sent == 0
    assert sorted(m["to"] for m in sent) == ["+491512345678"] * 2 + ["whatsapp:+491512345678"] * 2
    body = sent[0]["body"]
    assert "RE-2026-" in body and "238,00 EUR" in body and "IBAN DE02 1203" in body
    with tenant_transaction(db.engine, org["id"]) as conn:
        channels = sorted(
            conn.execute(
                select(deliveries.c.channel).where(
                    deliveries.c.organization_id == org["id"], deliveries.c.status == "sent"
                )
            ).scalars()
        )
    assert channels == ["sms", "sms", "whatsapp", "whatsapp"]


def test_bad_numbers_refusals_and_rate_limits(db, tmp_path):
    org, ids, store = _shop(db, tmp_path, 1)
    buyer_of = {}
    with tenant_transaction(db.engine, org["id"]) as conn:
        [buyer_of["first"]] = conn.execute(
            select(customers.c.id).where(customers.c.organization_id == org["id"])
        ).scalars()
    _phone(db, org["id"], buyer_of["first"], "+491512345678")
    no_phone = sales_invoice(
        db.engine, org["id"], customer(db.engine, org["id"], "K-8", "Ohne Telefon")
    )
    local = customer(db.engine, org["id"], "K-9", "Nur Ortsnetz")
    _phone(db, org["id"], local, "0421 123456")
    local_number = sales_invoice(db.engine, org["id"], local)
    from invoice_pipelines.documents.domain.pipeline import generate_documents

    generate_documents(db.engine, store, find_organization(db.engine, org["slug"]))
    with TextProviderStandIn() as api:
        api.outbox.throttle_next = 2  # 429 twice, then accepted
        provider = TextMessages(base_url=api.url)
        summary = send_invoices(
            db.engine,
            store,
            TextTransport(provider),
            find_organization(db.engine, org["slug"]),
            backoff_seconds=0.01,
        )
        assert summary.sent == 1 and summary.retries == 2
        assert "no phone number" in summary.failed[no_phone]
        assert "not in E.164 form" in summary.failed[local_number]
        assert len(api.outbox.messages) == 1
        # wrong credentials: every message fails with the provider's answer, none is lost
        wrong = TextMessages(base_url=api.url, token="wrong")
        _phone(db, org["id"], local, "+494211234567")
        refused = send_invoices(
            db.engine,
            store,
            TextTransport(wrong),
            find_organization(db.engine, org["slug"]),
            retry_failed=True,
        )
        assert refused.sent == 0 and "401" in refused.failed[local_number]
        retried = send_invoices(
            db.engine,
            store,
            TextTransport(provider),
            find_organization(db.engine, org["slug"]),
            retry_failed=True,
        )
        assert retried.sent == 1  # the local number, now E.164; no_phone still has none
        assert "no phone number" in retried.failed[no_phone]


def test_the_demo_stand_in_keeps_what_it_accepts(tmp_path):
    """`make run` starts the stand-in as a process of its own; what the production client sends
    it lands in messages.jsonl. It stops on SIGTERM even when it inherited SIGTERM ignored (as a
    process started from a Dagster process does when SIGINT was ignored: a shell's `&`)."""
    import json as json_module
    import signal
    import socket
    import subprocess
    import sys
    import time

    from invoice_pipelines.resources.messaging.text_messages import TextMessages

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "invoice_pipelines_devtools.standins.sms", "--port", str(port)]
        + ["--outdir", str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN),
    )
    try:
        assert "listening" in server.stdout.readline()
        provider = TextMessages(base_url=f"http://127.0.0.1:{port}")
        provider.send_text(provider.session(), "+4915120000000", "Rechnung 1", whatsapp=False)
        for _ in range(50):
            if (tmp_path / "messages.jsonl").exists():
                break
            time.sleep(0.1)
        [line] = (tmp_path / "messages.jsonl").read_text().splitlines()
        assert json_module.loads(line)["to"] == "+4915120000000"
        server.terminate()
        assert server.wait(60) == 0  # stopped cleanly, though SIGTERM came in ignored
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
