"""QBO's throttles per realm, on the simulator's clock: requests per minute (a batch counts once per
item), requests per second, requests in flight, batch requests per minute. Over any of them the
request is answered 429 and not counted. Also the size limit of an uploaded file."""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field

from invoice_pipelines_devtools.qbo_simulator.attachments import MAX_FILE_BYTES


@dataclass
class Limits:
    per_minute: int = 500
    per_second: int = 10
    concurrent: int = 10
    batch_per_minute: int = 40
    enabled: bool = True
    # Retry-After on a 429 (real seconds, rounded up): QBO's header is optional, so is ours
    retry_after: bool = False
    # the largest file one upload takes (100 MB); tests lower it
    upload_max_bytes: int = MAX_FILE_BYTES


@dataclass
class Meter:
    minute: deque = field(default_factory=deque)  # (time, weight)
    minute_total: int = 0
    second: deque = field(default_factory=deque)  # time
    batches: deque = field(default_factory=deque)  # time
    in_flight: int = 0
    admitted: int = 0
    throttled: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _prune(self, now: float) -> None:
        while self.minute and self.minute[0][0] <= now - 60:
            self.minute_total -= self.minute.popleft()[1]
        while self.second and self.second[0] <= now - 1:
            self.second.popleft()
        while self.batches and self.batches[0] <= now - 60:
            self.batches.popleft()

    def admit(self, limits: Limits, now: float, weight: int = 1, batch: bool = False):
        """None when admitted (then `release` once done), else the simulated seconds until
        the window that refused it has room again."""
        with self.lock:
            self._prune(now)
            wait = None
            if limits.enabled:
                if self.in_flight >= limits.concurrent:
                    wait = 0.0
                elif len(self.second) >= limits.per_second:
                    wait = self.second[0] + 1 - now
                elif self.minute_total + weight > limits.per_minute:
                    wait = self.minute[0][0] + 60 - now if self.minute else 60.0
                elif batch and len(self.batches) >= limits.batch_per_minute:
                    wait = self.batches[0] + 60 - now
            if wait is not None:
                self.throttled += 1
                return max(wait, 0.0)
            self.minute.append((now, weight))
            self.minute_total += weight
            self.second.append(now)
            if batch:
                self.batches.append(now)
            self.in_flight += 1
            self.admitted += 1
            return None

    def release(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def stats(self, now: float) -> dict:
        with self.lock:
            self._prune(now)
            return {
                "in_flight": self.in_flight,
                "last_minute": self.minute_total,
                "last_second": len(self.second),
                "batches_last_minute": len(self.batches),
                "admitted": self.admitted,
                "throttled": self.throttled,
            }


def retry_after_header(simulated_wait: float, time_scale: float) -> str:
    return str(max(1, math.ceil(simulated_wait / time_scale)))
