"""Several chunks of one batch job in flight at once on PostgreSQL; numbers stay gapless and in order."""

# One chunk keeps one database backend (one core) busy, and taking the sequence lock first, as
# `chunk_transaction._run_chunk` does, makes every other chunk of the organization wait for all of
# it. Here each chunk does its reading and writing *before* it takes the sequence lock, with the
# numbers it expects to get:
#
# - chunk k reads and classifies its orders (no locks), then waits until chunk k-1 has classified
#   its own: chunk k-1 starts after S and invoices n orders, so chunk k expects to start after S + n.
#   The first chunk expects the sequence's committed value.
# - it writes its invoices numbered from there, marks its orders, records its items;
# - it waits for chunk k-1's transaction to end (an advisory lock chunk k-1 holds, so PostgreSQL
#   sees the wait and breaks any deadlock it is part of), then locks the job row and the sequence
#   and checks that the sequence stands where it expected. Only then does it take the stock, move
#   the sequence and commit. (A chunk without invoices skips the sequence: it numbers nothing.)
#
# Whatever breaks the expectation (chunk k-1 rolled back, another job or process of the
# organization invoiced in between, an order two jobs asked for, a deadlock PostgreSQL broke) rolls
# that chunk back, and from there the job goes on one chunk at a time under the sequence lock, the
# classic way; each such chunk is logged with its cause and counted (`fallbacks` on what
# `process_batch_job` returns). Gapless numbering never rests on the expectation: the sequence only moves in a
# commit that checked it, and moves past exactly that commit's invoices.
#
# Threads, not processes: psycopg2 releases the GIL while PostgreSQL works, and Python's share of a
# chunk is small. Progress callbacks run on the calling thread, between one chunk's commit and the
# next chunk's check of the job row, so a cancel requested there stops the next chunk.

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from invoice_pipelines.billing.domain import chunk_postgres
from invoice_pipelines.billing.domain.chunk_transaction import (
    chunk_context,
    is_conflict,
    lock_sequence,
    read_sequence,
    record_chunk,
    run_chunk_retrying,
)
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.locks import Lock, chunk_key, xact_lock
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.queue.domain.jobs import BatchJob, batch_job_of
from invoice_pipelines.queue.domain.transitions import job_row, locked_job
from invoice_pipelines.resources.workers import stop_signal

log = logging.getLogger(__name__)


# Why a chunk's early attempt was rolled back and the chunk redone under the sequence lock. The
# first group are causes of their own (each logged as a warning); the second are consequences of
# an earlier chunk's fallback (logged at info); the job stopping is no fallback at all.
SEQUENCE_MOVED = "sequence moved by another writer"
UNIQUE_VIOLATION = "unique violation"
DEADLOCK = "deadlock"
SERIALIZATION_FAILURE = "serialization failure"
LOCK_NOT_AVAILABLE = "lock not available (NOWAIT)"
ITEMS_RECORDED_ELSEWHERE = "items recorded by another runner"
PREDECESSOR_ROLLED_BACK = "the chunk before it rolled back"
EARLIER_CHUNK_SERIAL = "an earlier chunk went under the sequence lock"
CONSEQUENCES = frozenset({PREDECESSOR_ROLLED_BACK, EARLIER_CHUNK_SERIAL})
JOB_STOPPED = "the job was cancelled or ended"
_SQLSTATE_CAUSES = {
    "23505": UNIQUE_VIOLATION,
    "40P01": DEADLOCK,
    "40001": SERIALIZATION_FAILURE,
    "55P03": LOCK_NOT_AVAILABLE,
}


class _Fallback(Exception):
    """This chunk's early attempt was rolled back; the job goes on under the sequence lock."""

    def __init__(self, cause: str, detail: str = "") -> None:
        super().__init__(f"{cause}: {detail}" if detail else cause)
        self.cause = cause


class _Stop(Exception):
    """The job stops: an error elsewhere, or a chunk found it finished, cancelled or failed."""


def _going_on(row) -> None:  # the job's Row
    if row["status"] != "processing" or row["cancel_requested"]:
        # the chunk under the sequence lock ends the job the right way (cancelled, or left alone)
        raise _Fallback(JOB_STOPPED)


