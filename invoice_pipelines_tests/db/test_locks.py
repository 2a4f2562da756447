"""Named locks and leases: one writer per organization and lock, nobody else held up, and a lease that
a heartbeat keeps, a dead holder loses and leaving gives back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, text, update

from invoice_pipelines.db.locks import (
    Lease,
    LeaseName,
    Lock,
    LockBusy,
    chunk_key,
    held_lease,
    lease,
    realm_key,
    session_lock,
    xact_lock,
)
from invoice_pipelines.db.tables import qbo_connections
from invoice_pipelines.db.tenancy import tenant_transaction

HOUR = timedelta(hours=1)


def _until(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    """Wait for `condition`; the time limit only ends a test that is failing anyway."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


def _waiting(db, lock: Lock, key: int) -> int:
    """Sessions waiting for `lock` on `key` (PostgreSQL's own view of its lock queue)."""
    if lock.namespace is None:
        high, low, space = key >> 32, key & 0xFFFFFFFF, 1
    else:
        high, low, space = lock.namespace, key, 2
    with db.owner_engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND classid = :high AND objid = :low AND objsubid = :space"
            ),
            {"high": high, "low": low, "space": space},
        ).scalar_one()


def _promptly(conn) -> None:
    """Make a lock this transaction would wait for an error instead of a hang."""
    conn.execute(text("SET LOCAL lock_timeout = '20s'"))


def test_the_lock_numbers_never_change():
    # a deployment with old and new code side by side must still exclude itself
    assert {lock.name: lock.namespace for lock in Lock} == {
        "INTAKE": 7301,
        "EXPORT": 7302,
        "DOCUMENTS": 7303,
        "SENDING": 7304,
        "QBO_REQUESTS": 7305,
        "QBO_REALM": 7306,
        "AUDIT_SEALS": 7383,
        "ORGANIZATION_VAT_IDS": 7307,
        "BILLING_CHUNK": None,
    }
    # a realm's key is fixed by its id alone (every process and version computes the same)
    assert realm_key("9130350000000001") == 3_408_909_741 - 2**31
    assert chunk_key(3, 500) == 3 * 2**32 + 500
    assert chunk_key(7, 2**32 + 9) == 7 * 2**32 + 9  # a position wraps into its 32 bits


@pytest.mark.parametrize("lock,key", [(Lock.INTAKE, 2**31), (Lock.BILLING_CHUNK, 2**63)])
def test_a_key_the_lock_cannot_hold_is_refused(pg_database, lock, key):
    with (
        tenant_transaction(pg_database.engine, 1) as conn,
        pytest.raises(ValueError, match="does not fit"),
    ):
        xact_lock(conn, lock, key)


@pytest.mark.parametrize("lock", [Lock.EXPORT, Lock.BILLING_CHUNK])
def test_a_second_transaction_waits_until_the_first_commits(pg_database, lock):
    db = pg_database
    org = db.new_organization()
    key = org["id"] if lock.namespace else chunk_key(org["id"], 1)
    events: list[str] = []
    first_holds = threading.Event()

    def second() -> None:
        first_holds.wait()
        with tenant_transaction(db.engine, org["id"], write=True) as conn:
            xact_lock(conn, lock, key)
            events.append("second locked")

    with ThreadPoolExecutor(1) as pool:
        waiter = pool.submit(second)
        with tenant_transaction(db.engine, org["id"], write=True) as conn:
            xact_lock(conn, lock, key)
            events.append("first locked")
            first_holds.set()
            _until(lambda: _waiting(db, lock, key) == 1 or waiter.done(), "the second to queue up")
            events.append("first commits")
        waiter.result(timeout=60)
    assert events == ["first locked", "first commits", "second locked"]


def test_other_organizations_other_locks_and_the_other_key_space_are_not_held_up(pg_database):
    db = pg_database
    org, other_org = db.new_organization(), db.new_organization()
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        xact_lock(conn, Lock.INTAKE, org["id"])
        with tenant_transaction(db.engine, other_org["id"], write=True) as other:
            _promptly(other)
            xact_lock(other, Lock.INTAKE, other_org["id"])
        with tenant_transaction(db.engine, org["id"], write=True) as other:
            _promptly(other)
            for lock in (Lock.EXPORT, Lock.DOCUMENTS, Lock.SENDING):
                xact_lock(other, lock, org["id"])
            # the same two numbers as one bigint: PostgreSQL keeps the key spaces apart
            xact_lock(other, Lock.BILLING_CHUNK, chunk_key(Lock.INTAKE.namespace, org["id"]))
        with session_lock(db.engine, Lock.SENDING, org["id"]):
            pass


def test_a_second_session_is_refused_in_one_sentence_until_the_first_leaves(pg_database):
    db = pg_database
    org = db.new_organization()

    class AlreadyExporting(LockBusy):
        pass

    def try_lock(**busy) -> str:
        with session_lock(db.engine, Lock.SENDING, org["id"], **busy):
            return "held"

    with ThreadPoolExecutor(1) as pool:
        with session_lock(db.engine, Lock.SENDING, org["id"]):
            with pytest.raises(LockBusy) as refused:
                pool.submit(try_lock).result(timeout=60)
            assert str(refused.value) == f"another run holds the sending lock for {org['id']}"
            with pytest.raises(AlreadyExporting, match="^busy here$"):
                pool.submit(try_lock, busy=AlreadyExporting, message="busy here").result(60)
            # the other organization, and the same number in a transaction lock's namespace
            with session_lock(db.engine, Lock.SENDING, db.new_organization()["id"]):
                pass
            with session_lock(db.engine, Lock.DOCUMENTS, org["id"]):
                pass
        assert pool.submit(try_lock).result(timeout=60) == "held"
        with pytest.raises(KeyError), session_lock(db.engine, Lock.SENDING, org["id"]):
            raise KeyError("the run failed")
        assert pool.submit(try_lock).result(timeout=60) == "held"


