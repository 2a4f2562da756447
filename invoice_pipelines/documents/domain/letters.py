"""Letters as PDF/A-3b, on the page our invoices use: `PdfaLetters`, the plain writer a command
takes and the `letter_writer` resource hands the runs (`documents/domain/letter_writer.py`; the
letter's content and the interface: `resources/messaging/letter_types.py`). No Dagster here.

The same font, margins, columns and EPC QR code ("GiroCode") as an invoice (`render.py`), written
in one pass by `pdfa.py`; the title in the invoice's title size. A letter goes on to further pages
when it is long. Every text is set as `render.drawable` gives it: no invisible or control
characters (a tab only between cells), `?` for a character the font has no glyph for; a first
cell wider than the page is cut, ending in "…". So a customer's name never stops a letter; what
still cannot be shown is refused with `LetterError` naming it (an amount no QR code can ask for,
more pages than `max_pages`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from invoice_pipelines.documents.domain import pdfa
from invoice_pipelines.documents.domain.render import (
    FONT_SIZE,
    LEADING,
    MARGIN_BOTTOM,
    MARGIN_LEFT,
    MARGIN_TOP,
    PAGE_HEIGHT,
    PAGE_WIDTH,
    QR_SIZE,
    RIGHT_EDGE,
    TITLE_SIZE,
    RenderError,
    _draw_qr,
    _write_cells,
    drawable,
    epc_qr,
    invoice_font,
)
from invoice_pipelines.resources.messaging.letter_types import (
    DEFAULT_MAX_PAGES,
    Letter,
    LetterError,
    WrittenLetter,
)
from invoice_pipelines.settings import NOW, Reading


@dataclass(frozen=True)
class PdfaLetters:
    """Writes letters as PDF/A-3b in the invoices' layout (see the module docstring); at most
    `max_pages` pages each."""

    max_pages: int = field(
        default=DEFAULT_MAX_PAGES,
        metadata={
            "description": "Pages a letter may take (a dunning letter takes one); a longer one is "
            "refused with LetterError instead of being sent.",
            "ge": 1,
        },
    )

    def write(self, letter: Letter, *, created: datetime | None = None) -> WrittenLetter:
        try:
            written = _write(letter, created)
        except RenderError as exc:
            raise LetterError(str(exc)) from None
        if written.pages > self.max_pages:
            raise LetterError(
                f"the letter takes {written.pages} pages, more than the {self.max_pages} a "
                "letter may take (letter_writer max_pages)"
            )
        return written


ELLIPSIS = "…"


def _fitted(line: str) -> str:
    """The line as it can be set: `drawable`, its first cell cut to the page's width."""
    line = drawable(line)
    first, tab, rest = line.partition("\t")
    width = invoice_font().string_width

    def fits(text: str) -> bool:
        return MARGIN_LEFT + width(text, FONT_SIZE) <= RIGHT_EDGE

    if fits(first):
        return line
    low, high = 0, len(first)  # the longest start of the cell that fits with the ellipsis
    while low < high:
        middle = (low + high + 1) // 2
        if fits(first[:middle] + ELLIPSIS):
            low = middle
        else:
            high = middle - 1
    return first[:low].rstrip() + ELLIPSIS + tab + rest


def _write(letter: Letter, created: datetime | None) -> WrittenLetter:
    letter = replace(
        letter,
        author=drawable(letter.author).replace("\t", " "),
        title=drawable(letter.title).replace("\t", " "),
        head=tuple(_fitted(line) for line in letter.head),
        body=tuple(_fitted(line) for line in letter.body),
    )
    qr = None
    if letter.transfer is not None:
        t = letter.transfer
        qr = epc_qr(t.beneficiary, t.iban, t.amount, t.reference, t.bic)
    font = invoice_font()
    pages = [pdfa.Page(font, PAGE_HEIGHT)]
    y = MARGIN_TOP

    def room(height: float) -> None:
        nonlocal y
        if y + height > PAGE_HEIGHT - MARGIN_BOTTOM:
            pages.append(pdfa.Page(font, PAGE_HEIGHT))
            y = MARGIN_TOP

    for line in letter.head:
        room(LEADING)
        _write_cells(pages[-1], line, y + FONT_SIZE)
        y += LEADING
    room(TITLE_SIZE + 6)
    pages[-1].text(MARGIN_LEFT, y + TITLE_SIZE, letter.title, TITLE_SIZE)
    y += TITLE_SIZE + 6
    for line in letter.body:
        if qr is not None and line.startswith("IBAN:"):
            # the code reaches two lines above the IBAN and about four below: on one page
            room(QR_SIZE)
            _draw_qr(pages[-1], qr, RIGHT_EDGE - QR_SIZE, y - 2 * LEADING, QR_SIZE)
            qr = None
        room(LEADING)
        _write_cells(pages[-1], line, y + FONT_SIZE)
        y += LEADING
    title = f"{letter.author}: {letter.title}"
    meta = pdfa.Metadata(
        title=title,
        author=letter.author,
        subject=title,
        lang="en-GB" if letter.language == "en" else "de-DE",
        created=created,
    )
    pdf = pdfa.write_pdf(font, pages, width=PAGE_WIDTH, height=PAGE_HEIGHT, meta=meta)
    return WrittenLetter(pdf=pdf, pages=len(pages))


def pdfa_letters(read: Reading = NOW) -> PdfaLetters:
    """The one builder of the `letter_writer` resource (documents/area.py): a command writes with
    it, a run's resource wraps it (`documents.letter_writer.PdfaLetterWriter.of`)."""
    return PdfaLetters()
