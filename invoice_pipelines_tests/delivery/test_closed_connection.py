"""Invoices by e-mail to a mail server that closes the connection on the sender: a limit of
messages per connection (421), a connection dropped without a word at the next message (a
restart, an idle timeout). Nothing of such a message left, so it is tried again over a new
connection: every invoice arrives once, none is left unknown for a person to settle. A server
that keeps closing fails that one invoice with the reason and leaves the rest for the next run."""

from __future__ import annotations

from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines.delivery.domain.pipeline import send_invoice_emails
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.delivery.test_email import (
    _numbers,
    _rows,
    _shop,
    delivery_column,
)


def _attempts(db, org_id: int) -> dict[int, object]:
    return delivery_column(db, org_id, "attempts")


def test_a_server_limiting_messages_per_connection_gets_every_invoice_once(db, tmp_path):
    org, ids, store = _shop(db, tmp_path, 8)
    with SmtpSink() as sink:
        sink.mailbox.messages_per_connection = 3  # the 4th and the 7th MAIL: 421, closed
        mailer = Smtp(port=sink.port, timeout_seconds=10)
        summary = send_invoice_emails(
            db.engine,
            store,
            mailer,
            find_organization(db.engine, org["slug"]),
            connections=1,
            backoff_seconds=0.01,
        )
        arrived = sink.mailbox.by_subject_number()
    assert summary.sent == 8 and not summary.failed and not summary.unknown, summary
    assert not summary.skipped and summary.retries == 2
    assert len(arrived) == 8 and set(arrived.values()) == {1}
    assert {status for status, *_ in _rows(db, org["id"]).values()} == {"sent"}
    attempts = _attempts(db, org["id"])
    assert sorted(attempts.values()) == [1] * 6 + [2] * 2
    assert [attempts[i] for i in (ids[3], ids[6])] == [2, 2]


def test_a_connection_dropped_at_the_next_message_is_opened_again(db, tmp_path):
    org, ids, store = _shop(db, tmp_path, 6)
    with SmtpSink() as sink:

        def drop_the_next(_message) -> None:
            if sink.mailbox.count() == 2:
                sink.mailbox.drops = 1  # the 3rd message's MAIL: closed without a reply

        sink.mailbox.on_message = drop_the_next
        mailer = Smtp(port=sink.port, timeout_seconds=10)
        summary = send_invoice_emails(
            db.engine,
            store,
            mailer,
            find_organization(db.engine, org["slug"]),
            connections=1,
            backoff_seconds=0.01,
        )
        arrived = sink.mailbox.by_subject_number()
    assert summary.sent == 6 and not summary.unknown and not summary.failed, summary
    assert summary.retries == 1
    assert len(arrived) == 6 and set(arrived.values()) == {1}
    assert _attempts(db, org["id"])[ids[2]] == 2


def test_a_server_that_keeps_closing_fails_one_invoice_and_the_rest_waits(db, tmp_path):
    org, ids, store = _shop(db, tmp_path, 5)
    numbers = _numbers(db, org["id"])
    with SmtpSink() as sink:

        def close_from_now_on(_message) -> None:
            if sink.mailbox.count() == 1:
                sink.mailbox.drops = 100

        sink.mailbox.on_message = close_from_now_on
        mailer = Smtp(port=sink.port, timeout_seconds=10)
        summary = send_invoice_emails(
            db.engine,
            store,
            mailer,
            find_organization(db.engine, org["slug"]),
            connections=1,
            retries=2,
            backoff_seconds=0.01,
        )
        assert summary.sent == 1 and not summary.unknown, summary
        assert list(summary.failed) == [ids[1]] and summary.retries == 2
        assert (
            "closed the connection before the message was handed over" in (summary.failed[ids[1]])
        )
        assert sorted(summary.skipped) == sorted(ids[2:])
        assert all("not sent in this run" in why for why in summary.skipped.values())
        rows = _rows(db, org["id"])
        assert rows[ids[1]][0] == "failed" and set(rows) == {ids[0], ids[1]}
        # the server is well again: the next run sends the rest, the failed one when asked
        sink.mailbox.drops = 0
        later = send_invoice_emails(
            db.engine,
            store,
            mailer,
            find_organization(db.engine, org["slug"]),
            backoff_seconds=0.01,
        )
        again = send_invoice_emails(
            db.engine,
            store,
            mailer,
            find_organization(db.engine, org["slug"]),
            retry_failed=True,
            backoff_seconds=0.01,
        )
        arrived = sink.mailbox.by_subject_number()
    assert later.sent == 3 and again.sent == 1
    assert arrived == {numbers[i]: 1 for i in ids}
    assert {status for status, *_ in _rows(db, org["id"]).values()} == {"sent"}
