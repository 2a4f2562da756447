"""The intake's parse workers: the shared worker pool (`resources/workers/worker_pool.py`) running
`parse_document`, each worker compiling the schematrons as it starts, and every document without
an outcome of its own (timed out, crashed its worker, out of memory) a FAILED `ParseOutcome`
with the reason. Inside Dagster the `DocumentParser` resource (`intake/parser_resource.py`) owns
the pool for the lifetime of a run.
"""

from __future__ import annotations

from invoice_pipelines.einvoice.read import OUT_OF_MEMORY, ParseOutcome, content_hash, failed
from invoice_pipelines.einvoice.verdict import WARM_UP
from invoice_pipelines.intake.domain.parse import sniff
from invoice_pipelines.resources.workers import worker_pool
from invoice_pipelines.resources.workers.worker_pool import WorkerPool

DEFAULT_TARGET = "invoice_pipelines.intake.domain.parse:parse_document"
FAILURE = "invoice_pipelines.intake.domain.workers:failure"


def failure(kind: str, data: bytes, filename: str, message: str) -> ParseOutcome:
    """The FAILED outcome of a document the workers could not parse (`worker_pool`'s kinds)."""
    if kind == worker_pool.LOST:
        return failed(
            sniff(data), "parse", message, digest=content_hash(data), raw={"filename": filename}
        )
    if kind == worker_pool.OUT_OF_MEMORY:
        return failed("unknown", "read", OUT_OF_MEMORY, digest=content_hash(data))
    return failed("unknown", "internal", message, digest=content_hash(data))


class SafeParser(WorkerPool):
    """Parse documents in warm worker processes with a time limit per document.

    Each worker is a fresh interpreter that compiles the schematrons once (`warm`). A document
    that exceeds `timeout_s` or crashes its worker comes back FAILED and the worker is replaced;
    the other documents of the batch are not affected. Each worker's data memory is capped at
    `memory_bytes` (0: no cap); a document that needs more comes back FAILED with that reason.
    Use as a context manager or call close(). Not thread-safe: use one SafeParser per thread.
    """

    def __init__(
        self, *, warm: bool = True, target: str = DEFAULT_TARGET, warm_up: str = WARM_UP, **options
    ) -> None:
        super().__init__(target=target, warm_up=warm_up if warm else "", failure=FAILURE, **options)
