"""The `document_renderer` resource: worker processes that write and prove invoice documents."""

import pickle
from collections.abc import Sequence

from invoice_pipelines.documents.build import BuiltDocument
from invoice_pipelines.documents.sources import DocumentSource
from invoice_pipelines.resources.parser import DocumentParser


class DocumentRenderer(DocumentParser):
    """Builds invoice documents (PDF/A-3, XML, read-back validation) in warm worker processes,
    the same way the intake parses: each worker compiles the schematrons once, a document that
    hangs past the time limit or crashes its worker fails alone. Owned by the run like the
    parser: started when the run starts using it, stopped when it ends."""

    target = "invoice_pipelines.documents.build:build_in_worker"

    def build_many(self, sources: Sequence[DocumentSource]) -> list[BuiltDocument]:
        items = [(pickle.dumps(source), source.filename) for source in sources]
        results = []
        for source, outcome in zip(sources, self.parse_many(items), strict=True):
            if isinstance(outcome, BuiltDocument):
                results.append(outcome)
            else:  # the worker timed out or died: the pool reports it as a failed parse
                message = outcome.errors[0].message if outcome.errors else "no result"
                results.append(
                    BuiltDocument(
                        source.sales_invoice_id,
                        errors=[{"rule": "IP-DOC-WORKER", "message": message}],
                    )
                )
        return results
