"""The `document_parser` resource: the intake's parser worker processes, owned by the run or kept
warm for the code location in a parse server (`intake/parse_server.py`)."""

import logging
import threading
from collections.abc import Sequence
from typing import ClassVar

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from invoice_pipelines.intake.parse import ParseOutcome
from invoice_pipelines.intake.parse_server import (
    ParseServerClient,
    ServerGone,
    ServerSpec,
    ServerUnavailable,
)
from invoice_pipelines.intake.workers import DEFAULT_TARGET, SafeParser
from invoice_pipelines.resources.ocr import available_cores
from invoice_pipelines.settings import DEFAULT_MAX_UPLOAD_BYTES

log = logging.getLogger(__name__)


class DocumentParser(ConfigurableResource):
    """Parses documents in warm worker processes, each with a time limit and a size limit.

    Each worker also caps its own data memory at `limits.PARSE_WORKER_MEMORY_BYTES` (see
    `intake/workers.py`): a document that needs more ends FAILED, the rest of the batch goes on.

    `keep_warm_seconds` 0: the workers start when a run (or a check, or a sensor tick) begins using
    the resource and are stopped when it ends: no process outlives the step that started it.
    Above 0: the runs share the warm workers of a parse server that outlives them (started by the
    first run that needs one, stopped after that many idle seconds; `intake/parse_server.py`); a
    run that cannot reach one, or loses it, parses in workers of its own as above.
    Batches on one instance run one at a time (parse_many is not re-entrant); a second caller
    waits for the first.
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
    # what the workers run for each item (module:function); subclasses run other work there
    target: ClassVar[str] = DEFAULT_TARGET
    # whether each worker compiles the schematrons as it starts
    warm: ClassVar[bool] = True
    _parser: SafeParser | None = PrivateAttr(default=None)
    _server: ParseServerClient | None = PrivateAttr(default=None)
    _own_workers: bool = PrivateAttr(default=False)  # this run lost its server: no other one
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def setup_for_execution(self, context: InitResourceContext) -> None:
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
            warm=self.warm,
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

    def _start(self) -> SafeParser:
        if self._parser is None:
            self._parser = SafeParser(
                workers=self.workers,
                timeout_s=self.timeout_seconds,
                max_bytes=self.max_upload_bytes,
                target=self.target,
                warm=self.warm,
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

    def parse_many(self, items: Sequence[tuple[bytes, str]]) -> list[ParseOutcome]:
        with self._lock:
            if self.keep_warm_seconds > 0 and self._connect() is not None:
                try:
                    return self._server.parse_many(items)
                except ServerGone as gone:
                    # the documents without an outcome are parsed here; the run records each
                    # document once, whichever pool read it
                    log.warning("%s: the rest of the batch is parsed in workers of this run", gone)
                    self._server.close()
                    self._server = None
                    self._own_workers = True  # warm now; the next run starts a new server
                    missing = [i for i, outcome in enumerate(gone.results) if outcome is None]
                    results = list(gone.results)
                    parsed = self._start().parse_many([items[i] for i in missing])
                    for index, outcome in zip(missing, parsed, strict=True):
                        results[index] = outcome
                    return results
            return self._start().parse_many(items)

    def close(self) -> None:
        with self._lock:
            if self._server is not None:
                self._server.close()
                self._server = None
            if self._parser is not None:
                self._parser.close()
                self._parser = None
            self._own_workers = False
