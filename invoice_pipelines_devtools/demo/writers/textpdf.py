"""A minimal PDF 1.4 writer with a real text layer: Helvetica, WinAnsiEncoding, A4, several pages.

Written by hand rather than with a PDF library because we need very little (lines of text, simple
right-aligned columns) and want byte-identical output for identical input, which makes demo and
test documents reproducible. No timestamps are written for the same reason.

Layout rules for the lines passed in:

* a plain line is written at the left margin;
* a line with tab characters is a row of cells: the first cell starts at the left margin, every
  further cell is right-aligned at a column stop; the last stop is the right margin and the
  others lie `COLUMN_STEP` points apart to its left (so "\\tNet\\t1.234,56 EUR" puts the label
  and the amount in the two right-most columns);
* an empty line is vertical space; a form feed ("\\f") starts a new page.

Characters outside Windows-1252 are written as "?", because the standard 14 fonts with
WinAnsiEncoding have no glyphs for them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

PAGE_WIDTH = 595.28  # A4 in points
PAGE_HEIGHT = 841.89
MARGIN_LEFT = 56.0  # about 2 cm
MARGIN_RIGHT = 56.0
MARGIN_TOP = 64.0
MARGIN_BOTTOM = 64.0
FONT_SIZE = 10.0
LEADING = 14.0
TITLE_SIZE = 16.0
COLUMN_STEP = 72.0
RIGHT_EDGE = PAGE_WIDTH - MARGIN_RIGHT

# Helvetica advance widths (1/1000 em) for the characters that appear in right-aligned cells:
# amounts, units, percentages. Other characters use the average width, which is close enough
# for short labels; only right-aligned cells need widths at all.
_HELVETICA_WIDTHS: dict[str, int] = {
    **dict.fromkeys("0123456789", 556),
    **dict.fromkeys(" ,.:;!|/", 278),
    **dict.fromkeys("ijl", 222),
    **dict.fromkeys("ftI", 278),
    **dict.fromkeys("-()r", 333),
    **dict.fromkeys("abdeghnopqu€äöü", 556),
    **dict.fromkeys("cksvxyz", 500),
    **dict.fromkeys("mM", 833),
    **dict.fromkeys("ABEKPSVXYÄ", 667),
    **dict.fromkeys("CDHNRUÜ", 722),
    **dict.fromkeys("GOQÖ", 778),
    **dict.fromkeys("FTZ", 611),
    "%": 889,
    "w": 722,
    "W": 944,
    "L": 556,
    "J": 500,
    "ß": 611,
    "+": 584,
    "&": 667,
}
_AVERAGE_WIDTH = 556


def text_width(text: str, size: float = FONT_SIZE) -> float:
    """Approximate width of a Helvetica string in points."""
    return sum(_HELVETICA_WIDTHS.get(ch, _AVERAGE_WIDTH) for ch in text) * size / 1000


def _literal(text: str) -> bytes:
    """A PDF literal string in WinAnsi: parentheses and backslashes escaped, non-ASCII as octal."""
    out = bytearray(b"(")
    for byte in text.encode("cp1252", errors="replace"):
        if byte in (0x28, 0x29, 0x5C):  # ( ) \
            out += b"\\" + bytes([byte])
        elif 0x20 <= byte < 0x7F:
            out.append(byte)
        else:
            out += b"\\%03o" % byte
    out += b")"
    return bytes(out)


def _show(font: str, size: float, x: float, y: float, text: str) -> bytes:
    return b"BT /%s %.1f Tf %.2f %.2f Td %s Tj ET\n" % (
        font.encode(),
        size,
        x,
        y,
        _literal(text),
    )


def _row(line: str, y: float) -> bytes:
    cells = line.split("\t")
    out = bytearray()
    if cells[0].strip():
        out += _show("F1", FONT_SIZE, MARGIN_LEFT, y, cells[0].rstrip())
    rest = cells[1:]
    for position, cell in enumerate(rest):
        cell = cell.strip()
        if not cell:
            continue
        right = RIGHT_EDGE - (len(rest) - 1 - position) * COLUMN_STEP
        out += _show("F1", FONT_SIZE, max(MARGIN_LEFT, right - text_width(cell)), y, cell)
    return bytes(out)


def _paginate(lines: Sequence[str], title: str | None) -> list[list[tuple[str, str]]]:
    """Split into pages of (kind, text); the title takes room on the first page only."""
    per_page = int((PAGE_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM) // LEADING)
    pages: list[list[tuple[str, str]]] = [[]]
    if title:
        pages[0] += [("title", title), ("text", ""), ("text", "")]
    for raw in lines:
        for part_index, part in enumerate(raw.split("\f")):
            if part_index and pages[-1]:
                pages.append([])
            if part_index and not part:
                continue
            for line in part.splitlines() or [""]:
                if len(pages[-1]) >= per_page:
                    pages.append([])
                pages[-1].append(("text", line))
    while len(pages) > 1 and not pages[-1]:
        pages.pop()  # a trailing form feed must not leave a blank page
    return pages


def _content(page: list[tuple[str, str]], number: int, count: int) -> bytes:
    out = bytearray()
    y = PAGE_HEIGHT - MARGIN_TOP
    for kind, text in page:
        if kind == "title":
            out += _show("F2", TITLE_SIZE, MARGIN_LEFT, y, text)
        elif text.strip():
            out += _row(text, y)
        y -= LEADING
    if count > 1:
        footer = f"Seite {number} von {count}"
        out += _show("F1", 8.0, RIGHT_EDGE - text_width(footer, 8.0), MARGIN_BOTTOM / 2, footer)
    return bytes(out)


def _pdf_text_string(text: str) -> bytes:
    # Document information strings may hold any Unicode as UTF-16BE with a byte order mark.
    return b"<" + ("\ufeff" + text).encode("utf-16-be").hex().upper().encode() + b">"


def write_text_pdf(lines: list[str], *, title: str | None = None) -> bytes:
    """A PDF 1.4 whose text layer holds `lines` (see the module docstring for tabs and pages).

    `title` is printed in bold on the first page and stored as the document title. The output
    depends only on the input: no dates, and the file ID is a hash of the content.
    """
    pages = _paginate(lines, title)
    # Object numbers: 1 catalog, 2 page tree, 3 Helvetica, 4 Helvetica-Bold, 5 info,
    # then a page object and its content stream per page.
    objects: dict[int, bytes] = {
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        4: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    }
    kids = []
    for index, page in enumerate(pages):
        page_number, content_number = 6 + 2 * index, 7 + 2 * index
        kids.append(b"%d 0 R" % page_number)
        stream = _content(page, index + 1, len(pages))
        objects[page_number] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] "
            b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents %d 0 R >>"
            % (PAGE_WIDTH, PAGE_HEIGHT, content_number)
        )
        objects[content_number] = (
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"endstream"
        )
    objects[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(kids))
    info = b"<< /Producer (invoice_pipelines textpdf)"
    if title:
        info += b" /Title " + _pdf_text_string(title)
    objects[5] = info + b" >>"

    # The binary comment tells transfer tools the file is binary (PDF 1.4, section 3.4.1).
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref_at = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += b"%010d 00000 n \n" % offsets[number]
    file_id = hashlib.md5(bytes(out), usedforsecurity=False).hexdigest().upper().encode()
    out += (
        b"trailer\n<< /Size %d /Root 1 0 R /Info 5 0 R /ID [<%s> <%s>] >>\n"
        % (size, file_id, file_id)
        + b"startxref\n%d\n%%%%EOF\n" % xref_at
    )
    return bytes(out)
