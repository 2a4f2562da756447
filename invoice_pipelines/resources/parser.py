"""The `document_parser` resource: the intake's parser worker processes, owned by the run."""

import threading
from collections.abc import Sequence
from typing import ClassVar

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from invoice_pipelines.intake.parse import ParseOutcome
from invoice_pipelines.intake.workers import DEFAULT_TARGET, SafeParser
from invoice_pipelines.resources.ocr import available_cores
from invoice_pipelines.settings import DEFAULT_MAX_UPLOAD_BYTES


class DocumentParser(ConfigurableResource):
    """Parses documents in warm worker processes, each with a time limit and a size limit.

    Each worker also caps its own data memory at `limits.PARSE_WORKER_MEMORY_BYTES` (see
    `intake/workers.py`): a document that needs more ends FAILED, the rest of the batch goes on.

    The workers start when a run (or a check, or a sensor tick) begins using the resource and are
    stopped when it ends: no process outlives the step that started it. Batches on one instance
    run one at a time (parse_many is not re-entrant); a second caller waits for the first.
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
    # what the workers run for each item (module:function); subclasses run other work there
    target: ClassVar[str] = DEFAULT_TARGET
    _parser: SafeParser | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._start()

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self.close()

    def _start(self) -> SafeParser:
        if self._parser is None:
            self._parser = SafeParser(
                workers=self.workers,
                timeout_s=self.timeout_seconds,
                max_bytes=self.max_upload_bytes,
                target=self.target,
            )
            self._parser.start()
        return self._parser

    @property
    def process_ids(self) -> list[int]:
        """The worker processes running now (empty before setup and after teardown)."""
        return [] if self._parser is None else self._parser.process_ids()

    def parse_many(self, items: Sequence[tuple[bytes, str]]) -> list[ParseOutcome]:
        with self._lock:
            return self._start().parse_many(items)

    def close(self) -> None:
        with self._lock:
            if self._parser is not None:
                self._parser.close()
                self._parser = None
