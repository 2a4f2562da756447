"""Mutual exclusion: every named lock and lease the pipelines take, and the only code that takes them.

- `xact_lock`: a PostgreSQL advisory lock held until the transaction ends; a second taker waits
  (and PostgreSQL sees the wait, so it breaks any deadlock it is part of).
- `session_lock`: a try-lock held on a connection of its own for as long as a block runs, beside
  any number of short transactions; a second taker is refused at once with `LockBusy`.
- `lease`: a row with a holder and an end, renewed by a heartbeat thread, for long work against an
  external system; unlike an advisory lock it outlives a lost connection and runs out on its own.

On SQLite the advisory locks are no-ops: there is one writer at a time (`tenant_transaction(...,
write=True)` takes the write lock at BEGIN) and one local user. Leases work on both engines.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum

from sqlalchemy import Connection, Engine, Table, text, update

from invoice_pipelines.db.tables import qbo_connections
from invoice_pipelines.db.tenancy import tenant_transaction

_INT32 = range(-(2**31), 2**31)
_INT64 = range(-(2**63), 2**63)


class Lock(Enum):
    """Every advisory lock, by name. The numbers are fixed: a deployment where old and new code run
    side by side must still exclude itself, so a number is never reused or changed."""

    # key: the organization id, in the namespace (PostgreSQL's two-integer key space)
    INTAKE = 7301  # one intake writer per organization (its duplicate check reads, then writes)
    EXPORT = 7302  # one export writer per organization
    DOCUMENTS = 7303  # one recorder of built documents per organization
    SENDING = 7304  # one sending run per organization (a session lock)
    # one counter at a time of the requests sent to the organization's QBO realm
    QBO_REQUESTS = 7305
    # key: `realm_key(realm id)`: one connect at a time to a QBO company, so two organizations
    # never both connect to it (quickbooks/domain/tokens.py, save_connection)
    QBO_REALM = 7306
    # one sealer of the organization's audit chain at a time (audit/domain/verify.py): two
    # verifications would otherwise both seal the same next position
    AUDIT_SEALS = 7383
    # key 0: one writer of organizations' VAT ids at a time (tenants/domain/lifecycle.py, add and
    # change), so two organizations never take one VAT id at once (its check reads, then writes)
    ORGANIZATION_VAT_IDS = 7307
    # key: `chunk_key(job id, chunk position)`, one bigint: PostgreSQL's one-integer key space,
    # which never meets the two-integer one, so it needs no namespace and its keys stay as they were
    BILLING_CHUNK = "bigint"

    @property
    def namespace(self) -> int | None:
        return self.value if isinstance(self.value, int) else None


def realm_key(realm_id: str) -> int:
    """The QBO_REALM key of a QBO company's realm id (two realms may share one: they then only
    wait for each other)."""
    return zlib.crc32(realm_id.encode()) - 2**31


def chunk_key(job_id: int, after: int) -> int:
    """The BILLING_CHUNK key of the chunk of batch job `job_id` that starts after item `after`."""
    return (job_id << 32) | (after & 0xFFFFFFFF)


class LockBusy(RuntimeError):
    """Someone else holds the lock or lease; subclasses say who in the caller's words."""


def _key_sql(lock: Lock, key: int) -> tuple[str, dict]:
    """The arguments of a pg_*advisory* function for `lock` and `key`, checked."""
    if lock.namespace is None:
        if key not in _INT64:
            raise ValueError(f"{lock.name} key {key} does not fit a bigint")
        return "CAST(:key AS bigint)", {"key": key}
    if key not in _INT32:
        raise ValueError(f"{lock.name} key {key} does not fit an integer")
    return ":ns, :key", {"ns": lock.namespace, "key": key}


def xact_lock(conn: Connection, lock: Lock, key: int) -> None:
    """Hold `lock` for `key` (for most locks the organization id) until `conn`'s transaction ends;
    wait while another transaction holds it. SQLite: nothing to do (one writer at a time)."""
    if conn.dialect.name != "postgresql":
        return
    args, params = _key_sql(lock, key)
    conn.execute(text(f"SELECT pg_advisory_xact_lock({args})"), params)


@contextmanager
def session_lock(
    engine: Engine,
    lock: Lock,
    key: int,
    *,
    busy: type[LockBusy] = LockBusy,
    message: str | None = None,
    wait: bool = False,
) -> Iterator[None]:
    """Hold `lock` for `key` while the block runs, on a connection of its own; raise `busy(message)`
    at once when another session holds it, or with `wait` wait for it. The lock goes with the
    connection, so a run that dies frees it. SQLite: the block just runs (one writer at a time).

    Waiting here, before a REPEATABLE READ transaction begins, is what makes that transaction see
    what the lock's previous holder committed: taken inside it (`xact_lock`), the wait would come
    after its first statement fixed the snapshot, and rows the holder inserted meanwhile (a
    partner's account) would be invisible to it and collide."""
    if engine.dialect.name != "postgresql":
        yield
        return
    args, params = _key_sql(lock, key)
    with engine.connect() as conn:
        if wait:
            conn.execute(text(f"SELECT pg_advisory_lock({args})"), params)
            got = True
        else:
            got = conn.execute(text(f"SELECT pg_try_advisory_lock({args})"), params).scalar()
        conn.commit()
        if not got:
            raise busy(message or f"another run holds the {lock.name.lower()} lock for {key}")
        try:
            yield
        finally:
            conn.execute(text(f"SELECT pg_advisory_unlock({args})"), params)
            conn.commit()


