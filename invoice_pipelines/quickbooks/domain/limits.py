"""Rate limits per realm: QBO's 500 requests/min, 10/s, 10 in flight and 40 batch requests/min.

Two limiters keep them, on one rule (`grant`):

- `RealmLimiter`, one per realm and process (`limiter_for`), shared by every client of that realm
  in the process: the client's limiter where there is no database (a client built by hand, the
  conformance suite). It keeps 98 % of each limit, since a call from another process is not
  counted here.
- `realm_meter.SharedRealmLimiter`, the one every client `open_client` builds has (every asset
  run, schedule, sensor and command that talks to QBO): the requests of every process and
  machine that talks to the organization's realm are counted in our database, so it keeps the
  whole 500 a minute (issue 59).

Batch items count toward the per-minute total like single calls (Intuit meters each payload), so
a batch of 30 costs 30 of the 500. A batch push asks for "up to 30, at least 13" (`acquire_up_to`)
and sends as many invoices as it was granted, so the last batch of a window fills it to the 500
exactly (16 x 30 + 20). Time is a `Clock` so benchmarks can run QBO's minute compressed against a
simulator running on the same scale.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


class Clock:
    """Seconds as the remote side counts them; `scale` > 1 compresses time (simulator/bench)."""

    def __init__(self, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError("the clock's scale must be positive")
        self.scale = scale
        self._origin = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self._origin) * self.scale

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.scale)


@dataclass(frozen=True)
class QboLimits:
    """Intuit's published limits per realm and app (limits-and-throttles)."""

    per_minute: int = 500
    per_second: int = 10
    concurrent: int = 10
    batch_per_minute: int = 40
    max_batch_items: int = 30
    # stay this fraction under each published number. The limiter of one process keeps 10 of the
    # 500 a minute for calls of other processes (a person resolving a conflict, `qbo-resolve`,
    # while a push runs), so that they do not meet a 429 and make a push batch wait QBO's
    # minute; the shared limiter counts those calls too and keeps nothing back (issue 59)
    headroom: float = 0.98
    # an entry leaves our windows this many seconds after QBO's would at the latest. An entry
    # counts from the moment its answer came back (QBO counted the request when it arrived, which
    # was before), and one still in flight never leaves, so what is left to cover is only the
    # two clocks' rates (0.05 s of 60 is 830 ppm; quartz clocks differ by < 100 ppm). It was
    # 0.5 s when entries counted from the moment they were sent: 0.45 s more of every window,
    # which is 0.075 of the 10 windows of a 5,000-invoice push (issue 59)
    window_margin: float = 0.05

    def effective(self, value: int) -> int:
        return max(1, int(value * self.headroom))

    @property
    def least_batch(self) -> int:
        """The fewest items a batch of a push is sent with when more wait: at 40 batches a
        minute, batches of fewer than 500 / 40 items could use up the batch limit before the 500
        (the last batch of a push may be smaller)."""
        return -(-self.effective(self.per_minute) // self.effective(self.batch_per_minute))

    @property
    def minute(self) -> float:
        return 60 + self.window_margin

    @property
    def second(self) -> float:
        return 1 + self.window_margin


@dataclass(eq=False)
class Ticket:
    """One request counted toward a realm's limits: sent at `at` while `in_flight`, answered at
    `at` after. `row_id`: its row, when the shared limiter counts it in the database."""

    at: float
    cost: int
    batch: bool
    in_flight: bool = True
    row_id: int | None = None


def counted(limits: QboLimits, entries: Iterable[Ticket], now: float) -> list[Ticket]:
    """The entries still in the window at `now`: in flight, or answered less than a minute (and
    its margin) ago."""
    return [e for e in entries if e.in_flight or e.at > now - limits.minute]


def wait_needed(
    limits: QboLimits, entries: Iterable[Ticket], now: float, cost: int, batch: bool
) -> float:
    """How long (on the limiter's clock) until a request of `cost` items fits every limit given
    the `entries` counted now; 0 when it fits now. An entry in flight may reach QBO at any moment:
    it counts as if sent now, and leaves a window after its answer at the earliest, so a wait
    behind one is a lower bound and the caller asks again."""
    minute, second = limits.minute, limits.second
    moments = sorted(
        ((max(e.at, now) if e.in_flight else e.at, e.cost, e.batch) for e in entries),
        key=lambda e: e[0],
    )
    waits = [0.0]
    per_minute = limits.effective(limits.per_minute)
    total = sum(e[1] for e in moments)
    if total + cost > per_minute:
        freed, needed = 0, total + cost - per_minute
        for moment, spent, _ in moments:
            freed += spent
            if freed >= needed:
                waits.append(moment + minute - now)
                break
    recent = [e[0] for e in moments if e[0] > now - second]
    if len(recent) + 1 > limits.effective(limits.per_second):
        waits.append(recent[-limits.effective(limits.per_second)] + second - now)
    if batch:
        batches = [e[0] for e in moments if e[2]]
        allowed = limits.effective(limits.batch_per_minute)
        if len(batches) + 1 > allowed:
            waits.append(batches[-allowed] + minute - now)
    return max(waits)


def grant(
    limits: QboLimits, entries: list[Ticket], now: float, most: int, least: int, batch: bool
) -> tuple[int, float]:
    """(items granted now, 0) when at least `least` items fit every limit now: as many as fit, up
    to `most`; else (0, how long until `least` fit). `entries`: those `counted` now."""
    wait = wait_needed(limits, entries, now, least, batch)
    if wait > 0:
        return 0, wait
    room = limits.effective(limits.per_minute) - sum(e.cost for e in entries)
    return max(least, min(most, room)), 0.0


def check_request(limits: QboLimits, most: int, least: int) -> int:
    """`least` as `grant` takes it (1..most); a request larger than the limit is refused."""
    if most > limits.effective(limits.per_minute):
        raise ValueError(f"a request of {most} items can never fit the per-minute limit")
    if most < 1:
        raise ValueError("a request counts at least one item")
    return max(1, min(least, most))


class Limiter(Protocol):
    """What the client asks of a realm's limiter (`RealmLimiter`, `realm_meter.SharedRealmLimiter`)."""

    limits: QboLimits

    def acquire(self, cost: int = 1, *, batch: bool = False) -> Ticket: ...

    def acquire_up_to(self, most: int, *, least: int = 1, batch: bool = False) -> Ticket: ...

    def release(self, ticket: Ticket) -> None: ...

    def forget(self, ticket: Ticket) -> None: ...

    def cancel(self, ticket: Ticket) -> None: ...


class WaitingLimiter:
    """The waiting both limiters share: `acquire_up_to` takes a place in flight, then asks
    `_try` until a ticket is counted, sleeping the wait it says and `_margin` beyond it."""

    limits: QboLimits
    clock: Clock
    _in_flight: threading.BoundedSemaphore
    _margin = 0.001  # limiter seconds

    def _try(self, most: int, least: int, batch: bool) -> tuple[Ticket | None, float]:
        raise NotImplementedError

    def acquire(self, cost: int = 1, *, batch: bool = False) -> Ticket:
        """Wait for room, count the request and return its ticket for `release`."""
        return self.acquire_up_to(cost, least=cost, batch=batch)

    def acquire_up_to(self, most: int, *, least: int = 1, batch: bool = False) -> Ticket:
        """Wait until at least `least` items fit, then count as many as fit, up to `most`: the
        ticket's `cost` says how many the request may carry."""
        least = check_request(self.limits, most, least)
        self._in_flight.acquire()
        try:
            while True:
                ticket, wait = self._try(most, least, batch)
                if ticket is not None:
                    return ticket
                self.clock.sleep(wait + self._margin)
        except BaseException:
            self._in_flight.release()
            raise


class RealmLimiter(WaitingLimiter):
    """Sliding-window limiter of one process: `acquire` blocks until a request of `cost` items
    fits every limit.

    A request is counted from the moment it is sent until its answer came back plus the window:
    QBO counts it when it arrives, which is somewhere in between, so our window always closes
    after QBO's (on a compressed clock the way there is a noticeable part of a minute). While it
    is in flight it counts as if sent at every moment, however long it takes.
    """

    def __init__(self, limits: QboLimits | None = None, clock: Clock | None = None) -> None:
        self.limits = limits or QboLimits()
        self.clock = clock or Clock()
        self._lock = threading.Lock()
        # an entry in flight stays counted however old it is (QBO may count it late); its time
        # moves to the answer's arrival on release
        self._entries: list[Ticket] = []
        self._in_flight = threading.BoundedSemaphore(self.limits.concurrent)

    def _wait_needed(self, now: float, cost: int, batch: bool) -> float:
        self._entries = counted(self.limits, self._entries, now)
        return wait_needed(self.limits, self._entries, now, cost, batch)

    def _try(self, most: int, least: int, batch: bool) -> tuple[Ticket | None, float]:
        with self._lock:
            now = self.clock.now()
            self._entries = counted(self.limits, self._entries, now)
            cost, wait = grant(self.limits, self._entries, now, most, least, batch)
            if not cost:
                return None, wait
            ticket = Ticket(now, cost, batch)
            self._entries.append(ticket)
            return ticket, 0.0

    def forget(self, ticket: Ticket) -> None:
        """A request QBO refused with 429 did not count there: it stops counting here too."""
        with self._lock:
            if ticket in self._entries:
                self._entries.remove(ticket)

    def release(self, ticket: Ticket) -> None:
        """The answer is back (or the request broke): the entry counts from now, for a window."""
        with self._lock:
            ticket.at = self.clock.now()
            ticket.in_flight = False
        self._in_flight.release()

    def cancel(self, ticket: Ticket) -> None:
        """A ticket whose request was never sent: nothing counts."""
        self.release(ticket)
        self.forget(ticket)


_registry: dict[tuple[str, float], RealmLimiter] = {}
_registry_lock = threading.Lock()


def limiter_for(realm_id: str, clock: Clock | None = None, limits: QboLimits | None = None):
    """The process's limiter of a realm (one per realm and clock scale)."""
    clock = clock or Clock()
    key = (realm_id, clock.scale)
    with _registry_lock:
        limiter = _registry.get(key)
        if limiter is None:
            limiter = RealmLimiter(limits, clock)
            _registry[key] = limiter
        return limiter


def backoff_seconds(attempt: int, *, base: float = 1.0, cap: float = 30.0) -> float:
    """Exponential backoff with full jitter: attempt 1 waits up to `base`, then 2x, 4x ... `cap`."""
    return random.uniform(0, min(cap, base * (2 ** (attempt - 1))))