def test_a_session_lock_excludes_code_that_still_uses_the_bare_number(pg_database):
    db = pg_database
    org = db.new_organization()
    with session_lock(db.engine, Lock.SENDING, org["id"]), db.engine.connect() as old:
        assert not old.execute(
            text("SELECT pg_try_advisory_lock(7304, :org)"), {"org": org["id"]}
        ).scalar()


def test_on_sqlite_the_advisory_locks_change_nothing(sqlite_database):
    db = sqlite_database
    org = db.new_organization()
    with tenant_transaction(db.engine, org["id"]) as conn:
        xact_lock(conn, Lock.INTAKE, org["id"])
        xact_lock(conn, Lock.BILLING_CHUNK, chunk_key(1, 1))
    # one writer at a time already; a second session lock is not refused
    with session_lock(db.engine, Lock.SENDING, org["id"]):
        with session_lock(db.engine, Lock.SENDING, org["id"]):
            pass


# -- leases ----------------------------------------------------------------------------------------


@pytest.fixture
def slot(db):
    """An organization with a row for the QuickBooks sync lease."""
    org = db.new_organization()
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(
            insert(qbo_connections).values(
                organization_id=org["id"],
                realm_id="9130",
                client_id="client",
                client_secret_enc="-",
                refresh_token_enc="-",
            )
        )
    return db, org["id"]


def _row(db, org_id: int) -> dict:
    c = qbo_connections.c
    with tenant_transaction(db.engine, org_id) as conn:
        query = select(c.sync_owner, c.sync_lease_until).where(c.organization_id == org_id)
        row = conn.execute(query).mappings().one()
    return {"holder": row["sync_owner"], "until": row["sync_lease_until"]}


def _set_row(db, org_id: int, **values) -> None:
    with tenant_transaction(db.engine, org_id, write=True) as conn:
        conn.execute(
            update(qbo_connections)
            .where(qbo_connections.c.organization_id == org_id)
            .values(**values)
        )


def _lease(db, org_id: int, holder: str, **options):
    options = {"ttl": HOUR, "renew_every": HOUR, **options}
    return lease(db.engine, LeaseName.QBO_SYNC, org_id, holder, **options)


def _beats(held: Lease) -> bool:
    return any(t is held.heartbeat for t in threading.enumerate())


def test_a_second_holder_is_refused_while_the_first_renews_and_leaving_frees_it(slot):
    db, org_id = slot
    with _lease(db, org_id, "first", renew_every=timedelta(seconds=0.02)) as held:
        first_end = _row(db, org_id)["until"]
        assert held_lease(LeaseName.QBO_SYNC, org_id) is held
        _until(lambda: held.renewals >= 2, "two renewals")
        row = _row(db, org_id)
        assert row["holder"] == "first" and row["until"] > first_end
        with pytest.raises(LockBusy, match="another run holds the qbo-sync lease"):
            with _lease(db, org_id, "second"):
                pass
        assert _row(db, org_id)["holder"] == "first"
    assert _row(db, org_id) == {"holder": None, "until": None}
    assert held_lease(LeaseName.QBO_SYNC, org_id) is None
    assert not _beats(held)
    with _lease(db, org_id, "second"):
        assert _row(db, org_id)["holder"] == "second"


def test_a_lease_that_ran_out_is_taken_over_and_its_old_holder_frees_only_its_own(slot):
    db, org_id = slot
    with _lease(db, org_id, "dead", ttl=timedelta(milliseconds=1)) as dead:
        # the holder stopped renewing (a machine asleep, a process stopped): its time runs out
        end = _row(db, org_id)["until"]
        _until(lambda: datetime.now(UTC) > end, "the lease to run out")
        taking_over = _lease(db, org_id, "next")
        taken = taking_over.__enter__()
        assert _row(db, org_id)["holder"] == "next"
    assert not _beats(dead)
    assert _row(db, org_id)["holder"] == "next"  # the old holder left the new one's lease alone
    assert held_lease(LeaseName.QBO_SYNC, org_id) is None  # this context never held `next`
    taking_over.__exit__(None, None, None)
    assert not _beats(taken)
    assert _row(db, org_id) == {"holder": None, "until": None}


def test_a_holder_whose_lease_was_taken_hears_it_at_the_next_beat(slot):
    db, org_id = slot
    with _lease(db, org_id, "asleep", renew_every=timedelta(seconds=0.02)) as held:
        _set_row(db, org_id, sync_owner="other", sync_lease_until=datetime.now(UTC) + HOUR)
        assert held.lost.wait(60)
        assert held_lease(LeaseName.QBO_SYNC, org_id) is None
        held.heartbeat.join(60)
        assert not held.heartbeat.is_alive()  # a lost lease is not renewed again
    assert _row(db, org_id)["holder"] == "other"


def test_a_waiting_holder_gets_the_lease_once_the_first_leaves(slot):
    db, org_id = slot
    first = _lease(db, org_id, "first")
    first.__enter__()

    def second() -> str:
        with _lease(db, org_id, "second", wait=HOUR, poll_seconds=0.01):
            return _row(db, org_id)["holder"]

    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(second)  # it asks while the first holds the lease, or just after
        first.__exit__(None, None, None)
        assert waiting.result(timeout=60) == "second"
    assert _row(db, org_id) == {"holder": None, "until": None}


def test_without_its_row_the_lease_is_busy(db):
    org = db.new_organization()
    with pytest.raises(LockBusy), _lease(db, org["id"], "first"):
        pass
