"""A letter (its lines of text and, where it asks for a transfer, the bank transfer its EPC QR code
carries) and what writes it as a PDF/A document: the plain types, without Dagster.

An area that sends letters (the dunning letters of `overdue/`) says what they state and takes a
`Letters` writer; the documents area, which writes every PDF/A we make, provides it
(`documents/domain/letters.py` `PdfaLetters`). A run gets it from the `letter_writer` resource
(`documents/domain/letter_writer.py`, derived from `PdfaLetters`) and a command alike, the plain object: so the letter looks like
our invoices, no area imports another, and a command that writes letters imports no Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

# pages a letter may take (a dunning letter takes one); a longer one is refused with LetterError
DEFAULT_MAX_PAGES = 2


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


class Letters(Protocol):
    """Writes letters: the `letter_writer` resource of a run and the plain writer of a command."""

    def write(self, letter: Letter, *, created: datetime | None = None) -> WrittenLetter:
        """The letter as a PDF/A file; `LetterError` when it cannot be laid out as it is."""
        ...
