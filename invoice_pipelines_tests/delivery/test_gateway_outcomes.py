"""What an SMS/WhatsApp gateway's answer means for the delivery, over real HTTP against the
stand-in: an answer after which the provider may have queued the message leaves the delivery
`unknown` and it is never sent again on its own; a refusal for now is tried again and goes once."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from invoice_pipelines.db.tables import customers, deliveries
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.delivery.domain.pipeline import send_invoices
from invoice_pipelines.resources.messaging.channels import TextTransport
from invoice_pipelines.resources.messaging.text_messages import TextMessages
from invoice_pipelines_devtools.standins.sms import TextProviderStandIn
from invoice_pipelines_tests.delivery.test_email import _shop


def _phones(db, org_id: int) -> None:
    with tenant_transaction(db.engine, org_id, write=True) as conn:
        conn.execute(
            update(customers)
            .where(customers.c.organization_id == org_id)
            .values(phone="+491512345678")
        )


def _statuses(db, org_id: int) -> list[tuple[str, str | None]]:
    d = deliveries.c
    with tenant_transaction(db.engine, org_id) as conn:
        return [
            (row.status, row.error)
            for row in conn.execute(
                select(d.status, d.error).where(d.organization_id == org_id).order_by(d.id)
            )
        ]


@pytest.mark.parametrize("answer", [502, 504, 500, 200, 0], ids=str)
def test_a_gateway_error_after_queueing_is_unknown_and_never_resent(db, tmp_path, answer):
    """502/504 (and 500, a 200 that is not the API's answer, a dropped connection) after the
    provider queued the message: one message on the phone, the delivery `unknown`, no resend."""
    org, [invoice], store = _shop(db, tmp_path, 1)
    _phones(db, org["id"])
    with TextProviderStandIn() as api:
        api.outbox.queue_then_answer = [answer]
        provider = TextMessages(base_url=api.url)
        first = send_invoices(
            db.engine,
            store,
            TextTransport(provider),
            find_organization(db.engine, org["slug"]),
            backoff_seconds=0.01,
        )
        second = send_invoices(
            db.engine,
            store,
            TextTransport(provider),
            find_organization(db.engine, org["slug"]),
            backoff_seconds=0.01,
        )
        asked = send_invoices(
            db.engine,
            store,
            TextTransport(provider),
            find_organization(db.engine, org["slug"]),
            [invoice],
            retry_failed=True,
        )
        arrived = list(api.outbox.messages)
    assert len(arrived) == 1  # the customer got exactly one text
    assert first.sent == 0 and invoice in first.unknown and first.retries == 0
    assert second.sent == 0 and asked.sent == 0
    assert "resend" in asked.skipped[invoice]
    [(status, error)] = _statuses(db, org["id"])
    assert status == "unknown"
    assert "may have taken the message" in error or "broke" in error


def test_a_refusal_for_now_is_tried_again_and_goes_once(db, tmp_path):
    """503 with Retry-After and 429 turn the message away before it is queued: tried again after
    a pause, it arrives once and the delivery is `sent`."""
    org, [invoice], store = _shop(db, tmp_path, 1)
    _phones(db, org["id"])
    with TextProviderStandIn() as api:
        api.outbox.fail_next = 1  # 503, Retry-After
        api.outbox.throttle_next = 1
        provider = TextMessages(base_url=api.url)
        summary = send_invoices(
            db.engine,
            store,
            TextTransport(provider),
            find_organization(db.engine, org["slug"]),
            backoff_seconds=0.01,
        )
        arrived = list(api.outbox.messages)
    assert summary.sent == 1 and summary.retries == 2 and not summary.unknown
    assert len(arrived) == 1
    assert _statuses(db, org["id"]) == [("sent", None)]


def test_a_resend_on_purpose_sends_the_unknown_one_again(db, tmp_path):
    """`unknown` is not a dead end: the user who checked may resend on purpose, once."""
    org, [invoice], store = _shop(db, tmp_path, 1)
    _phones(db, org["id"])
    with TextProviderStandIn() as api:
        api.outbox.queue_then_answer = [502]
        provider = TextMessages(base_url=api.url)
        send_invoices(
            db.engine, store, TextTransport(provider), find_organization(db.engine, org["slug"])
        )
        again = send_invoices(
            db.engine,
            store,
            TextTransport(provider),
            find_organization(db.engine, org["slug"]),
            [invoice],
            resend=True,
        )
        arrived = list(api.outbox.messages)
    assert again.sent == 1 and len(arrived) == 2
    assert [status for status, _ in _statuses(db, org["id"])] == ["unknown", "sent"]
