"""The simulator's clock: real time, sped up by a time scale, moved forward on request."""

from __future__ import annotations

import threading
import time


class Clock:
    """Simulated epoch seconds. With `time_scale` 60 one real second is one simulated minute, so
    per-minute limits and token lifetimes pass 60 times faster; `advance` jumps ahead."""

    def __init__(self, time_scale: float = 1.0, start: float | None = None) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = float(time_scale)
        self._lock = threading.Lock()
        self._real0 = time.monotonic()
        self._sim0 = time.time() if start is None else float(start)
        self._frozen: float | None = None

    def now(self) -> float:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return self._sim0 + (time.monotonic() - self._real0) * self.time_scale

    def advance(self, seconds: float) -> float:
        with self._lock:
            if self._frozen is not None:
                self._frozen += seconds
                return self._frozen
            self._sim0 += seconds
        return self.now()

    def freeze(self) -> float:
        now = self.now()
        with self._lock:
            self._frozen = now
        return now

    def unfreeze(self) -> float:
        with self._lock:
            if self._frozen is not None:
                self._sim0 = self._frozen
                self._real0 = time.monotonic()
                self._frozen = None
        return self.now()

    def real_seconds(self, simulated: float) -> float:
        """How long `simulated` seconds take in real time."""
        return simulated / self.time_scale
