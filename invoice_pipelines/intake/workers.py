"""Warm worker processes that run `parse_document` with a time and a memory limit per worker.

A file that hangs or crashes a library (pypdf, lxml, Saxon) costs one worker restart, not the
batch: `SafeParser.parse_many` hands documents to workers, collects their outcomes in input order,
and turns a timeout, a crash or a worker that cannot start into a FAILED outcome with the reason.
Each worker limits its own memory (`limits.PARSE_WORKER_MEMORY_BYTES`, RLIMIT_DATA) as it starts,
so a document that needs more fails alone ("the parser ran out of memory") instead of taking the
machine's memory from the other workers and the run.
Inside Dagster the `DocumentParser` resource (resources/parser.py) owns one SafeParser for the
lifetime of a run.
"""

from __future__ import annotations

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
from multiprocessing.connection import Connection, wait

from invoice_pipelines.intake import verdict
from invoice_pipelines.intake.parse import OUT_OF_MEMORY, ParseOutcome, content_hash, failed, sniff
from invoice_pipelines.limits import PARSE_WORKER_MEMORY_BYTES
from invoice_pipelines.settings import DEFAULT_MAX_UPLOAD_BYTES

DEFAULT_TARGET = "invoice_pipelines.intake.parse:parse_document"
# After this many workers in a row fail to start, the rest of the batch fails with the reason
# instead of spawning one more doomed process per document.
MAX_START_FAILURES = 3


def _resolve(target: str) -> Callable[..., ParseOutcome]:
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
    """Entry point of a worker process: `python -c ... FD TARGET WARM SYS_PATH_JSON MEMORY`."""
    fd, target, warm, sys_path = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    memory_bytes = int(sys.argv[5])
    if memory_bytes > 0:
        limit_memory(memory_bytes)
    for entry in reversed(json.loads(sys_path)):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    _worker_loop(Connection(int(fd)), target, warm == "1")


def _worker_loop(conn: Connection, target: str, warm: bool) -> None:
    """Warm up once, then parse documents until the parent closes the connection."""
    # Malformed PDFs make pypdf log a warning per defect; we report problems ourselves.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    parse = _resolve(target)
    if warm:
        try:
            verdict.warm_up()
        except Exception:  # each document then reports the missing artefact itself
            pass
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
            outcome = parse(data, filename, **options)
        except MemoryError:
            outcome = failed("unknown", "read", OUT_OF_MEMORY, digest=content_hash(data))
        except Exception as exc:
            outcome = failed(
                "unknown",
                "internal",
                f"unexpected error while reading the file: {type(exc).__name__}: {exc}",
                digest=content_hash(data),
            )
        conn.send((job_id, outcome))


class _Worker:
    """One worker process and our end of its socket.

    A plain subprocess rather than multiprocessing: spawn-mode multiprocessing re-imports the
    parent's __main__ module in the child (breaking scripts without a main guard) and refuses to
    start from daemonic processes; a fresh interpreter has neither problem, and is never forked
    from a process that may already hold a Saxon runtime.
    """

    def __init__(self, target: str, warm: bool, memory_bytes: int) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from invoice_pipelines.intake.workers import _worker_entry; _worker_entry()",
                    str(theirs.fileno()),
                    target,
                    "1" if warm else "0",
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

    def stop(self, *, kill: bool = False) -> None:
        if not kill:
            try:
                self.conn.send(None)
            except (OSError, ValueError):
                pass
        self.conn.close()
        if not kill:
            try:
                self.process.wait(timeout=5)
                return
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            self.process.kill()
        self.process.wait()


def _stop_all(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.stop()
    workers.clear()


class SafeParser:
    """Parse documents in warm worker processes with a time limit per document.

    Each worker is a fresh interpreter that compiles the schematrons once. A document that
    exceeds `timeout_s` or crashes its worker comes back FAILED and the worker is replaced; the
    other documents of the batch are not affected. Each worker's data memory is capped at
    `memory_bytes` (0: no cap); a document that needs more comes back FAILED with that reason.
    Use as a context manager or call close().
    Not thread-safe: use one SafeParser per thread.
    """

    def __init__(
        self,
        *,
        workers: int = 2,
        timeout_s: float = 30.0,
        max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        warm: bool = True,
        start_timeout_s: float = 120.0,
        target: str = DEFAULT_TARGET,
        memory_bytes: int = PARSE_WORKER_MEMORY_BYTES,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.warm = warm
        self.start_timeout_s = start_timeout_s
        self.target = target
        self.memory_bytes = memory_bytes
        self.restarts = 0
        self._pool: list[_Worker] = []
        self._finalizer = weakref.finalize(self, _stop_all, self._pool)

    def __enter__(self) -> SafeParser:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the workers now (they warm up in parallel); parse_many does it on demand."""
        while len(self._pool) < self.workers:
            self._pool.append(_Worker(self.target, self.warm, self.memory_bytes))

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
        worker.stop(kill=True)
        self._pool[self._pool.index(worker)] = _Worker(self.target, self.warm, self.memory_bytes)
        self.restarts += 1

    def parse(self, data: bytes, filename: str) -> ParseOutcome:
        return self.parse_many([(data, filename)])[0]

    def parse_many(self, items: Sequence[tuple[bytes, str]]) -> list[ParseOutcome]:
        """Parse a batch; results are in input order, one per item, whatever happens to any one."""
        self.start()
        results: list[ParseOutcome | None] = [None] * len(items)
        pending = deque(range(len(items)))
        busy: dict[int, tuple[_Worker, int, float]] = {}  # id(worker) -> (worker, item, deadline)
        options = {"max_bytes": self.max_bytes}
        start_failures = 0

        def fail(index: int, message: str) -> None:
            data, filename = items[index]
            results[index] = failed(
                sniff(data), "parse", message, digest=content_hash(data), raw={"filename": filename}
            )

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
            for conn in ready:
                key = by_conn.get(id(conn))
                if key is None:
                    continue  # a warming worker: picked up at the top of the loop
                worker, index, _ = busy.pop(key)
                try:
                    _, outcome = conn.recv()
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
            r
            if r is not None
            else failed("unknown", "internal", "not parsed", digest=content_hash(items[i][0]))
            for i, r in enumerate(results)
        ]
