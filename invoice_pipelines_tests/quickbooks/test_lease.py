"""The organization's sync lease is renewed while a run works, and the invoice push is safe even
for runs that do not hold it: rows are claimed, a row another run is sending is left to it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from invoice_pipelines.db.tables import qbo_connections, qbo_push_queue
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.quickbooks.domain.sync.common import RealmBusy, held_lease, realm_lease
from invoice_pipelines.quickbooks.domain.sync.customers import sync_customers
from invoice_pipelines.quickbooks.domain.sync.invoices import enqueue, push_invoices, queue_counts
from invoice_pipelines.quickbooks.domain.sync.items import sync_items
from invoice_pipelines_tests.quickbooks.conftest import connect


def _lease_row(qbo) -> dict:
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        return dict(
            conn.execute(
                select(qbo_connections.c.sync_owner, qbo_connections.c.sync_lease_until).where(
                    qbo_connections.c.organization_id == qbo.org_id
                )
            )
            .mappings()
            .one()
        )


class _Clock:
    """The lease's clock, moved by the test: no waiting for a lease to run out."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def test_a_run_longer_than_its_lease_keeps_it_and_a_second_run_stays_out(qbo):
    clock = _Clock()
    period = timedelta(seconds=4)
    with realm_lease(
        qbo.engine,
        qbo.org_id,
        "long-run",
        period=period,
        renew_every=timedelta(milliseconds=20),
        clock=clock,
    ) as lease:
        first_end = _lease_row(qbo)["sync_lease_until"]
        assert held_lease(qbo.org_id) is lease
        # work until past the lease's first end: without renewal the lease would have run out
        clock.now += period + timedelta(seconds=1)
        # two renewals after the move: the second one surely read the moved clock
        for _ in range(2):
            lease.renewed.clear()
            assert lease.renewed.wait(10), "the heartbeat did not renew the lease"
        assert lease.renewals > 0 and not lease.lost.is_set()
        row = _lease_row(qbo)
        assert row["sync_owner"] == "long-run" and row["sync_lease_until"] > clock.now > first_end
        # a second run at the same moment finds the lease held (it would take a lapsed one)
        with (
            pytest.raises(RealmBusy),
            realm_lease(qbo.engine, qbo.org_id, "second-run", wait=timedelta(0), clock=clock),
        ):
            pass
    assert held_lease(qbo.org_id) is None
    assert _lease_row(qbo) == {"sync_owner": None, "sync_lease_until": None}
    with realm_lease(qbo.engine, qbo.org_id, "second-run", wait=timedelta(0), clock=clock):
        assert _lease_row(qbo)["sync_owner"] == "second-run"


def test_a_lease_taken_over_after_it_ran_out_is_reported_lost(qbo):
    with realm_lease(
        qbo.engine, qbo.org_id, "suspended-run", renew_every=timedelta(seconds=0.1)
    ) as lease:
        # as if this machine slept past the lease's end and another run took the organization
        with tenant_transaction(qbo.engine, qbo.org_id, write=True) as conn:
            conn.execute(
                update(qbo_connections)
                .where(qbo_connections.c.organization_id == qbo.org_id)
                .values(
                    sync_owner="other-run", sync_lease_until=datetime.now(UTC) + timedelta(hours=1)
                )
            )
        assert lease.lost.wait(10)
        assert held_lease(qbo.org_id) is None
    # leaving does not release the other run's lease
    assert _lease_row(qbo)["sync_owner"] == "other-run"


def _shop(qbo, invoices: int):
    customer = qbo.add_customer("Müller Werkzeugbau GmbH", email="buch@mueller.example")
    item = qbo.add_item("TOOL", "24.90", "Drehmomentschlüssel")
    with qbo.client() as client:
        sync_customers(qbo.engine, qbo.organization, client)
        sync_items(qbo.engine, qbo.organization, client)
    return [
        qbo.add_invoice(f"RE-2026-{n:04d}", customer, [(item, "2", "24.90")])
        for n in range(1, invoices + 1)
    ]


def test_two_push_runs_without_the_lease_send_each_invoice_once(db, simulator):
    # QBO's DocNumber check off: only our claims stand between two runs and duplicates
    qbo = connect(db, simulator, custom_txn_numbers=False)
    _shop(qbo, invoices=90)
    start = threading.Barrier(2)
    results, errors = [], []

    def push() -> None:
        try:
            with qbo.client() as client:
                start.wait()
                results.append(push_invoices(qbo.engine, qbo.organization, client, workers=3))
        except Exception as exc:  # reported below: a thread's exception is otherwise lost
            errors.append(exc)

    runs = [threading.Thread(target=push) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert errors == []
    assert sum(r.pushed for r in results) == 90 and sum(r.failed for r in results) == 0
    numbers = [r["DocNumber"] for r in simulator.records(qbo.realm, "Invoice")]
    assert len(numbers) == 90 and len(set(numbers)) == 90
    assert queue_counts(qbo.engine, qbo.org_id) == {"pushed": 90}


def test_without_the_lease_a_row_another_run_is_sending_is_left_alone(db, simulator):
    qbo = connect(db, simulator, custom_txn_numbers=False)
    ids = _shop(qbo, invoices=2)
    enqueue(qbo.engine, qbo.org_id)
    now = datetime.now(UTC)
    with tenant_transaction(qbo.engine, qbo.org_id, write=True) as conn:
        # the first: being sent by a live run right now; the second: left by a run gone for an hour
        for invoice_id, since in ((ids[0], now), (ids[1], now - timedelta(hours=1))):
            conn.execute(
                update(qbo_push_queue)
                .where(qbo_push_queue.c.sales_invoice_id == invoice_id)
                .values(status="sending", updated_at=since)
            )
    with qbo.client() as client:
        counts = push_invoices(qbo.engine, qbo.organization, client)
    assert counts.pushed == 1
    assert [r["DocNumber"] for r in simulator.records(qbo.realm, "Invoice")] == ["RE-2026-0002"]
    assert queue_counts(qbo.engine, qbo.org_id) == {"pushed": 1, "sending": 1}
