"""The `document_renderer` resource: worker processes that write and prove invoice documents."""

import pickle
from collections.abc import Sequence

from invoice_pipelines.documents.build import BuiltDocument
from invoice_pipelines.documents.sources import DocumentSource
from invoice_pipelines.resources.parser import DocumentParser

# Documents per message to a worker: a document takes a worker about 15 ms, and every message is a
# round trip through this process, which a busy machine may not schedule at once; the workers
# would wait for it between documents.
GROUP = 4


class DocumentRenderer(DocumentParser):
    """Builds invoice documents (PDF/A-3, XML, read-back validation) in warm worker processes,
    the same way the intake parses: each worker compiles the schematrons once, a document that
    hangs past the time limit or crashes its worker fails alone. Owned by the run like the
    parser: started when the run starts using it, stopped when it ends.

    Documents go to the workers GROUP at a time; when a group times out or its worker dies, each
    of its documents is built again on its own, so only the one at fault fails."""

    target = "invoice_pipelines.documents.build:build_in_worker"

    def build_many(self, sources: Sequence[DocumentSource]) -> list[BuiltDocument]:
        groups = [list(sources[first : first + GROUP]) for first in range(0, len(sources), GROUP)]
        built: dict[int, BuiltDocument] = {}
        alone: list[DocumentSource] = []
        items = [(pickle.dumps(group), group[0].filename) for group in groups]
        for group, outcome in zip(groups, self.parse_many(items), strict=True):
            if isinstance(outcome, list):
                built.update((document.sales_invoice_id, document) for document in outcome)
            else:
                alone += group
        if alone:
            items = [(pickle.dumps(source), source.filename) for source in alone]
            for source, outcome in zip(alone, self.parse_many(items), strict=True):
                if not isinstance(outcome, BuiltDocument):
                    # the worker timed out or died: the pool reports it as a failed parse
                    message = outcome.errors[0].message if outcome.errors else "no result"
                    outcome = BuiltDocument(
                        source.sales_invoice_id,
                        errors=[{"rule": "IP-DOC-WORKER", "message": message}],
                    )
                built[source.sales_invoice_id] = outcome
        return [built[source.sales_invoice_id] for source in sources]
