"""The `letter_writer` resource: the Dagster face of a letter writer (`resources/messaging/letter_types.py`:
the letter, the plain `Letters` interface, LetterError). Dagster shows and configures its settings
and hands a run the plain writer that `letters()` builds, the object a command writes with too; an
asset or op takes it as `ResourceParam[Letters]`.

An area that sends letters (the dunning letters of `overdue/`) says what they state and takes this
resource to write them; the documents area, which writes every PDF/A we make, provides the writer
(`documents/domain/letter_writer.py` `PdfaLetterWriter`, whose `letters()` is `documents/domain/letters.py`
`PdfaLetters`, given to the runs in `definitions.py`). So the letter looks like our invoices and no
area imports another.
"""

from __future__ import annotations

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field

from invoice_pipelines.resources.messaging.letter_types import (  # noqa: F401 (the letter, for the areas)
    DEFAULT_MAX_PAGES,
    Letter,
    LetterError,
    Letters,
    Transfer,
    WrittenLetter,
)


class LetterWriter(ConfigurableResource):
    """The settings of the letter writer; a run gets the plain `Letters` they configure (Dagster's
    `create_resource`), never this object. This base says how it is configured; the documents
    area's `PdfaLetterWriter` makes the writer."""

    max_pages: int = Field(
        default=DEFAULT_MAX_PAGES,
        ge=1,
        description="Pages a letter may take (a dunning letter takes one); a longer one is "
        "refused with LetterError instead of being sent.",
    )

    def letters(self) -> Letters:
        """The plain writer these settings make."""
        raise NotImplementedError(
            f"{type(self).__name__} writes no letters: give the definitions' letter_writer "
            "(documents.letter_writer.PdfaLetterWriter)"
        )

    def create_resource(self, context: InitResourceContext) -> Letters:  # type: ignore[override]
        return self.letters()
