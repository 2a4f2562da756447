"""A pool interrupted in its block gives up the work it had queued (issue 55: a QuickBooks push,
an e-mail run or a dunning run went on with every queued task after SIGTERM)."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from invoice_pipelines.resources.workers.thread_pools import stopping_pool


def _interrupted(make_pool, release_when) -> list[int]:
    """The tasks that ran when the block is interrupted while the first task is in flight; the
    first task ends once `release_when(futures)` holds (checked by a watcher thread)."""
    ran: list[int] = []
    first_started, let_first_end = threading.Event(), threading.Event()

    def task(n: int) -> int:
        ran.append(n)
        if n == 0:
            first_started.set()
            assert let_first_end.wait(30)
        return n

    def watch(futures: list[Future]) -> None:
        for _ in range(3000):
            if release_when(futures):
                break
            threading.Event().wait(0.01)
        let_first_end.set()

    with pytest.raises(KeyboardInterrupt), make_pool() as pool:
        futures = [pool.submit(task, n) for n in range(20)]
        assert first_started.wait(30)
        threading.Thread(target=watch, args=(futures,), daemon=True).start()
        raise KeyboardInterrupt  # what Dagster's SIGTERM handler does in the run's main thread
    return ran


def test_an_interrupted_pool_does_only_the_task_in_flight():
    # the first task ends only once the queued ones are cancelled: nothing else can have started
    ran = _interrupted(lambda: stopping_pool(1), lambda futures: futures[1].cancelled())
    assert ran == [0]


def test_the_plain_executor_goes_on_with_every_queued_task():
    """What it replaces: the context manager of ThreadPoolExecutor waits for all 20."""
    ran = _interrupted(lambda: ThreadPoolExecutor(max_workers=1), lambda futures: True)
    assert ran == list(range(20))


def test_a_normal_end_waits_for_every_task():
    done: list[int] = []
    with stopping_pool(2) as pool:
        for n in range(10):
            pool.submit(done.append, n)
    assert sorted(done) == list(range(10))


def test_a_task_in_flight_is_told_to_stop_after_its_unit():
    """A connection's share of the e-mails is one task of many messages: interrupted, it ends
    after the message in hand instead of sending the rest of its share."""
    stop = threading.Event()
    started = threading.Event()
    units: list[int] = []

    def share() -> None:
        for unit in range(1000):
            if stop.is_set():
                return
            units.append(unit)
            started.set()
            stop.wait(0.01)

    with pytest.raises(KeyboardInterrupt), stopping_pool(1, stop=stop) as pool:
        pool.submit(share)
        assert started.wait(30)
        raise KeyboardInterrupt
    assert stop.is_set() and 0 < len(units) < 1000
