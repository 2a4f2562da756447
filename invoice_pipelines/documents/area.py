"""The documents area as the assemblies see it: `documents` and `batch-documents` (their parsers
documents/commands/cli.py, what they do documents/commands/run.py), its asset, job and sensor
(documents/defs.py), its kind of batch job (`documents`), and the two resources it makes: the
`document_renderer` its runs build in, and the `letter_writer` every letter is written with (the
dunning letters, a supplier invoice printed for QuickBooks)."""

from __future__ import annotations

from invoice_pipelines.area_parts import DATABASES, Area, Command, QueueKind, Resource
from invoice_pipelines.core.batch_kinds import KindName

AREA = Area(
    "documents",
    commands=(
        Command(
            "documents",
            "write the documents (Factur-X PDF, XRechnung) of invoices",
            run="invoice_pipelines.documents.commands.run:run_documents",
        ),
        Command(
            "batch-documents",
            "queue a documents job over invoices (optional combined PDF)",
            run="invoice_pipelines.documents.commands.run:run_batch_documents",
        ),
    ),
    parsers="invoice_pipelines.documents.commands.cli:add_commands",
    definitions="invoice_pipelines.documents.defs:defs",
    kinds=(
        QueueKind(KindName.DOCUMENTS, "invoice_pipelines.documents.domain.batch:DOCUMENTS_KIND"),
    ),
    provides={
        # a command renders in its own process with the default renderer
        "document_renderer": Resource(
            "invoice_pipelines.documents.domain.renderer:document_renderer", commands=False
        ),
        # a command writes with the plain writer the resource wraps
        "letter_writer": Resource(
            "invoice_pipelines.documents.domain.letters:pdfa_letters",
            for_runs="invoice_pipelines.documents.domain.letter_writer:PdfaLetterWriter.of",
        ),
    },
    needs=DATABASES | {"document_store", "document_renderer"},
)
