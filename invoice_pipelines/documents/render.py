"""The visible invoice as a PDF/A-3b: fpdf2 with embedded DejaVu fonts and an sRGB output intent.

The text is the invoice layout of `einvoice.layout` (the same lines our text extraction reads),
set in DejaVu Sans (subset and embedded: PDF/A allows no unembedded font); the first cell of a
line at the left margin, further cells right-aligned in columns. A SEPA transfer gets an EPC
QR code ("GiroCode") beside the payment block. The output intent is the sRGB profile fpdf2
ships; fpdf2's PDF/A-3B mode writes the XMP identification (`pdfaid:part=3`, conformance B) and
the document ID. `factur-x` then embeds the XML without breaking any of that. A plain PDF
invoice (`render_plain_pdf`, where no e-invoice applies) is the same page with the plain layout
and nothing embedded.

What the layout cannot show is refused with `RenderError` naming it: a character the font has
no glyph for, a line wider than the page.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
import threading
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path

import segno
from fpdf import FPDF
from fpdf.enums import DocumentCompliance, OutputIntentSubType
from fpdf.output import PDFICCProfile

from invoice_pipelines.core.invoice import Invoice
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
# What nearly every invoice here is written with: ASCII, Latin-1 (German, French, Spanish,
# Scandinavian letters), the euro sign, typographic quotes and dashes.
COMMON = frozenset(
    [*range(0x20, 0x7F), *range(0xA0, 0x100)]
    + [0x20AC, 0x2013, 0x2014, 0x2018, 0x2019, 0x201A, 0x201C, 0x201D, 0x201E, 0x2022, 0x2026]
)


def _cut(font_path: Path, unicodes, target: Path) -> Path:
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont(str(font_path))
    options = subset.Options()
    options.layout_features = []
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.drop_tables += ["FFTM"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(unicodes))
    subsetter.subset(font)
    partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
    font.save(str(partial))
    os.replace(partial, target)  # whole or not at all, should two threads cut the same set
    return target


@lru_cache(maxsize=1)
def _font_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="ip-fonts-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


@lru_cache(maxsize=1)
def _fonts() -> tuple[Path, ...]:
    """This process's copy of DejaVu Sans cut to SCRIPTS (one face: the title is a larger size of
    the same face, not bold). It says which characters an invoice may use."""
    source = font_dir() / "DejaVuSans.ttf"
    if not source.is_file():
        raise RenderError(
            f"font {source} not found (Debian package fonts-dejavu-core, or set "
            "INVOICE_PIPELINES_FONT_DIR)"
        )
    unicodes = [code for first, last in SCRIPTS for code in range(first, last + 1)]
    return (_cut(source, unicodes, _font_folder() / source.name),)


@lru_cache(maxsize=256)
def font_for(extra: frozenset[int]) -> Path:
    """The font file a document with these characters beyond COMMON loads: COMMON plus them.

    Every document parses the font it uses and fpdf2 subsets it again when it writes the PDF;
    both cost with the glyphs the font holds (1,471 in the SCRIPTS cut: 12 ms per document,
    240 in this one: 2 ms). The cut per set of extra characters is made once per process (a
    batch's invoices mostly share one: none)."""
    name = "common" if not extra else "extra-" + "-".join(f"{c:x}" for c in sorted(extra))
    if len(name) > 120:  # a file name stays short; the set still decides the content
        name = "extra-" + hashlib.sha256(name.encode()).hexdigest()[:32]
    return _cut(_fonts()[0], COMMON | extra, _font_folder() / f"{name}.ttf")


@lru_cache(maxsize=1)
def _glyphs() -> frozenset[int]:
    from fontTools.ttLib import TTFont

    covered = None
    for path in _fonts():
        with TTFont(str(path), lazy=True) as font:
            cmap = set(font.getBestCmap())
        covered = cmap if covered is None else covered & cmap
    return frozenset(covered or ())


@lru_cache(maxsize=1)
def _srgb_profile() -> bytes:
    return (resources.files("fpdf") / "data" / "color_profiles" / "sRGB2014.icc").read_bytes()


def check_glyphs(lines: list[str]) -> frozenset[int]:
    """The characters of the lines beyond COMMON; RenderError for one the font does not have."""
    glyphs = _glyphs()
    extra = set()
    for line in lines:
        for char in dict.fromkeys(line):
            if char in "\t\f":
                continue
            code = ord(char)
            if code not in glyphs:
                raise RenderError(
                    f"the character {char!r} (U+{code:04X}) in {line.strip()[:60]!r} is "
                    "not in the invoice font"
                )
            if code not in COMMON:
                extra.add(code)
    return frozenset(extra)


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


def epc_qr(name: str, iban: str, amount: Decimal, reference: str, bic: str | None):
    """The EPC QR code ("GiroCode"): error level M as the standard requires; one fixed mask
    instead of scoring all eight (any mask reads the same; scoring cost 9 ms per invoice)."""
    return segno.make_qr(
        epc_payload(name, iban, amount, reference, bic),
        error="m",
        mask=2,
        boost_error=False,
        encoding="utf-8",
    )


def _draw_qr(pdf: FPDF, code, x: float, y: float, size: float) -> None:
    """The code as filled rectangles (vector: sharp at any zoom, no image to embed), one per run
    of dark modules in a row, with the quiet zone the standard asks for."""
    matrix = [list(row) for row in code.matrix]
    modules = len(matrix) + 8  # 4 modules of quiet zone on each side
    step = size / modules
    pdf.set_fill_color(0, 0, 0)
    for row_index, row in enumerate(matrix):
        column = 0
        while column < len(row):
            if not row[column]:
                column += 1
                continue
            start = column
            while column < len(row) and row[column]:
                column += 1
            pdf.rect(
                x + (start + 4) * step,
                y + (row_index + 4) * step,
                (column - start) * step,
                step,
                style="F",
            )


class _Page(FPDF):
    def __init__(self, language: str, extra: frozenset[int] = frozenset()) -> None:
        super().__init__(unit="pt", format="A4", enforce_compliance=DocumentCompliance.PDFA_3B)
        self.add_font("DejaVu", "", str(font_for(extra)))
        for font in self.fonts.values():
            # the glyphs keep the bounding boxes they have in DejaVu; recomputing them when
            # fpdf2 saves the subset decoded and re-encoded every outline (3 ms per document)
            if hasattr(font, "ttfont"):
                font.ttfont.recalcBBoxes = False
        self.add_output_intent(
            OutputIntentSubType.PDFA,
            output_condition_identifier="sRGB IEC61966-2.1",
            output_condition="sRGB",
            registry_name="http://www.color.org",
            dest_output_profile=PDFICCProfile(contents=_srgb_profile(), n=3, alternate="DeviceRGB"),
            info="sRGB IEC61966-2.1",
        )
        self.set_lang("de-DE" if language == "de" else "en-GB")
        self.set_auto_page_break(False)
        self.set_margins(MARGIN_LEFT, MARGIN_TOP, MARGIN_RIGHT)


def render_pdf(
    invoice: Invoice,
    *,
    language: str = "de",
    payment_terms: str | None = None,
    service_date=None,
    qr=None,
    created: datetime | None = None,
) -> bytes:
    """The invoice as a PDF/A-3b (without the XML; `facturx.embed` adds it)."""
    lines = render_invoice_text(
        invoice,
        language=language,  # type: ignore[arg-type]
        payment_terms=payment_terms,
        service_date=service_date,
    )
    return _draw(invoice, lines, language=language, qr=qr, created=created)


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


def _draw(invoice: Invoice, lines: list[str], *, language: str, qr, created) -> bytes:
    pdf = _Page(language, check_glyphs(lines))
    pdf.set_title(f"{invoice.number}")
    pdf.set_author(invoice.seller_name or "")
    pdf.set_creator("invoice_pipelines")
    if created is not None:
        pdf.set_creation_date(created)
    pdf.add_page()
    y = MARGIN_TOP
    title_index = next(
        (
            i
            for i, line in enumerate(lines)
            if line.strip() in ("Rechnung", "Gutschrift", "Invoice", "Credit note")
        ),
        None,
    )
    payment_index = next((i for i, line in enumerate(lines) if line.startswith("IBAN:")), None)
    for index, line in enumerate(lines):
        if y > PAGE_HEIGHT - MARGIN_BOTTOM - LEADING:
            pdf.add_page()
            y = MARGIN_TOP
        if index == title_index:
            pdf.set_font("DejaVu", "", TITLE_SIZE)
            pdf.text(MARGIN_LEFT, y + TITLE_SIZE, line.strip())
            y += TITLE_SIZE + 6
            continue
        pdf.set_font("DejaVu", "", FONT_SIZE)
        _write_cells(pdf, line, y + FONT_SIZE)
        if index == payment_index and qr is not None:
            _draw_qr(pdf, qr, RIGHT_EDGE - QR_SIZE, y - 2 * LEADING, QR_SIZE)
        y += LEADING
    return bytes(pdf.output())


def _write_cells(pdf: FPDF, line: str, baseline: float) -> None:
    cells = line.split("\t")
    first = cells[0]
    width = pdf.get_string_width(first)
    if MARGIN_LEFT + width > RIGHT_EDGE + 0.5:
        raise RenderError(f"the line {first.strip()[:60]!r} is too long for the page")
    if first:
        pdf.text(MARGIN_LEFT, baseline, first)
    rest = cells[1:]
    for position, cell in enumerate(rest):
        if not cell:
            continue
        stop = RIGHT_EDGE - COLUMN_STEP * (len(rest) - 1 - position)
        pdf.text(stop - pdf.get_string_width(cell), baseline, cell)
