"""The `letter_writer` resource: a letter (its lines of text and, where it asks for a transfer, the
bank transfer its EPC QR code carries) written as a PDF/A document.

An area that sends letters (the dunning letters of `overdue/`) says what they state and takes this
resource to write them; the documents area, which writes every PDF/A we make, provides the writer
(`documents/letters.py`, given to the definitions and the command line in `definitions.py`). So
the letter looks like our invoices and no area imports another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from dagster import ConfigurableResource
from pydantic import Field


class LetterError(ValueError):
    """The letter cannot be written as it is (the message says what and where)."""


@dataclass(frozen=True)
class Transfer:
    """A SEPA credit transfer the letter asks for: what its EPC QR code (GiroCode) carries."""

    beneficiary: str
    iban: str
    amount: Decimal
    reference: str
    bic: str | None = None


@dataclass(frozen=True)
class Letter:
    """What a letter states. `head`: the sender line, the recipient's address and the date;
    `title`: printed large below them (and the PDF's title after `author`); `body`: the rest. A
    line's cells are separated by tabs: the first at the left margin, further ones right-aligned
    in columns, as on our invoices. With a `transfer`, its QR code is drawn beside the body line
    that starts with 'IBAN:'."""

    author: str
    title: str
    head: tuple[str, ...]
    body: tuple[str, ...]
    language: str = "de"
    transfer: Transfer | None = None


@dataclass(frozen=True)
class WrittenLetter:
    pdf: bytes
    pages: int


class LetterWriter(ConfigurableResource):
    """Writes letters as PDF/A. This base says how it is called; the documents area's
    `PdfaLetterWriter` writes them."""

    max_pages: int = Field(
        default=2,
        ge=1,
        description="Pages a letter may take (a dunning letter takes one); a longer one is "
        "refused with LetterError instead of being sent.",
    )

    def write(self, letter: Letter, *, created: datetime | None = None) -> WrittenLetter:
        """The letter as a PDF/A file; `LetterError` when it cannot be laid out as it is."""
        raise NotImplementedError(
            f"{type(self).__name__} writes no letters: give the definitions' letter_writer "
            "(documents.letters.PdfaLetterWriter)"
        )
