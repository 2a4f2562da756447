"""The visible invoice as a PDF/A-3b: DejaVu Sans embedded, the sRGB output intent, and for a
Factur-X invoice the CII XML as its associated file, written in one pass by `pdfa.py`.

The text is the invoice layout of `einvoice.layout` (the same lines our text extraction reads),
set in DejaVu Sans (cut to the glyphs each document uses and embedded: PDF/A allows no
unembedded font); the first cell of a line at the left margin, further cells right-aligned in
columns. A SEPA transfer gets an EPC QR code ("GiroCode") beside the payment block, drawn as
vector rectangles. A plain PDF invoice (`render_plain_pdf`, where no e-invoice applies) is the
same page with the plain layout and nothing embedded.

What the layout cannot show is refused with `RenderError` naming it: a character the font has
no glyph for, a line wider than the page. A letter (`letters.py`) is sanitised instead
(`drawable`): what it cannot draw is replaced, so a name never stops a letter.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from invoice_pipelines.core.invoice import Invoice
from invoice_pipelines.core.text import printable
from invoice_pipelines.documents.domain import pdfa
from invoice_pipelines.documents.domain.qr import QrCode, make_qr
from invoice_pipelines.einvoice.layout import render_invoice_text, render_plain_text
from invoice_pipelines.settings import env

PAGE_WIDTH, PAGE_HEIGHT = 595.28, 841.89  # A4 in points
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56.0, 56.0, 56.0, 56.0
FONT_SIZE, LEADING, TITLE_SIZE = 9.5, 13.0, 15.0
COLUMN_STEP = 70.0
QR_SIZE = 80.0
RIGHT_EDGE = PAGE_WIDTH - MARGIN_RIGHT


class RenderError(ValueError):
    """The invoice cannot be laid out as it is (the message says what and where)."""


def font_dir() -> Path:
    return Path(env("INVOICE_PIPELINES_FONT_DIR"))


# The scripts an invoice may be written in: Latin with every European extension, Greek and
# Cyrillic, punctuation, currency and letterlike symbols. DejaVu covers far more (6,000 glyphs).
SCRIPTS = (
    (0x0020, 0x024F),
    (0x0370, 0x03FF),
    (0x0400, 0x04FF),
    (0x1E00, 0x1EFF),
    (0x2000, 0x206F),
    (0x20A0, 0x20CF),
    (0x2100, 0x214F),
)


@lru_cache(maxsize=1)
def invoice_font() -> pdfa.Font:
    """This process's DejaVu Sans, read once and limited to SCRIPTS (one face: the title is a
    larger size of the same face, not bold). It says which characters an invoice may use; each
    PDF embeds the glyphs it shows (`pdfa.Font.program`)."""
    source = font_dir() / "DejaVuSans.ttf"
    if not source.is_file():
        raise RenderError(
            f"font {source} not found (Debian package fonts-dejavu-core, or set "
            "INVOICE_PIPELINES_FONT_DIR)"
        )
    return pdfa.Font(source, characters=SCRIPTS)


def check_glyphs(lines: list[str]) -> None:
    """RenderError for a character of the lines that the font does not have."""
    glyphs = invoice_font().gids
    for line in lines:
        for char in dict.fromkeys(line):
            if char not in glyphs and char != "\t":  # a tab separates the cells of a line
                raise RenderError(
                    f"the character {char!r} (U+{ord(char):04X}) in {line.strip()[:60]!r} is "
                    "not in the invoice font"
                )


def drawable(text: str, placeholder: str = "?") -> str:
    """`text` as a letter can set it: invisible characters (bidi overrides, zero-width) removed,
    control characters but the cells' tab as spaces, each character the font has no glyph for
    as `placeholder`. A letter then never fails for a name it cannot draw (an invoice still does:
    its page must say what its XML says, `check_glyphs`)."""
    cells = [printable(cell) for cell in text.split("\t")]
    glyphs = invoice_font().gids
    return "\t".join(
        "".join(char if char in glyphs else placeholder for char in cell) for cell in cells
    )


def epc_payload(name: str, iban: str, amount: Decimal, reference: str, bic: str | None) -> str:
    """The EPC069-12 (version 002) text of a SEPA credit transfer: service tag, version,
    character set (1 = UTF-8), SCT, BIC (optional inside the EEA), name, IBAN, amount, no purpose
    code, no structured reference, the unstructured remittance text."""
    if not Decimal("0.01") <= amount <= Decimal("999999999.99"):
        raise RenderError(f"the amount {amount} cannot be paid with an EPC QR code")
    fields = [
        "BCD",
        "002",
        "1",
        "SCT",
        (bic or "").strip(),
        " ".join(name.split())[:70],
        iban.replace(" ", "").upper(),
        f"EUR{amount.quantize(Decimal('0.01'))}",
        "",
        "",
        " ".join(reference.split())[:140],
    ]
    return "\n".join(fields)


def epc_qr(name: str, iban: str, amount: Decimal, reference: str, bic: str | None) -> QrCode:
    """The EPC QR code ("GiroCode"): UTF-8 bytes, error level M as the standard requires; one
    fixed mask instead of scoring all eight (any mask reads the same; scoring cost 9 ms per
    invoice). `documents/domain/qr.py` draws the same symbol segno did, in a tenth of the time."""
    return make_qr(epc_payload(name, iban, amount, reference, bic).encode("utf-8"))


def _draw_qr(page: pdfa.Page, code: QrCode, x: float, y: float, size: float) -> None:
    """The code as filled rectangles (vector: sharp at any zoom, no image to embed), one per run
    of dark modules in a row, with the quiet zone the standard asks for."""
    matrix = code.matrix
    step = size / (len(matrix) + 8)  # 4 modules of quiet zone on each side
    runs = [
        (row, match.start(), match.end() - match.start())
        for row, modules in enumerate(matrix)
        for match in _DARK.finditer(bytes(modules))
    ]
    page.modules(x + 4 * step, y + 4 * step, step, runs)


_DARK = re.compile(b"\x01+")


def render_pdf(
    invoice: Invoice,
    *,
    language: str = "de",
    payment_terms: str | None = None,
    service_date=None,
    qr=None,
    created: datetime | None = None,
    xml: bytes | None = None,
    conformance: str = "EN 16931",
) -> bytes:
    """The invoice as a PDF/A-3b; with `xml`, a Factur-X invoice: the CII embedded as
    factur-x.xml (AFRelationship Data) and the Factur-X XMP at `conformance`."""
    lines = render_invoice_text(
        invoice,
        language=language,  # type: ignore[arg-type]
        payment_terms=payment_terms,
        service_date=service_date,
    )
    return _draw(
        invoice, lines, language=language, qr=qr, created=created, xml=xml, level=conformance
    )


def render_plain_pdf(
    invoice: Invoice,
    *,
    language: str = "en",
    seller_country: str | None = None,
    seller_tax_number: str | None = None,
    payment_terms: str | None = None,
    service_date=None,
    qr=None,
    created: datetime | None = None,
) -> bytes:
    """A plain PDF invoice (still PDF/A-3b, nothing embedded): the page where an EN 16931
    e-invoice does not apply, in the seller's tax vocabulary (`layout.render_plain_text`)."""
    lines = render_plain_text(
        invoice,
        language=language,  # type: ignore[arg-type]
        seller_country=seller_country,
        seller_tax_number=seller_tax_number,
        payment_terms=payment_terms,
        service_date=service_date,
    )
    return _draw(invoice, lines, language=language, qr=qr, created=created)


