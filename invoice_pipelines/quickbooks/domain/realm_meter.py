"""QBO's limits of an organization's realm, kept for every process that talks to it (issue 59).

QBO allows a realm 500 requests a minute (each batch item counts), 10 a second, 10 in flight and
40 batch requests a minute, whoever sends them. A limiter per process cannot keep that when two
processes talk to one realm (a push run and `qbo-resolve` beside it, two runs): each would fill
the minute and together they meet 429s, and a 429 costs Intuit's minute. So the limiter kept 2 %
of the 500 back for the others, which cost a push of 5,000 invoices an eleventh window (0.909 of
the ceiling).

`SharedRealmLimiter` counts every request in our database instead (`qbo_realm_requests`, a row a
request), by the same rule as the limiter of one process (`limits.grant`): a request counts from
when it is sent until a minute (and its margin) after its answer came back, and while it is in
flight as if sent at every moment. Each acquire is one transaction under one lock per
organization: PostgreSQL's advisory transaction lock (`Lock.QBO_REQUESTS`), SQLite's write lock
(one machine, one writer at a time): it reads the realm's rows counted now, decides, and inserts
the new request's row before the lock goes; the answer moves the row's moment and a 429 deletes it
(QBO did not count it). Moments are the database's clock on PostgreSQL, so processes on several
machines count on one clock; on SQLite the machine's. So it keeps QBO's whole limits, no reserve.

A row still in flight after STALE_IN_FLIGHT_S (real seconds; the client gives up on a request
after 60 s without progress) is a dead process's and stops counting. An organization has one
connection, so one realm, and a realm one organization (`tokens.save_connection` refuses a second);
rows are the organization's (row-level security), so organizations that shared a company before
that check would each count only their own.

Cost per request: the acquire's transaction (scope, lock, one SELECT of the realm's rows, one
INSERT) and the answer's (one UPDATE); a batch push makes them once per batch of up to 30.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Float, and_, cast, delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from invoice_pipelines.db.locks import Lock, xact_lock
from invoice_pipelines.db.tables import qbo_realm_requests
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.quickbooks.domain.limits import (
    Clock,
    QboLimits,
    Ticket,
    WaitingLimiter,
    grant,
)

logger = logging.getLogger(__name__)

# a request in flight this long (real seconds) is a dead process's: its row stops counting
STALE_IN_FLIGHT_S = 600.0
# rows out of the window are deleted once this many have gathered (they count for nothing)
PRUNE_AT = 20
# all 10 in flight: how long (real seconds) until asking again (when an answer comes is unknown)
IN_FLIGHT_POLL_S = 0.02

SHARED_LIMITS = QboLimits(headroom=1.0)


class SharedRealmLimiter(WaitingLimiter):
    """The limiter of an organization's realm, in the database: `acquire`, `acquire_up_to`,
    `release`, `forget` and `cancel` as `limits.RealmLimiter` has them."""

    def __init__(
        self,
        engine,
        organization_id: int,
        realm_id: str,
        clock: Clock | None = None,
        limits: QboLimits | None = None,
    ) -> None:
        self.engine = engine
        self.organization_id = organization_id
        self.realm_id = realm_id
        self.clock = clock or Clock()
        self.limits = limits or SHARED_LIMITS
        # this client's requests in flight, so its own workers wait here rather than poll
        self._in_flight = threading.BoundedSemaphore(self.limits.concurrent)
        self._postgres = engine.dialect.name == "postgresql"

    @property
    def _margin(self) -> float:
        return 0.001 * self.clock.scale  # a real millisecond

    # -- the clock ----------------------------------------------------------------------------

    def _now_sql(self):
        """The database's clock in seconds since the epoch (PostgreSQL); None: the machine's."""
        if self._postgres:
            return cast(func.extract("epoch", func.clock_timestamp()), Float)
        return None

    # -- counting -----------------------------------------------------------------------------

    def _try(self, most: int, least: int, batch: bool) -> tuple[Ticket | None, float]:
        """One look under the lock: the ticket, counted, or how long to wait (limiter seconds)."""
        r = qbo_realm_requests.c
        scale = self.clock.scale
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            xact_lock(conn, Lock.QBO_REQUESTS, self.organization_id)
            now, rows = self._read(conn)
            entries, gone = [], []
            for row_id, at, cost, is_batch, in_flight in rows:
                if (in_flight and at <= now - STALE_IN_FLIGHT_S) or (
                    not in_flight and at <= now - self.limits.minute / scale
                ):
                    gone.append(row_id)
                else:
                    entries.append(Ticket(at * scale, cost, is_batch, in_flight, row_id))
            if len(gone) >= PRUNE_AT:
                conn.execute(delete(qbo_realm_requests).where(r.id.in_(gone)))
            if sum(1 for e in entries if e.in_flight) >= self.limits.concurrent:
                return None, IN_FLIGHT_POLL_S * scale
            cost, wait = grant(self.limits, entries, now * scale, most, least, batch)
            if not cost:
                return None, wait
            row_id = conn.execute(
                insert(qbo_realm_requests)
                .values(
                    organization_id=self.organization_id,
                    realm_id=self.realm_id,
                    at=now,
                    cost=cost,
                    batch=batch,
                    in_flight=True,
                )
                .returning(r.id)
            ).scalar_one()
        return Ticket(now * scale, cost, batch, True, row_id), 0.0

    def _read(self, conn) -> tuple[float, list[tuple]]:
        """The clock's now (real seconds) and the realm's rows, read after the lock was taken."""
        r = qbo_realm_requests.c
        mine = and_(r.organization_id == self.organization_id, r.realm_id == self.realm_id)
        columns = (r.id, r.at, r.cost, r.batch, r.in_flight)
        now_sql = self._now_sql()
        if now_sql is None:
            rows = [tuple(row) for row in conn.execute(select(*columns).where(mine))]
            return time.time(), rows
        # the clock and the rows in one statement: one row with NULLs when there are none
        clock = select(now_sql.label("now")).subquery()
        found = conn.execute(
            select(clock.c.now, *columns).select_from(clock.outerjoin(qbo_realm_requests, mine))
        ).all()
        return found[0][0], [tuple(row[1:]) for row in found if row[1] is not None]

    def release(self, ticket: Ticket) -> None:
        """The answer is back (or the request broke): the row counts from now, for a window."""
        try:
            now = self._now_sql()
            with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
                conn.execute(
                    update(qbo_realm_requests)
                    .where(qbo_realm_requests.c.id == ticket.row_id)
                    .values(at=time.time() if now is None else now, in_flight=False)
                )
        except SQLAlchemyError as exc:
            # the answer matters more than the count: the row stays in flight, counted until it
            # is stale, which only ever holds back more than needed
            logger.warning("a QBO request's answer was not counted: %s", type(exc).__name__)
        finally:
            ticket.in_flight = False
            self._in_flight.release()

    def forget(self, ticket: Ticket) -> None:
        """A request QBO refused with 429 did not count there: it stops counting here too."""
        self._delete(ticket)

    def cancel(self, ticket: Ticket) -> None:
        """A ticket whose request was never sent: nothing counts."""
        try:
            self._delete(ticket)
        finally:
            ticket.in_flight = False
            self._in_flight.release()

    def _delete(self, ticket: Ticket) -> None:
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            conn.execute(delete(qbo_realm_requests).where(qbo_realm_requests.c.id == ticket.row_id))
