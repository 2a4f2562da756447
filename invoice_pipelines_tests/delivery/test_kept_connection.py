"""Each sending connection keeps one database connection for its share of the messages (issue
59: no pool checkout and ping per message), and still commits every intent before its message
leaves; a kept connection the database dropped between two messages is replaced, as the pool's
ping replaced one before, and nothing is sent twice."""

from __future__ import annotations

from sqlalchemy import event, select, text

from invoice_pipelines.db.tables import deliveries
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.delivery.domain.pipeline import send_invoice_emails
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.delivery.test_email import _rows, _shop


def _statuses_when_each_arrived(db, org_id: int, sink) -> list[dict[str, int]]:
    """A hook for the SMTP stand-in: the deliveries' statuses at the moment each message
    arrives (the sender is waiting for the server's answer)."""
    seen: list[dict[str, int]] = []

    def look(_message) -> None:
        with tenant_transaction(db.engine, org_id) as conn:
            rows = conn.execute(
                select(deliveries.c.status).where(deliveries.c.organization_id == org_id)
            ).scalars()
            counts: dict[str, int] = {}
            for status in rows:
                counts[status] = counts.get(status, 0) + 1
        seen.append(counts)

    sink.mailbox.on_message = look
    return seen


def test_the_connections_keep_their_database_connection_and_commit_each_intent_first(db, tmp_path):
    org, ids, store = _shop(db, tmp_path, 12)
    checkouts: list[int] = []

    def count(*_args) -> None:
        checkouts.append(1)

    event.listen(db.engine.pool, "checkout", count)
    try:
        with SmtpSink() as sink:
            seen = _statuses_when_each_arrived(db, org["id"], sink)
            mailer = Smtp(port=sink.port)
            summary = send_invoice_emails(
                db.engine, store, mailer, find_organization(db.engine, org["slug"]), connections=2
            )
            arrived = sink.mailbox.by_subject_number()
    finally:
        event.remove(db.engine.pool, "checkout", count)
    assert summary.sent == 12 and not summary.failed and not summary.unknown
    assert len(arrived) == 12 and set(arrived.values()) == {1}
    # a message is on its way only once its intent is committed: each one the server has
    # is `sending` (or already `sent`) in the database, never missing
    for n, counts in enumerate(seen, start=1):
        assert counts.get("sending", 0) + counts.get("sent", 0) >= n, (n, counts)
        assert 1 <= counts.get("sending", 0) <= 2, (n, counts)  # one per connection at most
    assert {status for status, *_ in _rows(db, org["id"]).values()} == {"sent"}
    # the run's few reads and its lock, and one connection per sending connection: not one
    # checkout per message (the hook's own reads run on the test's side of the pool as well)
    assert len(checkouts) - len(seen) <= 6, len(checkouts)


def test_a_kept_connection_the_database_dropped_is_replaced_and_nothing_is_sent_twice(
    pg_database, tmp_path
):
    """One connection, so the drop falls between two of its messages (a drop inside a
    transaction fails the share, as it always did)."""
    db = pg_database
    org, ids, store = _shop(db, tmp_path, 6)
    terminated: list[int] = []

    def drop_the_senders_connections(_message) -> None:
        # the second message has arrived; its sender waits for the answer with its database
        # connection idle: the server drops every idle connection of this database but the lock
        # holder's (the run's session lock) and the one asking
        if len(terminated) or sink.mailbox.count() != 2:
            return
        with db.owner_engine.connect() as conn:
            terminated.extend(
                conn.execute(
                    text(
                        "WITH idle AS MATERIALIZED (SELECT pid FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                        "AND backend_type = 'client backend' AND state = 'idle' AND pid NOT IN "
                        "(SELECT pid FROM pg_locks WHERE locktype = 'advisory')) "
                        "SELECT pid FROM idle WHERE pg_terminate_backend(pid)"
                    )
                ).scalars()
            )
            conn.commit()

    with SmtpSink() as sink:
        sink.mailbox.on_message = drop_the_senders_connections
        mailer = Smtp(port=sink.port)
        summary = send_invoice_emails(
            db.engine, store, mailer, find_organization(db.engine, org["slug"]), connections=1
        )
        arrived = sink.mailbox.by_subject_number()
    assert terminated
    assert summary.sent == 6 and not summary.failed and not summary.unknown, summary
    assert len(arrived) == 6 and set(arrived.values()) == {1}
    assert {status for status, *_ in _rows(db, org["id"]).values()} == {"sent"}