TITLES = ("Rechnung", "Rechnungskorrektur", "Invoice", "Credit note")
# the document's kind as its page is titled (einvoice/layout.py), for its metadata too: a credit
# note is a "Rechnungskorrektur" / "Credit note" there, never a "Rechnung"
KINDS = {
    ("de", False): "Rechnung",
    ("de", True): "Rechnungskorrektur",
    ("en", False): "Invoice",
    ("en", True): "Credit note",
}


def document_title(invoice: Invoice, language: str) -> str:
    """`Seller: Rechnungskorrektur GS-2026-000001`: the title and subject in the PDF's metadata."""
    kind = KINDS[("en" if language == "en" else "de", invoice.type_code == "381")]
    return f"{invoice.seller_name or ''}: {kind} {invoice.number}"


def _draw(
    invoice: Invoice,
    lines: list[str],
    *,
    language: str,
    qr,
    created,
    xml: bytes | None = None,
    level: str = "EN 16931",
) -> bytes:
    check_glyphs(lines)
    font = invoice_font()
    page = pdfa.Page(font, PAGE_HEIGHT)
    pages = [page]
    y = MARGIN_TOP
    title_index = next((i for i, line in enumerate(lines) if line.strip() in TITLES), None)
    payment_index = next((i for i, line in enumerate(lines) if line.startswith("IBAN:")), None)
    for index, line in enumerate(lines):
        if y > PAGE_HEIGHT - MARGIN_BOTTOM - LEADING:
            page = pdfa.Page(font, PAGE_HEIGHT)
            pages.append(page)
            y = MARGIN_TOP
        if index == title_index:
            page.text(MARGIN_LEFT, y + TITLE_SIZE, line.strip(), TITLE_SIZE)
            y += TITLE_SIZE + 6
            continue
        _write_cells(page, line, y + FONT_SIZE)
        if index == payment_index and qr is not None:
            _draw_qr(page, qr, RIGHT_EDGE - QR_SIZE, y - 2 * LEADING, QR_SIZE)
        y += LEADING
    seller = invoice.seller_name or ""
    title = document_title(invoice, language)
    meta = pdfa.Metadata(
        title=title,
        author=seller,
        subject=title,
        keywords="Factur-X, ZUGFeRD, EN 16931" if xml is not None else "",
        lang="de-DE" if language == "de" else "en-GB",
        created=created,
        facturx=("INVOICE", level) if xml is not None else None,
    )
    attachment = None
    if xml is not None:
        attachment = pdfa.Attachment("factur-x.xml", xml, description="Factur-X XML file")
    return pdfa.write_pdf(
        font, pages, width=PAGE_WIDTH, height=PAGE_HEIGHT, meta=meta, attachment=attachment
    )


def _write_cells(page: pdfa.Page, line: str, baseline: float) -> None:
    width = page.font.string_width
    cells = line.split("\t")
    first = cells[0]
    if MARGIN_LEFT + width(first, FONT_SIZE) > RIGHT_EDGE + 0.5:
        raise RenderError(f"the line {first.strip()[:60]!r} is too long for the page")
    if first:
        page.text(MARGIN_LEFT, baseline, first, FONT_SIZE)
    rest = cells[1:]
    for position, cell in enumerate(rest):
        if not cell:
            continue
        stop = RIGHT_EDGE - COLUMN_STEP * (len(rest) - 1 - position)
        page.text(stop - width(cell, FONT_SIZE), baseline, cell, FONT_SIZE)
