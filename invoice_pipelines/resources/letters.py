"""The `letter_writer` resource: the Dagster face of a letter writer (`resources/letter_types.py`:
the letter, the plain `Letters` interface, LetterError).

An area that sends letters (the dunning letters of `overdue/`) says what they state and takes this
resource to write them; the documents area, which writes every PDF/A we make, provides the writer
(`documents/letter_writer.py` `PdfaLetterWriter`, wrapping `documents/letters.py` `PdfaLetters`,
given to the runs in `definitions.py`). So the letter looks like our invoices and no area imports
another.
"""

from __future__ import annotations

from datetime import datetime

from dagster import ConfigurableResource
from pydantic import Field

from invoice_pipelines.resources.letter_types import (  # noqa: F401 (the letter, for the areas)
    DEFAULT_MAX_PAGES,
    Letter,
    LetterError,
    Letters,
    Transfer,
    WrittenLetter,
)


class LetterWriter(ConfigurableResource):
    """Writes letters as PDF/A. This base says how it is called; the documents area's
    `PdfaLetterWriter` writes them."""

    max_pages: int = Field(
        default=DEFAULT_MAX_PAGES,
        ge=1,
        description="Pages a letter may take (a dunning letter takes one); a longer one is "
        "refused with LetterError instead of being sent.",
    )

    def letters(self) -> Letters:
        """The plain writer this resource wraps."""
        raise NotImplementedError(
            f"{type(self).__name__} writes no letters: give the definitions' letter_writer "
            "(documents.letter_writer.PdfaLetterWriter)"
        )

    def write(self, letter: Letter, *, created: datetime | None = None) -> WrittenLetter:
        """The letter as a PDF/A file; `LetterError` when it cannot be laid out as it is."""
        return self.letters().write(letter, created=created)
