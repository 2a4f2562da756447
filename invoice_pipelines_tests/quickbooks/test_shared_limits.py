"""QBO's limits kept across processes (issue 59): every process that talks to a realm counts its
requests in our database, so two pushes at once never meet a 429, and a push fills each minute to
QBO's 500.

Against the QBO simulator over real HTTP on 127.0.0.1, which enforces QBO's limits (500 items a
minute, 10 a second, 10 in flight, 40 batches a minute) and logs what it counted; on SQLite and
PostgreSQL. Nothing here measures time: what is counted is what the simulator logged.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter

import pytest
from sqlalchemy import func, insert, select

from invoice_pipelines.db.tables import qbo_push_queue, qbo_realm_requests
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.quickbooks.domain.limits import Ticket
from invoice_pipelines.quickbooks.domain.realm_meter import STALE_IN_FLIGHT_S, SharedRealmLimiter
from invoice_pipelines.quickbooks.domain.sync.common import QboSettings, open_client
from invoice_pipelines.quickbooks.domain.sync.invoices import push_invoices
from invoice_pipelines_devtools.bench.qbo_push import seed
from invoice_pipelines_tests.quickbooks.conftest import TOKEN_KEY, connect

try:
    from invoice_pipelines_devtools.qbo_simulator import QboSimulator
except ImportError:  # the package's export may land after its server module
    from invoice_pipelines_devtools.qbo_simulator.server import QboSimulator

# QBO's minute in six real seconds: slow enough that a window's batches leave well within it on a
# busy machine, so the windows are the limiter's and not the machine's
SCALE = 10.0


@pytest.fixture
def sim():
    with QboSimulator(port=0, time_scale=SCALE) as simulator:
        yield simulator


def _shop(db, sim, invoices: int):
    """An organization connected to a company of its own, its customers and items linked, and
    `invoices` sales invoices of two lines waiting to be pushed."""
    qbo = connect(db, sim, custom_txn_numbers=False)
    seed(db.engine, qbo.org_id, sim, qbo.realm, invoices)
    return qbo


def _settings(sim) -> QboSettings:
    return QboSettings(
        base_url=sim.base_url, token_url=sim.token_url, token_key=TOKEN_KEY, time_scale=SCALE
    )


def _batches(sim, realm: str) -> list[dict]:
    """The batch requests the simulator let in, in the order it counted them."""
    return sorted(
        (e for e in sim.requests(realm) if "/batch" in e["path"] and "metered_at" in e),
        key=lambda e: e["metered_at"],
    )


def _most_in_a_minute(entries: list[dict]) -> int:
    """The most items the simulator counted in any 60 s of its clock."""
    return max(
        sum(
            e["items"]
            for e in entries
            if start["metered_at"] <= e["metered_at"] < start["metered_at"] + 60
        )
        for start in entries
    )


def _pushed_once(db, sim, qbo, invoices: int) -> None:
    in_qbo = [r["DocNumber"] for r in sim.records(qbo.realm, "Invoice")]
    assert len(in_qbo) == invoices
    assert len(set(in_qbo)) == invoices  # none twice
    with tenant_transaction(db.engine, qbo.org_id) as conn:
        statuses = dict(
            conn.execute(
                select(qbo_push_queue.c.status, func.count())
                .where(qbo_push_queue.c.organization_id == qbo.org_id)
                .group_by(qbo_push_queue.c.status)
            ).all()
        )
    assert statuses == {"pushed": invoices}


def _worker(db, sim, qbo) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "invoice_pipelines_tests.quickbooks.push_worker",
            db.url,
            str(qbo.org_id),
            sim.base_url,
            sim.token_url,
            TOKEN_KEY,
            str(SCALE),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_two_processes_pushing_to_one_realm_together_never_meet_qbos_limit(db, sim):
    """A push run and a second one (a command, another run) at once: without the lease both
    push the same queue, each its own claims, and together they stay within QBO's limits."""
    invoices = 600  # more than one of QBO's minutes: the second waits for its window
    qbo = _shop(db, sim, invoices)
    workers = [_worker(db, sim, qbo) for _ in range(2)]
    try:
        outputs = [w.communicate(timeout=300) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait(30)
    for w, (_out, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, err
    counts = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert sum(c["pushed"] for c in counts) == invoices
    assert all(c["failed"] == 0 for c in counts), counts
    # both pushed: the two overlapped, so together they were held to one realm's limit
    assert all(c["pushed"] > 0 for c in counts), counts

    assert sim.stats(qbo.realm)["throttled"] == 0
    assert not [e for e in sim.requests(qbo.realm) if e.get("throttled")]
    assert _most_in_a_minute(_batches(sim, qbo.realm)) <= 500
    _pushed_once(db, sim, qbo, invoices)


def test_a_push_fills_each_minute_to_qbos_500(db, sim):
    """The last batch of a window is as large as what is left of QBO's 500: 16 x 30 and one of
    20, where whole batches of 30 under a reserve stopped at 480."""
    invoices = 600  # a full minute and what is left in the next
    qbo = _shop(db, sim, invoices)
    with open_client(db.engine, qbo.org_id, _settings(sim)) as client:
        counts = push_invoices(db.engine, qbo.organization, client)
    assert (counts.pushed, counts.failed) == (invoices, 0), counts.errors

    batches = _batches(sim, qbo.realm)
    first = batches[0]["metered_at"]
    window = [e["items"] for e in batches if e["metered_at"] < first + 60]
    assert sum(window) == 500
    assert sorted(Counter(window).items()) == [(20, 1), (30, 16)]
    assert _most_in_a_minute(batches) == 500
    assert sum(e["items"] for e in batches) == invoices
    assert sim.stats(qbo.realm)["throttled"] == 0
    _pushed_once(db, sim, qbo, invoices)


def test_a_429_is_honoured_and_the_refused_request_sent_again_once(db, sim):
    """QBO refuses a batch with 429 and Retry-After: the push waits, sends it again under the
    same requestid, and every invoice is in QBO once."""
    invoices = 90
    qbo = _shop(db, sim, invoices)
    sim.configure(retry_after=True)
    try:
        sim.inject(qbo.realm, "429", count=1, path_contains="batch")
        with open_client(db.engine, qbo.org_id, _settings(sim)) as client:
            counts = push_invoices(db.engine, qbo.organization, client)
            throttled = client.stats["throttled"]
    finally:
        sim.configure(retry_after=False)
    assert (counts.pushed, counts.failed) == (invoices, 0), counts.errors
    assert throttled == 1
    refused = [e for e in sim.requests(qbo.realm) if e.get("injected") == "429"]
    assert len(refused) == 1
    again = [e for e in _batches(sim, qbo.realm) if e["requestid"] == refused[0]["requestid"]]
    assert len(again) == 1  # the same batch, once more, after the wait
    _pushed_once(db, sim, qbo, invoices)
    # our count is QBO's: the refused request counts for nothing, none is left in flight
    with tenant_transaction(db.engine, qbo.org_id) as conn:
        rows = conn.execute(
            select(
                qbo_realm_requests.c.cost,
                qbo_realm_requests.c.batch,
                qbo_realm_requests.c.in_flight,
            ).where(qbo_realm_requests.c.organization_id == qbo.org_id)
        ).all()
    assert not [r for r in rows if r.in_flight]
    assert sorted(r.cost for r in rows if r.batch) == sorted(
        e["items"] for e in _batches(sim, qbo.realm)
    )


def test_a_dead_process_request_in_flight_stops_counting_once_stale(db, sim):
    """A process that died with a request in flight left its row; it holds back the others
    until it is older than any request can take, then counts no more."""
    qbo = connect(db, sim)
    limiter = SharedRealmLimiter(db.engine, qbo.org_id, qbo.realm)
    now = time.time()
    with tenant_transaction(db.engine, qbo.org_id, write=True) as conn:
        conn.execute(
            insert(qbo_realm_requests),
            [
                {
                    "organization_id": qbo.org_id,
                    "realm_id": qbo.realm,
                    "at": at,
                    "cost": 250,
                    "batch": False,
                    "in_flight": True,
                }
                for at in (now - 5, now - STALE_IN_FLIGHT_S - 5)
            ],
        )
    # the young one counts (250 of the 500 are taken), the stale one does not
    ticket, _wait = limiter._try(250, 250, False)
    assert isinstance(ticket, Ticket) and ticket.cost == 250
    ticket_more, wait = limiter._try(1, 1, False)
    assert ticket_more is None and wait > 0
    limiter._delete(ticket)


def test_two_organizations_count_apart(db, sim):
    """Each organization's realm has its own count (and its rows are its own)."""
    one, two = connect(db, sim), connect(db, sim)
    first = SharedRealmLimiter(db.engine, one.org_id, one.realm)
    second = SharedRealmLimiter(db.engine, two.org_id, two.realm)
    held = first.acquire(500)
    other, _wait = second._try(500, 500, False)  # the first realm's minute is not its own
    assert other is not None and other.cost == 500
    again, wait = first._try(1, 1, False)  # while the first's is full
    assert again is None and wait > 0
    first.cancel(held)
    second._delete(other)
