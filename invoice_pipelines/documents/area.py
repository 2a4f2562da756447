"""The documents area as the assemblies see it: `documents` and `batch-documents` (their parsers
documents/cli.py, what they do documents/commands.py), its asset, job and sensor (documents/defs.py), its kind of batch job
(`documents`), and the two resources it makes: the `document_renderer` its runs build in, and the
`letter_writer` every letter is written with (the dunning letters, a supplier invoice printed for
QuickBooks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoice_pipelines.area import AddCommands, Area, Command, QueueKind, Resource
from invoice_pipelines.core.batch_kinds import KindName

if TYPE_CHECKING:
    from types import ModuleType

    from dagster import Definitions

    from invoice_pipelines.documents.letter_writer import PdfaLetterWriter
    from invoice_pipelines.documents.letters import PdfaLetters
    from invoice_pipelines.documents.renderer import DocumentRenderer
    from invoice_pipelines.queue.job_kind import JobKind


def _commands() -> ModuleType:
    """The one import of what the commands do (documents/commands.py), when one of them runs."""
    from invoice_pipelines.documents import commands

    return commands


def _parsers() -> AddCommands:
    from invoice_pipelines.documents.cli import add_commands

    return add_commands


def _definitions() -> Definitions:
    from invoice_pipelines.documents.defs import defs

    return defs


def _documents_kind() -> JobKind:
    from invoice_pipelines.documents.batch import DOCUMENTS_KIND

    return DOCUMENTS_KIND


def _document_renderer() -> DocumentRenderer:
    from invoice_pipelines.documents.renderer import DocumentRenderer
    from invoice_pipelines.settings import positive_number

    return DocumentRenderer(
        timeout_seconds=float(positive_number("INVOICE_PIPELINES_PARSE_TIMEOUT_SECONDS", float)),
    )


def _letter_writer() -> PdfaLetterWriter:
    from invoice_pipelines.documents.letter_writer import PdfaLetterWriter

    return PdfaLetterWriter()


def _letters() -> PdfaLetters:
    from invoice_pipelines.documents.letters import PdfaLetters

    return PdfaLetters()


def _resources() -> dict[str, Resource]:
    return {
        # a command renders in its own process with the default renderer (None)
        "document_renderer": Resource(_document_renderer, lambda: None),
        # a command writes with the plain writer the resource wraps
        "letter_writer": Resource(_letter_writer, _letters),
    }


AREA = Area(
    "documents",
    commands=(
        Command(
            "documents",
            "write the documents (Factur-X PDF, XRechnung) of invoices",
            run=lambda: _commands().run_documents,
        ),
        Command(
            "batch-documents",
            "queue a documents job over invoices (optional combined PDF)",
            run=lambda: _commands().run_batch_documents,
        ),
    ),
    parsers=_parsers,
    definitions=_definitions,
    kinds=(QueueKind(KindName.DOCUMENTS, _documents_kind),),
    provides=_resources,
    needs=frozenset({"database", "document_store", "document_renderer"}),
)
