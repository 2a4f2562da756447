"""Warm worker processes that run one function per item with a time and a memory limit each.

What a worker runs is named by the area that uses the pool, as `module:function` (a worker is a
fresh interpreter, so it finds the function by name): the intake parses uploads in them
(`intake/domain/workers.py`, `intake/parser_resource.py`), the documents area writes and proves invoice
documents (`documents/domain/renderer.py`). The pool knows neither.

An item that hangs or crashes a library (pypdf, lxml, Saxon) costs one worker restart, not the
batch: `WorkerPool.parse_many` hands items to workers, collects their outcomes in input order, and
turns a timeout, a crash or a worker that cannot start into the failure outcome of the area's
`failure` function (`WorkerFailure` without one). Each worker limits its own memory
(`limits.PARSE_WORKER_MEMORY_BYTES`, RLIMIT_DATA) as it starts, so an item that needs more fails
alone instead of taking the machine's memory from the other workers and the run.
Inside Dagster a `WorkerPoolResource` (resources/workers/pool_resource.py) owns one pool for the lifetime
of a run.
"""

from __future__ import annotations

import gc
import importlib
import json
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from invoice_pipelines.limits import PARSE_WORKER_MEMORY_BYTES
from invoice_pipelines.resources.workers import stop_signal
from invoice_pipelines.settings import DEFAULT_MAX_UPLOAD_BYTES


class Pickled(bytes):
    """A worker's answer as it sent it: the pickle of `(item, outcome)`, not read here.

    `parse_many(..., pickled=True)` hands these on so that a process that only relays outcomes
    (the parse server) neither unpickles nor pickles them again: whoever uses the outcome
    unpickles it once. A failure decided here (timeout, crash, lost) is an outcome, as always."""


# After this many workers in a row fail to start, the rest of the batch fails with the reason
# instead of spawning one more doomed process per item.
MAX_START_FAILURES = 3

# why an item has no outcome of its own (the `kind` a failure function is given)
OUT_OF_MEMORY = "out_of_memory"  # the worker ran out of memory on it
ERROR = "error"  # the function raised
LOST = "lost"  # timed out, crashed its worker, or no worker could take it
NOT_DONE = "not_done"  # (never expected: the pool lost track of it)


@dataclass(frozen=True)
class WorkerFailure:
    """An item without an outcome of its own, when the pool's user names no failure function."""

    kind: str
    message: str


def failure_outcome(kind: str, data: bytes, filename: str, message: str) -> WorkerFailure:
    return WorkerFailure(kind, message)


