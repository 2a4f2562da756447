"""The `document_parser` resource: the intake's parser worker processes (`intake/domain/workers.py`),
owned by the run or kept warm for the code location in a parse server
(`resources/workers/parse_server.py`)."""

from collections.abc import Iterable, Iterator, Sequence
from typing import ClassVar

from invoice_pipelines.einvoice.verdict import WARM_UP
from invoice_pipelines.intake.domain.parse import ParseOutcome
from invoice_pipelines.intake.domain.warm_up import WARM_UP_WITH_DOCUMENTS, warm_documents
from invoice_pipelines.intake.domain.workers import DEFAULT_TARGET, FAILURE
from invoice_pipelines.resources.workers.parse_server import KEEP_WARM_SECONDS, ServerSpec
from invoice_pipelines.resources.workers.pool_resource import WorkerPoolResource
from invoice_pipelines.settings import NOW, Reading, max_upload_bytes, positive_number


class DocumentParser(WorkerPoolResource):
    """Parses documents in warm worker processes, each with a time limit and a size limit.

    Each worker compiles the schematrons as it starts (a parse server's also reads made-up
    documents through, `intake/domain/warm_up.py`) and caps its own data memory at
    `limits.PARSE_WORKER_MEMORY_BYTES`: a document that needs more ends FAILED, the rest of the
    batch goes on; so does a document that times out or crashes its worker.

    `keep_warm_seconds` 0: the workers start when a run (or a check, or a sensor tick) begins using
    the resource and are stopped when it ends: no process outlives the step that started it.
    Above 0: the runs share the warm workers of a parse server that outlives them (started by the
    first run that needs one, stopped after that many idle seconds; `resources/workers/parse_server.py`);
    a run that cannot reach one, or loses it, parses in workers of its own as above.
    Batches on one instance run one at a time (parse_many is not re-entrant); a second caller
    waits for the first. `parse_stream` takes batch after batch and, through a parse server,
    sends the next before collecting one; it holds the instance until the stream ends.
    """

    target: ClassVar[str] = DEFAULT_TARGET
    warm_up: ClassVar[str] = WARM_UP
    server_warm_up: ClassVar[str] = WARM_UP_WITH_DOCUMENTS  # intake/domain/warm_up.py says why
    failure: ClassVar[str] = FAILURE

    def server_spec(self) -> ServerSpec:
        warm_documents()  # a bad INVOICE_PIPELINES_PARSE_WARM_DOCUMENTS fails here, not unseen
        return super().server_spec()

    def parse_many(self, items: Sequence[tuple[bytes, str]]) -> list[ParseOutcome]:
        return super().parse_many(items)

    def parse_stream(
        self, batches: Iterable[Sequence[tuple[bytes, str]]]
    ) -> Iterator[list[ParseOutcome]]:
        return super().parse_stream(batches)


def document_parser(read: Reading = NOW) -> DocumentParser:
    """The runs' `document_parser` (intake/area.py; a command parses in its own process): a
    document over INVOICE_PIPELINES_PARSE_TIMEOUT_SECONDS or INVOICE_PIPELINES_MAX_UPLOAD_BYTES
    ends FAILED."""
    return DocumentParser(
        timeout_seconds=float(positive_number("INVOICE_PIPELINES_PARSE_TIMEOUT_SECONDS", float)),
        max_upload_bytes=max_upload_bytes(),
        # the runs share one warm pool (resources/workers/parse_server.py), not one warm-up each
        keep_warm_seconds=KEEP_WARM_SECONDS,
    )
