"""The `document_renderer` resource: worker processes that write and prove invoice documents."""

import pickle
from collections.abc import Sequence
from typing import ClassVar

from invoice_pipelines.documents.domain.build import WARM_UP, BuiltDocument
from invoice_pipelines.documents.domain.sources import DocumentSource
from invoice_pipelines.einvoice.read_back import READ_BACK
from invoice_pipelines.resources.workers.pool_resource import WorkerPoolResource
from invoice_pipelines.settings import NOW, Reading, positive_number

# Documents per message to a worker: a document takes a worker about 10 ms, and every message is a
# round trip through this process, which a busy machine may not schedule at once; the workers
# would wait for it between documents.
GROUP = 4


def groups_of(count: int, workers: int) -> list[int]:
    """The sizes of the messages `count` documents go to `workers` workers in: GROUP each, then
    smaller towards the end (about a (2 x workers)-th of what is left), so the workers finish a
    batch together: with groups of GROUP to the end, one worker built the last group while the
    others waited for the batch's end, a group's time per batch."""
    sizes: list[int] = []
    left = count
    while left > 0:
        size = max(1, min(GROUP, -(-left // (2 * max(1, workers)))))
        sizes.append(size)
        left -= size
    return sizes


class DocumentRenderer(WorkerPoolResource):
    """Builds invoice documents (PDF/A-3, XML, read-back validation) in warm worker processes,
    the same way the intake parses: each worker warms up the reader that proves the documents
    (compiling the schematrons) once, a document that hangs past the time limit or crashes its
    worker fails alone. Owned by the run like the parser: started when the run starts using it,
    stopped when it ends.

    Documents go to the workers GROUP at a time (fewer towards a batch's end, `groups_of`), each message with the reader that proves them
    (`einvoice.read_back.READ_BACK`); when a group times out or its worker dies, each of its documents is
    built again on its own, so only the one at fault fails."""

    target: ClassVar[str] = "invoice_pipelines.documents.domain.build:build_in_worker"
    # the reader's rules compiled and one document built as each worker starts, so the first
    # document does not pay for them
    warm_up: ClassVar[str] = WARM_UP

    def build_many(self, sources: Sequence[DocumentSource]) -> list[BuiltDocument]:
        read_back = READ_BACK
        groups, first = [], 0
        for size in groups_of(len(sources), self.workers):
            groups.append(list(sources[first : first + size]))
            first += size
        built: dict[int, BuiltDocument] = {}
        alone: list[DocumentSource] = []
        items = [(pickle.dumps((read_back, group)), group[0].filename) for group in groups]
        for group, outcome in zip(groups, self.parse_many(items), strict=True):
            if isinstance(outcome, list):
                built.update((document.sales_invoice_id, document) for document in outcome)
            else:
                alone += group
        if alone:
            items = [(pickle.dumps((read_back, source)), source.filename) for source in alone]
            for source, outcome in zip(alone, self.parse_many(items), strict=True):
                if not isinstance(outcome, BuiltDocument):
                    # the worker timed out or died (a WorkerFailure of the pool)
                    outcome = BuiltDocument(
                        source.sales_invoice_id,
                        errors=[{"rule": "IP-DOC-WORKER", "message": outcome.message}],
                    )
                built[source.sales_invoice_id] = outcome
        return [built[source.sales_invoice_id] for source in sources]


def document_renderer(read: Reading = NOW) -> DocumentRenderer:
    """The runs' `document_renderer` (documents/area.py; a command renders in its own process):
    a document over INVOICE_PIPELINES_PARSE_TIMEOUT_SECONDS fails alone."""
    return DocumentRenderer(
        timeout_seconds=float(positive_number("INVOICE_PIPELINES_PARSE_TIMEOUT_SECONDS", float))
    )
