"""Rate limits per realm: QBO's 500 requests/min, 10/s, 10 in flight and 40 batch requests/min.

One `RealmLimiter` per realm and process (`limiter_for`), shared by every client of that realm in
the process. Bounds across processes: Dagster runs that talk to a realm are limited to one at a time
per organization (the `invoice_pipelines/organization` run tag, see tenants/partitions.py), so in
normal operation one process talks to a realm; a second process (a CLI command beside a run) can at
most double the rate, and QBO's 429 then slows both down through the client's backoff.

Batch items count toward the per-minute total like single calls (Intuit meters each payload), so
a batch of 30 costs 30 of the 500. Time is a `Clock` so benchmarks can run QBO's minute compressed
against a simulator running on the same scale.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass


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
    # stay this fraction under each published number: 10 of the 500 a minute are left to calls
    # that do not hold the organization's lease and so come from another process (a person
    # resolving a conflict, `qbo-resolve`, while a push runs), so that they do not meet a 429
    # and make a push batch wait QBO's minute (issue 59)
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


class RealmLimiter:
    """Sliding-window limiter: `acquire` blocks until a request of `cost` items fits every limit.

    A request is counted from the moment it is sent until its answer came back plus the window:
    QBO counts it when it arrives, which is somewhere in between, so our window always closes
    after QBO's (on a compressed clock the way there is a noticeable part of a minute). While it
    is in flight it counts as if sent at every moment, however long it takes.
    """

    def __init__(self, limits: QboLimits | None = None, clock: Clock | None = None) -> None:
        self.limits = limits or QboLimits()
        self.clock = clock or Clock()
        self._lock = threading.Lock()
        # entries are [time, cost, is_batch, in_flight]; time moves to the answer's arrival on
        # release; an entry in flight stays counted however old it is (QBO may count it late)
        self._entries: list[list] = []
        self._in_flight = threading.BoundedSemaphore(self.limits.concurrent)

    def _wait_needed(self, now: float, cost: int, batch: bool) -> float:
        limits = self.limits
        minute = 60 + limits.window_margin
        second = 1 + limits.window_margin
        self._entries = [e for e in self._entries if e[3] or e[0] > now - minute]
        # one in flight may reach QBO now: it counts as if sent now, and leaves a window after
        # its answer at the earliest
        entries = sorted(
            ([max(e[0], now) if e[3] else e[0], e[1], e[2]] for e in self._entries),
            key=lambda e: e[0],
        )
        waits = [0.0]
        per_minute = limits.effective(limits.per_minute)
        total = sum(e[1] for e in entries)
        if total + cost > per_minute:
            freed, needed = 0, total + cost - per_minute
            for moment, spent, _ in entries:
                freed += spent
                if freed >= needed:
                    waits.append(moment + minute - now)
                    break
        recent = [e[0] for e in entries if e[0] > now - second]
        if len(recent) + 1 > limits.effective(limits.per_second):
            waits.append(recent[-limits.effective(limits.per_second)] + second - now)
        if batch:
            batches = [e[0] for e in entries if e[2]]
            allowed = limits.effective(limits.batch_per_minute)
            if len(batches) + 1 > allowed:
                waits.append(batches[-allowed] + minute - now)
        return max(waits)

    def acquire(self, cost: int = 1, *, batch: bool = False) -> list:
        """Wait for room, count the request and return its ticket for `release`."""
        if cost > self.limits.effective(self.limits.per_minute):
            raise ValueError(f"a request of {cost} items can never fit the per-minute limit")
        self._in_flight.acquire()
        try:
            while True:
                with self._lock:
                    now = self.clock.now()
                    wait = self._wait_needed(now, cost, batch)
                    if wait <= 0:
                        ticket = [now, cost, batch, True]
                        self._entries.append(ticket)
                        return ticket
                self.clock.sleep(wait + 0.001)
        except BaseException:
            self._in_flight.release()
            raise

    def forget(self, ticket: list) -> None:
        """A request QBO refused with 429 did not count there: it stops counting here too."""
        with self._lock:
            if ticket in self._entries:
                self._entries.remove(ticket)

    def release(self, ticket: list) -> None:
        """The answer is back (or the request broke): the entry counts from now, for a window."""
        with self._lock:
            ticket[0] = self.clock.now()
            ticket[3] = False
        self._in_flight.release()


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
