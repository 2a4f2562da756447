"""A Dagster resource that owns a worker pool (`resources/workers/worker_pool.py`): the run's own workers,
or the warm workers of the code location's parse server (`resources/workers/parse_server.py`). An area
subclasses it and names what the workers run: the intake's `DocumentParser`
(`intake/parser_resource.py`), the documents' `DocumentRenderer` (`documents/domain/renderer.py`)."""

import logging
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from invoice_pipelines.resources.ocr.engines import available_cores
from invoice_pipelines.resources.workers import stop_signal
from invoice_pipelines.resources.workers.parse_server import (
    ParseServerClient,
    ServerGone,
    ServerSpec,
    ServerUnavailable,
)
from invoice_pipelines.resources.workers.worker_pool import WorkerPool
from invoice_pipelines.settings import DEFAULT_MAX_UPLOAD_BYTES

log = logging.getLogger(__name__)


class WorkerPoolResource(ConfigurableResource):
    """Runs items in warm worker processes, each with a time limit and a size limit.

    Each worker also caps its own data memory at `limits.PARSE_WORKER_MEMORY_BYTES` (see
    `resources/workers/worker_pool.py`): an item that needs more fails, the rest of the batch goes on.

    `keep_warm_seconds` 0: the workers start when a run (or a check, or a sensor tick) begins using
    the resource and are stopped when it ends: no process outlives the step that started it.
    Above 0: the runs share the warm workers of a parse server that outlives them (started by the
    first run that needs one, stopped after that many idle seconds; `resources/workers/parse_server.py`); a
    run that cannot reach one, or loses it, parses in workers of its own as above.
    Batches on one instance run one at a time (parse_many is not re-entrant); a second caller
    waits for the first. `parse_stream` takes batch after batch and, through a parse server,
    sends the next before collecting one; it holds the instance until the stream ends.
    """

    workers: int = Field(
        default_factory=available_cores,
        description="Worker processes (default: the usable cores). Each compiles the schematrons "
        "once at start.",
    )
    timeout_seconds: float = Field(
        default=30.0,
        description="Time limit for one document (INVOICE_PIPELINES_PARSE_TIMEOUT_SECONDS); a "
        "document over it ends FAILED and its worker is replaced.",
    )
    max_upload_bytes: int = Field(
        default=DEFAULT_MAX_UPLOAD_BYTES,
        description="Documents larger than this end FAILED without being read "
        "(INVOICE_PIPELINES_MAX_UPLOAD_BYTES).",
    )
    keep_warm_seconds: float = Field(
        default=0.0,
        ge=0.0,
        description="0: each run starts and stops workers of its own. Above 0: runs share the "
        "warm workers of a parse server that stops after this many seconds without work.",
    )
    server_dir: str = Field(
        default="",
        description="Folder of the parse server's socket (only our user may enter it); empty: "
        "invoice-pipelines-parse-<uid> in the temporary folder.",
    )
    # what the workers run for each item, what each runs once as it starts, and what an item
    # without an outcome of its own becomes (module:function each; see WorkerPool)
    target: ClassVar[str] = ""
    warm_up: ClassVar[str] = ""
    # what a parse server's workers run once instead (they outlive many runs; "": `warm_up`)
    server_warm_up: ClassVar[str] = ""
    failure: ClassVar[str] = ""
    _parser: WorkerPool | None = PrivateAttr(default=None)
    _server: ParseServerClient | None = PrivateAttr(default=None)
    _own_workers: bool = PrivateAttr(default=False)  # this run lost its server: no other one
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        stop_signal.remember()  # (a run's main thread; elsewhere nothing)
        if self.keep_warm_seconds > 0 and self._connect() is not None:
            return
        self._start()

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self.close()

    def server_spec(self) -> ServerSpec:
        return ServerSpec(
            workers=self.workers,
            timeout_s=self.timeout_seconds,
            max_bytes=self.max_upload_bytes,
            target=self.target,
            idle_seconds=self.keep_warm_seconds,
            warm_up=self.server_warm_up or self.warm_up,
            failure=self.failure,
        )

    def _connect(self) -> ParseServerClient | None:
        if self._server is None and not self._own_workers:
            try:
                self._server = ParseServerClient.connect(
                    self.server_spec(), self.server_dir or None
                )
            except ServerUnavailable as exc:
                log.warning("no parse server (%s): this run parses in workers of its own", exc)
                self._own_workers = True
        return self._server

    def _start(self) -> WorkerPool:
        if self._parser is None:
            self._parser = WorkerPool(
                workers=self.workers,
                timeout_s=self.timeout_seconds,
                max_bytes=self.max_upload_bytes,
                target=self.target,
                warm_up=self.warm_up,
                failure=self.failure,
            )
            self._parser.start()
        return self._parser

    @property
    def process_ids(self) -> list[int]:
        """The run's own worker processes running now (empty before setup and after teardown, and
        while it uses a parse server)."""
        return [] if self._parser is None else self._parser.process_ids()

    @property
    def server_pid(self) -> int | None:
        """The parse server this instance uses, if any."""
        return None if self._server is None else self._server.server_pid

    def wait_ready(self, timeout_s: float = 300.0) -> list[str]:
        """Block until the workers this instance parses in (the parse server's, or its own) are
        warm; the start problems, if any. For measurements that keep the warm-up apart."""
        with self._lock:
            if self.keep_warm_seconds > 0 and self._connect() is not None:
                try:
                    return self._server.wait_ready(timeout_s)
                except ServerGone as gone:
                    log.warning("%s: this run parses in workers of its own", gone)
                    self._server.close()
                    self._server = None
                    self._own_workers = True
            return self._start().wait_ready(timeout_s)

    def parse_many(self, items: Sequence[tuple[bytes, str]]) -> list[Any]:
        [outcomes] = self.parse_stream([items])
        return outcomes

    def parse_stream(self, batches: Iterable[Sequence[tuple[bytes, str]]]) -> Iterator[list[Any]]:
        """Each batch's outcomes in input order, batch after batch. Through a parse server the
        next batch is taken from `batches` and sent before the outcomes of the one before it are
        awaited (`ParseServerClient.parse_stream`): the server's workers never wait for the caller
        between batches. In workers of the run's own, one batch at a time (parse_many).

        The instance is held from the first batch to the end of the stream (close the iterator
        when giving up early): a parse_many or a stream of another thread waits for it."""
        with self._lock:
            source = iter(batches)
            if self.keep_warm_seconds > 0 and self._connect() is not None:
                yield from self._served(source)
            for items in source:  # (what is left after a server was lost)
                outcomes = self._start().parse_many(items)
                del items  # (not held while the caller reads the next batch)
                yield outcomes

    def _served(self, source: Iterator[Sequence[tuple[bytes, str]]]) -> Iterator[list[Any]]:
        """The stream through the parse server, as long as it answers. When it stops, the
        documents of every batch sent without an outcome yet are parsed here; the caller then
        goes on with what is left of `source` in workers of its own."""
        taken: deque[Sequence[tuple[bytes, str]]] = deque()  # sent, outcomes not handed out

        def remembered() -> Iterator[Sequence[tuple[bytes, str]]]:
            for items in source:
                taken.append(items)
                yield items

        handed = 0  # batches whose outcomes were handed out
        stream = self._server.parse_stream(remembered())
        try:
            for outcomes in stream:
                taken.popleft()
                handed += 1
                yield outcomes
            return
        except ServerGone as gone:
            # the documents without an outcome are parsed here; the run records each document
            # once, whichever pool read it
            log.warning("%s: the rest of the stream is parsed in workers of this run", gone)
            self._server.close()
            self._server = None
            self._own_workers = True  # warm now; the next run starts a new server
            in_flight = gone.in_flight
        finally:
            stream.close()  # (a caller that gave up early: its documents' outcomes are dropped)
        numbers = [number for number, _ in in_flight]
        if numbers != list(range(handed, handed + len(taken))):
            raise RuntimeError(
                f"the parse server's stream lost track of its batches ({numbers}, "
                f"{len(taken)} sent after {handed})"
            )
        for _, results in in_flight:
            yield self._complete(taken.popleft(), results)

    def _complete(self, items: Sequence[tuple[bytes, str]], results: list[Any]) -> list[Any]:
        """`results` with the documents that have none parsed in workers of the run's own."""
        missing = [i for i, outcome in enumerate(results) if outcome is None]
        results = list(results)
        if missing:
            parsed = self._start().parse_many([items[i] for i in missing])
            for index, outcome in zip(missing, parsed, strict=True):
                results[index] = outcome
        return results  # type: ignore[return-value]

    def close(self) -> None:
        with self._lock:
            if self._server is not None:
                self._server.close()
                self._server = None
            if self._parser is not None:
                self._parser.close()
                self._parser = None
            self._own_workers = False
