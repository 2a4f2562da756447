"""CPU seconds of the processes a benchmark drives, from /proc: its own process (every thread),
its worker processes and, on a PostgreSQL server on the same machine, the backends of its
database. A benchmark states its work's CPU beside its wall time: on a shared machine the load
moves the wall time more than the CPU, and CPU against the cores says what the work can reach at
best (docs/benchmarks.md)."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass


def processes_cpu(pids: list[int]) -> dict[int, float] | None:
    """CPU seconds each process has used so far, every thread of it, from /proc (the
    scheduler's nanoseconds, `task/*/schedstat`); None where /proc cannot tell (not Linux, a
    process gone)."""
    spent = {}
    try:
        for pid in pids:
            nanoseconds = 0
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/schedstat", encoding="ascii") as stat:
                    nanoseconds += int(stat.read().split()[0])
            spent[pid] = nanoseconds / 1e9
    except (OSError, ValueError, IndexError):
        return None
    return spent


def cpu_spent(before: dict[int, float] | None, after: dict[int, float] | None) -> float | None:
    """The CPU seconds the same processes used in between; None if any was replaced (a worker
    that died or timed out) or /proc could not tell."""
    if before is None or after is None or before.keys() != after.keys():
        return None
    return sum(after[pid] - before[pid] for pid in before)


@dataclass
class Spent:
    """CPU seconds of a measured block: the bench's own process, its database's backends (None
    where /proc cannot see them: SQLite has none, a server on another machine) and their sum."""

    process: float | None = None
    database: float | None = None

    @property
    def total(self) -> float | None:
        if self.process is None:
            return None
        return self.process + (self.database or 0.0)

    def as_dict(self) -> dict:
        def rounded(value):
            return None if value is None else round(value, 3)

        return {
            "process": rounded(self.process),
            "database": rounded(self.database),
            "total": rounded(self.total),
        }


def backend_pids(conn) -> list[int]:
    """The server processes of every other session on `conn`'s database (PostgreSQL). Each call
    in a transaction of its own: PostgreSQL keeps a transaction's first view of the statistics."""
    try:
        return list(
            conn.exec_driver_sql(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).scalars()
        )
    finally:
        conn.rollback()


def _backends_cpu(pids: list[int]) -> dict[int, float] | None:
    seen = {}
    for pid in pids:
        spent = processes_cpu([pid])
        if spent is not None:  # a session that ended since it was listed: not ours to count
            seen.update(spent)
    return seen if seen or not pids else None


@contextmanager
def measured(backends: Callable[[], list[int]] | None):
    """CPU of the block: this process's, and the database backends' that `backends()` lists
    before and after it (a backend that started in between counts whole). Yields a `Spent`
    filled in when the block ends."""
    spent = Spent()
    me = [os.getpid()]
    process_before = processes_cpu(me)
    backends_before = _backends_cpu(backends()) if backends is not None else None
    try:
        yield spent
    finally:
        spent.process = cpu_spent(process_before, processes_cpu(me))
        if backends is not None and backends_before is not None:
            after = _backends_cpu(backends())
            if after is not None:
                spent.database = sum(
                    seconds - backends_before.get(pid, 0.0) for pid, seconds in after.items()
                )