# -- leases ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaseSlot:
    """Where a lease lives: a table with one row per organization, a holder and an end column."""

    name: str
    table: Table
    holder: str
    until: str


class LeaseName(Enum):
    """Every lease, by name."""

    # one QuickBooks sync per organization and realm, whatever launched it
    QBO_SYNC = LeaseSlot("qbo-sync", qbo_connections, "sync_owner", "sync_lease_until")


@dataclass
class Lease:
    """A lease held by `holder`; `lost` is set when a renewal found another holder (the lease had
    run out, e.g. while the machine was suspended, and someone took it): work should stop."""

    name: LeaseName
    organization_id: int
    holder: str
    lost: threading.Event = field(default_factory=threading.Event)
    renewals: int = 0
    renewed: threading.Event = field(default_factory=threading.Event)  # set by every renewal
    heartbeat: threading.Thread | None = field(default=None, repr=False)


# the leases the current run holds (set by `lease` in the thread that holds them), so code deep in
# a run can ask whether it may trust work left half done to be a dead run's
_held: ContextVar[tuple[Lease, ...]] = ContextVar("held_leases", default=())


def held_lease(name: LeaseName, organization_id: int) -> Lease | None:
    """The lease `name` of `organization_id` this run holds and has not lost, if any."""
    for held in _held.get():
        if held.name is name and held.organization_id == organization_id:
            return None if held.lost.is_set() else held
    return None


def utc_now() -> datetime:
    """The clock leases go by (a test passes one it advances itself)."""
    return datetime.now(UTC)


def _take(
    engine: Engine,
    name: LeaseName,
    organization_id: int,
    holder: str,
    ttl: timedelta,
    now: datetime,
):
    """Take the lease if it is free, ran out or is `holder`'s already; whether it was taken."""
    slot = name.value
    c = slot.table.c
    with tenant_transaction(engine, organization_id, write=True) as conn:
        return bool(
            conn.execute(
                update(slot.table)
                .where(
                    c.organization_id == organization_id,
                    c[slot.until].is_(None) | (c[slot.until] < now) | (c[slot.holder] == holder),
                )
                .values({slot.holder: holder, slot.until: now + ttl})
            ).rowcount
        )


def _renew(engine: Engine, held: Lease, ttl: timedelta, now: datetime) -> bool:
    """Move the lease's end `ttl` ahead of `now` while `held.holder` still holds it."""
    slot = held.name.value
    c = slot.table.c
    with tenant_transaction(engine, held.organization_id, write=True) as conn:
        return bool(
            conn.execute(
                update(slot.table)
                .where(c.organization_id == held.organization_id, c[slot.holder] == held.holder)
                .values({slot.until: now + ttl})
            ).rowcount
        )


def _release(engine: Engine, held: Lease) -> None:
    """Free the lease if `held.holder` still holds it (never someone else's that took it over)."""
    slot = held.name.value
    c = slot.table.c
    with tenant_transaction(engine, held.organization_id, write=True) as conn:
        conn.execute(
            update(slot.table)
            .where(c.organization_id == held.organization_id, c[slot.holder] == held.holder)
            .values({slot.holder: None, slot.until: None})
        )


@contextmanager
def lease(
    engine: Engine,
    name: LeaseName,
    organization_id: int,
    holder: str,
    *,
    ttl: timedelta,
    renew_every: timedelta,
    wait: timedelta = timedelta(0),
    poll_seconds: float = 5.0,
    busy: type[LockBusy] = LockBusy,
    message: str | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Iterator[Lease]:
    """Hold lease `name` of `organization_id` while the block runs: two holders (on any machines)
    never hold it at once; a second one tries again every `poll_seconds` for up to `wait`, then
    `busy(message)`. A heartbeat thread moves the end `ttl` ahead every `renew_every`, so work
    longer than `ttl` keeps it; a holder that dies keeps it until it runs out. The organization's
    row must exist (no row: busy). Leaving releases the lease and stops the heartbeat."""
    holder = holder[: name.value.table.c[name.value.holder].type.length or None]
    deadline = time.monotonic() + wait.total_seconds()
    while not _take(engine, name, organization_id, holder, ttl, clock()):
        if time.monotonic() >= deadline:
            raise busy(message or f"another run holds the {name.value.name} lease")
        time.sleep(poll_seconds)
    held = Lease(name, organization_id, holder)
    done = threading.Event()

    def beat() -> None:
        while not done.wait(renew_every.total_seconds()):
            try:
                renewed = _renew(engine, held, ttl, clock())
            except Exception:  # a database hiccup: the next beat tries again, the lease has time
                continue
            if not renewed:
                held.lost.set()
                return
            held.renewals += 1
            held.renewed.set()

    held.heartbeat = threading.Thread(
        target=beat, name=f"lease-{name.value.name}-{organization_id}", daemon=True
    )
    held.heartbeat.start()
    token = _held.set((*_held.get(), held))
    try:
        yield held
    finally:
        _held.reset(token)
        done.set()
        held.heartbeat.join()
        _release(engine, held)
