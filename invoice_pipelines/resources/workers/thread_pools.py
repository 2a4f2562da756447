"""Thread pools that give up their queued work when the run is interrupted.

`concurrent.futures.ThreadPoolExecutor` used as a context manager waits, on the way out, for every
task handed to it, also when the way out is an exception: a run that SIGTERM interrupted (Dagster
raises it in the run's main thread) went on pushing every QuickBooks batch, sending every e-mail
shard or writing every dunning chunk it had queued before it could end (issue 55, "every run ends
within its grace period"). `stopping_pool` cancels the tasks not yet started when its block ends
with an exception, and waits only for the ones in flight: each is one request or one chunk, the
unit whose outcome the outbox or the chunk's transaction records either way. A task that works
through many units (a connection's share of the e-mails) is told by `stop`, an event the pool sets
first, to end after the unit in hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from threading import Event


@contextmanager
def stopping_pool(
    max_workers: int, thread_name_prefix: str = "", stop: Event | None = None
) -> Iterator[ThreadPoolExecutor]:
    """A ThreadPoolExecutor whose queued tasks are cancelled when the block raises (an interrupt,
    a failure), after `stop` is set for the tasks in flight; on a normal end it waits for all of
    them, as the executor does."""
    pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
    try:
        yield pool
    except BaseException:
        if stop is not None:
            stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
