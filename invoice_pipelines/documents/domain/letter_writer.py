"""`PdfaLetterWriter`: the `letter_writer` resource of the runs (definitions.py), the Dagster face
of `documents/domain/letters.py` `PdfaLetters` with its `max_pages` shown and configured by Dagster: a run
gets the plain `PdfaLetters` it makes."""

from __future__ import annotations

from invoice_pipelines.documents.domain.letters import PdfaLetters
from invoice_pipelines.resources.messaging.letters import Letters, LetterWriter
from invoice_pipelines.resources.plain_settings import OfPlain


class PdfaLetterWriter(OfPlain, LetterWriter):
    """Letters as PDF/A-3b in the invoices' layout (documents/domain/letters.py)."""

    def letters(self) -> Letters:
        return PdfaLetters(max_pages=self.max_pages)