def resolve(target: str) -> Callable[..., Any]:
    """The function `module:function` names."""
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def limit_memory(limit_bytes: int) -> None:
    """Cap this process's data memory (heap and private writable mappings) at `limit_bytes`.

    RLIMIT_DATA, not RLIMIT_AS: Saxon (a GraalVM native image) reserves about 32 GiB of address
    space it never touches, so any useful RLIMIT_AS stops it from starting. RLIMIT_DATA counts
    what is actually writable: a warm worker measured 380 MiB after compiling the schematrons and
    440 MiB at peak over all 34 samples. Over the limit, allocations fail (MemoryError in Python)
    instead of the kernel's OOM killer picking a process. Child programs (pdftotext) inherit it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit_bytes = min(limit_bytes, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit_bytes, hard))


def _worker_entry() -> None:
    """Entry point of a worker process:
    `python -c ... FD TARGET WARM_UP FAILURE SYS_PATH_JSON MEMORY`."""
    fd, target, warm_up, failure, sys_path = sys.argv[1:6]
    memory_bytes = int(sys.argv[6])
    if memory_bytes > 0:
        limit_memory(memory_bytes)
    for entry in reversed(json.loads(sys_path)):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    _worker_loop(Connection(int(fd)), target, warm_up, failure)


def _worker_loop(conn: Connection, target: str, warm_up: str, failure: str) -> None:
    """Warm up once, then run the target on items until the parent closes the connection."""
    # Malformed PDFs make pypdf log a warning per defect; we report problems ourselves.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    run = resolve(target)
    failed = resolve(failure) if failure else failure_outcome
    if warm_up:
        try:
            resolve(warm_up)()
        except Exception:  # each item then reports what is missing itself
            pass
        # what the worker holds now (modules, fonts, compiled rules, the warm-up's documents
        # collected first) is set aside from the cyclic collector: a full collection walked all
        # of it, 140-150 ms each in a renderer worker, twice in its first 100 documents
        # (docs/benchmarks.md, "Issue 59, documents"). What the items leave is collected as
        # before; a worker does nothing else, so nothing it keeps here is garbage later.
        gc.collect()
        gc.freeze()
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        job_id, data, filename, options = message
        try:
            outcome = run(data, filename, **options)
        except MemoryError:
            outcome = failed(OUT_OF_MEMORY, data, filename, "the worker ran out of memory")
        except Exception as exc:
            outcome = failed(
                ERROR,
                data,
                filename,
                f"unexpected error while reading the file: {type(exc).__name__}: {exc}",
            )
        conn.send((job_id, outcome))


class _Worker:
    """One worker process and our end of its socket.

    A plain subprocess rather than multiprocessing: spawn-mode multiprocessing re-imports the
    parent's __main__ module in the child (breaking scripts without a main guard) and refuses to
    start from daemonic processes; a fresh interpreter has neither problem, and is never forked
    from a process that may already hold a Saxon runtime.
    """

    def __init__(self, target: str, warm_up: str, failure: str, memory_bytes: int) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from invoice_pipelines.resources.workers.worker_pool import _worker_entry; "
                    "_worker_entry()",
                    str(theirs.fileno()),
                    target,
                    warm_up,
                    failure,
                    json.dumps(sys.path),
                    str(memory_bytes),
                ],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                close_fds=True,
                # Its own process group, so a kill also takes down helpers such as pdftotext.
                start_new_session=True,
            )
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        self.ready = False
        self.busy = False  # an item sent, its outcome not received
        self.started_at = time.monotonic()

    def check_ready(self, wait_s: float, start_timeout_s: float) -> str | None:
        """None when ready, "" while still warming up, otherwise why it will never be ready."""
        if self.ready:
            return None
        try:
            if self.conn.poll(max(0.0, wait_s)):
                tag, _ = self.conn.recv()
                self.ready = tag == "ready"
                return None if self.ready else f"unexpected start message {tag!r}"
        except (EOFError, OSError):
            return f"the parser process died while starting (exit code {self.exit_code()})"
        if time.monotonic() - self.started_at > start_timeout_s:
            return f"the parser process did not start within {start_timeout_s:g} s"
        return ""

    def wait_ready(self, timeout_s: float) -> str | None:
        """Block until warmed up: None when ready, else why it never will be."""
        problem = self.check_ready(timeout_s, timeout_s)
        return (
            f"the parser process did not start within {timeout_s:g} s" if problem == "" else problem
        )

    def exit_code(self) -> int | None:
        try:
            return self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return None

    def ask_to_stop(self) -> None:
        """Ask the worker to end (an idle one does at once; one warming up or busy reads the
        request only when it is done) and close our end."""
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.conn.close()

    def end_by(self, deadline: float) -> None:
        """Wait for the worker to end until `deadline` (time.monotonic()), then kill it."""
        try:
            self.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            return
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def kill(self) -> None:
        """Kill the worker and its helpers (pdftotext) at once."""
        self.conn.close()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            self.process.kill()
        self.process.wait()


# How long the idle workers of a closing pool get, all together, to end by themselves before they
# are killed. A pool closes when its run's work is done or was given up (an error, SIGTERM): a
# worker still warming up or busy with an item would read the request to end only when done, and
# what it is doing has nobody left to take it (a worker writes nothing itself), so it is killed at
# once. Before, each worker was waited for 5 s in turn, and one warming up (the schematrons: 1.3 s
# on an idle machine, many seconds beside other runs) or busy used them all: a documents run went
# on for 10-20 s after SIGTERM (issue 55).
STOP_GRACE_SECONDS = 2.0


def _stop_all(workers: list[_Worker]) -> None:
    idle = [worker for worker in workers if worker.ready and not worker.busy]
    for worker in workers:
        if worker in idle:
            worker.ask_to_stop()
        else:
            worker.kill()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for worker in idle:
        worker.end_by(deadline)
    workers.clear()


class WorkerPool:
    """Run `target` on items (bytes and a file name) in warm worker processes with a time limit
    per item.

    Each worker is a fresh interpreter that runs `warm_up` once (both `module:function`). An item
    that exceeds `timeout_s` or crashes its worker comes back as `failure`'s outcome (a
    `module:function` taking kind, data, filename and message; `WorkerFailure` without one) and
    the worker is replaced; the other items of the batch are not affected. Each worker's data
    memory is capped at `memory_bytes` (0: no cap); an item that needs more fails with that reason.
    Use as a context manager or call close().
    Not thread-safe: use one pool per thread.
    """

    def __init__(
        self,
        *,
        workers: int = 2,
        timeout_s: float = 30.0,
        max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        target: str,
        warm_up: str = "",
        failure: str = "",
        start_timeout_s: float = 120.0,
        memory_bytes: int = PARSE_WORKER_MEMORY_BYTES,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.warm_up = warm_up
        self.failure = failure
        self._failed = resolve(failure) if failure else failure_outcome
        self.start_timeout_s = start_timeout_s
        self.target = target
        self.memory_bytes = memory_bytes
        self.restarts = 0
        self._pool: list[_Worker] = []
        self._finalizer = weakref.finalize(self, _stop_all, self._pool)

    def __enter__(self) -> WorkerPool:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the workers now (they warm up in parallel); parse_many does it on demand."""
        while len(self._pool) < self.workers:
            self._pool.append(_Worker(self.target, self.warm_up, self.failure, self.memory_bytes))

    def wait_ready(self, timeout_s: float | None = None) -> list[str]:
        """Start the workers and block until all are warm; returns the start problems (if any)."""
        self.start()
        timeout = self.start_timeout_s if timeout_s is None else timeout_s
        problems = [worker.wait_ready(timeout) for worker in self._pool]
        return [p for p in problems if p]

    def close(self) -> None:
        self._finalizer()

    def process_ids(self) -> list[int]:
        """Process ids of the workers started and not yet stopped."""
        return [w.process.pid for w in self._pool if w.process.poll() is None]

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self._pool[self._pool.index(worker)] = _Worker(
            self.target, self.warm_up, self.failure, self.memory_bytes
        )
        self.restarts += 1

    def parse(self, data: bytes, filename: str) -> Any:
        return self.parse_many([(data, filename)])[0]

    def parse_many(self, items: Sequence[tuple[bytes, str]], *, pickled: bool = False) -> list[Any]:
        """Run a batch; results are in input order, one per item, whatever happens to any one.
        With `pickled`, a worker's outcome comes back as it sent it (`Pickled`, see there).
        A run's process sent SIGTERM stops here even when Dagster's interrupt was lost
        (stop_signal.py)."""
        stop_signal.raise_if_received()
        self.start()
        results: list[Any] = [None] * len(items)
        pending = deque(range(len(items)))
        busy: dict[int, tuple[_Worker, int, float]] = {}  # id(worker) -> (worker, item, deadline)
        options = {"max_bytes": self.max_bytes}
        start_failures = 0

        def fail(index: int, message: str) -> None:
            data, filename = items[index]
            results[index] = self._failed(LOST, data, filename, message)

        while pending or busy:
            for worker in list(self._pool):
                if not pending or id(worker) in busy:
                    continue
                # Block on a warming worker only when nothing else needs watching.
                wait_s = 0.0 if busy else self.start_timeout_s
                problem = worker.check_ready(
                    wait_s - (time.monotonic() - worker.started_at), self.start_timeout_s
                )
                if problem == "":
                    continue
                if problem is not None:
                    start_failures += 1
                    if start_failures >= MAX_START_FAILURES:
                        while pending:
                            fail(pending.popleft(), f"the file was not parsed: {problem}")
                        break
                    self._replace(worker)
                    continue
                start_failures = 0
                index = pending.popleft()
                data, filename = items[index]
                try:
                    worker.conn.send((index, data, filename, options))
                except (OSError, ValueError) as exc:
                    fail(index, f"the file was not parsed: the parser process is gone ({exc})")
                    self._replace(worker)
                    continue
                worker.busy = True
                busy[id(worker)] = (worker, index, time.monotonic() + self.timeout_s)
            if not busy:
                continue
            # Warming workers are watched only while there is work for them; otherwise their
            # "ready" message would wake this loop again and again.
            starting = [w for w in self._pool if pending and not w.ready and id(w) not in busy]
            deadlines = [deadline for _, _, deadline in busy.values()]
            deadlines += [w.started_at + self.start_timeout_s for w in starting]
            watched = [w.conn for w, _, _ in busy.values()] + [w.conn for w in starting]
            by_conn = {id(w.conn): key for key, (w, _, _) in busy.items()}
            ready = wait(watched, max(0.0, min(deadlines) - time.monotonic()))
            stop_signal.raise_if_received()
            for conn in ready:
                key = by_conn.get(id(conn))
                if key is None:
                    continue  # a warming worker: picked up at the top of the loop
                worker, index, _ = busy.pop(key)
                try:
                    if pickled:
                        outcome = Pickled(conn.recv_bytes())
                    else:
                        _, outcome = conn.recv()
                    worker.busy = False
                except (EOFError, OSError):
                    code = worker.exit_code()
                    fail(
                        index,
                        f"the parser process crashed (exit code {code}) while reading this file",
                    )
                    self._replace(worker)
                    continue
                results[index] = outcome
            now = time.monotonic()
            for key, (worker, index, deadline) in list(busy.items()):
                if now >= deadline:
                    busy.pop(key)
                    fail(index, f"timed out after {self.timeout_s:g} s")
                    self._replace(worker)
        return [
            r if r is not None else self._failed(NOT_DONE, items[i][0], items[i][1], "not parsed")
            for i, r in enumerate(results)
        ]
