"""`PdfaLetterWriter`: the `letter_writer` resource of the runs (definitions.py), derived from
`documents/domain/letters.py` `PdfaLetters`, whose `max_pages` Dagster shows and configures: a run
gets the plain `PdfaLetters` it makes, the `Letters` of `resources/messaging/letter_types.py`."""

from __future__ import annotations

from invoice_pipelines.documents.domain.letters import PdfaLetters
from invoice_pipelines.resources.plain_settings import dagster_resource

PdfaLetterWriter = dagster_resource(
    PdfaLetters,
    "PdfaLetterWriter",
    doc="Letters as PDF/A-3b in the invoices' layout (documents/domain/letters.py); a run gets "
    "the plain `PdfaLetters` these settings configure, never this object.",
    made_by="letters",
)