class PipelinedJob:
    """Process a claimed job of `org` its pending items from `after` on with `workers`
    connections."""

    def __init__(
        self,
        engine: Engine,
        org: Organization,
        job: BatchJob,
        *,
        chunk_size: int,
        after: int,
        total: int,
        workers: int,
        on_progress: Callable[[BatchJob], None] | None = None,
    ) -> None:
        self.engine = engine
        self.org = org
        self.job = job
        self.chunk_size = chunk_size
        self.after = after
        self.windows = max(1, -(-(total - after) // chunk_size))
        self.workers = max(1, min(workers, self.windows))
        self.on_progress = on_progress
        # every field below is read and written under self.cond
        self.cond = threading.Condition()
        self.next_window = 0
        self.starts: dict[int, int] = {}  # window -> the sequence value it expects to start after
        self.attempts: dict[int, bool] = {}  # window -> whether its early attempt committed
        self.open: set[int] = set()  # windows with an early attempt in flight
        self.done: set[int] = set()  # windows committed (or found nothing to do) and reported
        self.serial_from: int | None = None  # from this window on: one chunk at a time, locked
        self.stop_from: int | None = None  # from this window on: nothing more commits
        self.error: BaseException | None = None
        self.fallback_causes: Counter[str] = Counter()  # cause -> chunks that fell back for it
        self.reports: queue.Queue = queue.Queue()
        self.closing = False  # run() was interrupted: reports are not read any more

    # -- driving ---------------------------------------------------------------------------------

    def run(self) -> None:
        threads = [
            threading.Thread(target=self._worker, name=f"batch-job-{self.job.id}-{n}", daemon=True)
            for n in range(self.workers)
        ]
        for thread in threads:
            thread.start()
        try:
            while any(thread.is_alive() for thread in threads):
                try:
                    k, snapshot, ack = self.reports.get(timeout=0.1)
                except queue.Empty:
                    continue
                try:
                    if self.on_progress is not None:
                        self.on_progress(snapshot)
                except Exception as exc:  # re-raised below, after the workers end
                    self._fail(exc, k + 1)  # chunk k is committed; the ones after it stop
                finally:
                    ack.set()
        except BaseException:
            # interrupted (Ctrl-C, Dagster terminating the run): nothing more commits; workers roll
            # back at their next check, the ones waiting for a progress report are released
            self.closing = True
            self._stop(0)
            while True:
                try:
                    self.reports.get_nowait()[2].set()
                except queue.Empty:
                    break
            for thread in threads:
                thread.join(timeout=60)
            raise
        for thread in threads:
            thread.join()
        if self.error is not None:
            raise self.error

    def _worker(self) -> None:
        while True:
            with self.cond:
                k = self.next_window
                if k >= self.windows or self._stopping(k):
                    return
                self.next_window += 1
            try:
                # a SIGTERM Dagster's handler lost (stop_signal.py): no chunk starts any more,
                # as when a chunk fails; run() raises the interrupt once the threads end
                stop_signal.raise_if_received()
                self._window(k)
            except _Stop:
                return
            except BaseException as exc:  # handed to run()
                self._fail(exc, k)
                return

    def _fail(self, exc: BaseException, k: int) -> None:
        """Chunk k failed: it and the chunks after it stop; the chunks before it still commit."""
        with self.cond:
            if self.error is None:
                self.error = exc
        self._stop(k)

    def _stop(self, k: int) -> None:
        with self.cond:
            self.stop_from = k if self.stop_from is None else min(self.stop_from, k)
            self.cond.notify_all()

    def _stopping(self, k: int) -> bool:
        return self.stop_from is not None and self.stop_from <= k

    def _check(self, k: int) -> None:
        """_Stop when chunk k must stop, _Fallback when it must go under the sequence lock."""
        self._wait(k, lambda: True, serial_too=True)

    def _wait(self, k: int, ready: Callable[[], bool], *, serial_too: bool) -> None:
        """Wait until ready(); _Stop when chunk k must stop, _Fallback (serial_too) when it goes serial."""
        with self.cond:
            while True:
                if self._stopping(k):
                    raise _Stop
                if serial_too and self.serial_from is not None and self.serial_from <= k:
                    raise _Fallback(EARLIER_CHUNK_SERIAL)
                if ready():
                    return
                self.cond.wait()

    def _after(self, k: int) -> int:
        return self.after + k * self.chunk_size

    def _window(self, k: int) -> None:
        try:
            finished = self._early(k)
        except (_Fallback, chunk_postgres.ItemsTakenElsewhere, DBAPIError) as exc:
            if isinstance(exc, DBAPIError) and not is_conflict(exc):
                raise
            self._fell_back(k, exc)
            finished = self._classic(k)
        self._report(k)
        if finished and k < self.windows - 1:
            # cancelled, or failed/finished by someone else: the rest stays pending
            self._stop(k + 1)

    def _fell_back(self, k: int, exc: BaseException) -> None:
        """Log why chunk k goes under the sequence lock, and count it (a stop is not counted)."""
        if isinstance(exc, _Fallback):
            cause, detail = exc.cause, str(exc)
        elif isinstance(exc, DBAPIError):
            cause = _SQLSTATE_CAUSES[exc.orig.pgcode]
            detail = f"{cause}: {str(exc.orig).strip().splitlines()[0]}"
        else:
            cause, detail = ITEMS_RECORDED_ELSEWHERE, f"{ITEMS_RECORDED_ELSEWHERE}: {exc}"
        if cause == JOB_STOPPED:
            log.info(
                "batch job %s: chunk after position %s: %s", self.job.id, self._after(k), detail
            )
            return
        with self.cond:
            self.fallback_causes[cause] += 1
        log.log(
            logging.INFO if cause in CONSEQUENCES else logging.WARNING,
            "batch job %s: chunk after position %s goes under the sequence lock (%s)",
            self.job.id,
            self._after(k),
            detail,
        )

    @property
    def fallbacks(self) -> int:
        """Chunks done under the sequence lock because their early attempt was rolled back."""
        with self.cond:
            return sum(self.fallback_causes.values())

    def _report(self, k: int) -> None:
        if self.on_progress is not None:
            ack = threading.Event()
            self.reports.put(
                (k, batch_job_of(self.engine, self.job.organization_id, self.job.id), ack)
            )
            while not ack.wait(0.5):
                if self.closing:
                    raise _Stop
        with self.cond:
            self.done.add(k)
            self.cond.notify_all()

    # -- one chunk, numbers expected ---------------------------------------------------------------

    def _early(self, k: int) -> bool:
        """The chunk with the numbers the chain of chunks expects; _Fallback when that fails."""
        self._check(k)
        with self.cond:
            self.open.add(k)
        committed = False
        job = self.job
        after = self._after(k)
        try:
            with tenant_transaction(self.engine, job.organization_id, write=True) as conn:
                xact_lock(conn, Lock.BILLING_CHUNK, chunk_key(job.id, after))
                row = job_row(conn, job.id)
                _going_on(row)
                ctx = chunk_context(conn, self.org, job, row, self.chunk_size, after, utcnow(), 0)
                counts = chunk_postgres.prepare_chunk(conn, ctx)
                start = self._expected_start(conn, k)
                chunk_postgres.allocate_invoice_ids(conn, counts)
                with self.cond:
                    self.starts[k + 1] = start + counts.succeeded
                    self.cond.notify_all()
                ctx = replace(ctx, last_value=start)
                outcome = chunk_postgres.write_chunk(conn, ctx, counts)
                self._check(k)
                if k > 0:
                    # a wait PostgreSQL can see: chunk k-1 holds this lock until its transaction ends
                    xact_lock(conn, Lock.BILLING_CHUNK, chunk_key(job.id, self._after(k - 1)))
                    # its thread records the outcome right after; then its progress report runs
                    # before this chunk reads the job (a cancel requested there stops this chunk)
                    self._wait(k, lambda: k - 1 in self.attempts, serial_too=False)
                    if not self.attempts[k - 1]:
                        raise _Fallback(PREDECESSOR_ROLLED_BACK)
                    self._wait(k, lambda: k - 1 in self.done, serial_too=False)
                row = locked_job(conn, job.id)
                _going_on(row)
                if outcome.succeeded:
                    # NOWAIT: a chunk that holds the sequence and waits for this chunk's rows
                    # (another job's, one chunk at a time) must not become a deadlock PostgreSQL
                    # breaks after a second, possibly by failing that other chunk; this chunk falls
                    # back instead. A chunk without invoices (every order skipped or failed)
                    # neither moves the sequence nor depends on where it stands: it needs neither
                    # the lock nor the check, and another writer of the organization holding or
                    # moving the sequence is no conflict for it.
                    found = lock_sequence(conn, job.organization_id, nowait=True)
                    if found != start:
                        raise _Fallback(SEQUENCE_MOVED, f"expected {start}, found {found}")
                    chunk_postgres.take_stock(conn, ctx)
                finished = record_chunk(conn, job, row, replace(ctx, now=utcnow()), outcome)
            committed = True
        finally:
            with self.cond:
                self.open.discard(k)
                self.attempts[k] = committed
                if not committed and not self._stopping(k):
                    self.serial_from = k if self.serial_from is None else min(self.serial_from, k)
                self.cond.notify_all()
        return finished

    def _expected_start(self, conn, k: int) -> int:  # a Connection
        if k == 0:
            return read_sequence(conn, self.job.organization_id)
        self._wait(k, lambda: k in self.starts, serial_too=True)
        with self.cond:
            return self.starts[k]

    # -- one chunk under the sequence lock --------------------------------------------------------

    def _classic(self, k: int) -> bool:
        with self.cond:
            if self.serial_from is None or self.serial_from > k:
                self.serial_from = k
            self.cond.notify_all()
        # later chunks in flight roll back first (they may hold numbers this chunk now takes), and
        # chunks commit in order
        self._wait(
            k,
            lambda: not any(j > k for j in self.open) and (k == 0 or k - 1 in self.done),
            serial_too=False,
        )
        finished, _ = run_chunk_retrying(
            self.engine, self.org, self.job, self.chunk_size, self._after(k)
        )
        return finished
