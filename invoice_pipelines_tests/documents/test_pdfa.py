"""The PDF/A-3b files documents/domain/pdfa.py writes, checked the way a PDF/A validator looks at them:
the embedded font is a TrueType program whose advances are the widths the PDF states, the Info
dictionary and the XMP say the same, every page's text reads back, long invoices go on to further
pages, and documents showing the same glyphs share one cut of the font."""

from __future__ import annotations

import io
import re
import zlib
from datetime import UTC, datetime
from decimal import Decimal

import pypdf
from fontTools.ttLib import TTFont

from invoice_pipelines.documents.domain import pdfa
from invoice_pipelines.documents.domain.build import build_document
from invoice_pipelines.documents.domain.render import invoice_font, render_pdf
from invoice_pipelines_tests.documents.test_build import make_invoice, source

D = Decimal


def _font_objects(reader: pypdf.PdfReader):
    font = reader.pages[0]["/Resources"]["/Font"]["/F1"].get_object()
    cid_font = font["/DescendantFonts"][0].get_object()
    descriptor = cid_font["/FontDescriptor"].get_object()
    return font, cid_font, descriptor


def _widths(cid_font) -> dict[int, int]:
    widths, w = {}, list(cid_font["/W"])
    while w:
        first, run = int(w.pop(0)), w.pop(0)
        for offset, width in enumerate(run):
            widths[first + offset] = int(width)
    return widths


def test_the_embedded_font_is_a_truetype_program_with_the_widths_the_pdf_states():
    invoice = make_invoice(
        [
            ("Übergröße Ωλ Ärmel", D("1"), D("10"), "S", D("19")),
            ("Käse", D("2"), D("3"), "S", D("7")),
        ]
    )
    built = build_document(source(invoice))
    assert built.ok, built.errors
    reader = pypdf.PdfReader(io.BytesIO(built.pdf))
    font, cid_font, descriptor = _font_objects(reader)
    assert font["/Subtype"] == "/Type0" and font["/Encoding"] == "/Identity-H"
    assert cid_font["/Subtype"] == "/CIDFontType2"
    assert re.fullmatch(r"/[A-Z]{6}\+DejaVuSans", str(font["/BaseFont"]))
    program = TTFont(io.BytesIO(descriptor["/FontFile2"].get_object().get_data()))
    assert program["maxp"].numGlyphs == len(program.getGlyphOrder())
    gid_map = cid_font["/CIDToGIDMap"].get_object().get_data()
    units = program["head"].unitsPerEm
    order = program.getGlyphOrder()
    widths = _widths(cid_font)
    assert widths
    for cid, width in widths.items():
        gid = int.from_bytes(gid_map[2 * cid : 2 * cid + 2], "big")
        assert (gid == 0) == (cid == 0) and gid < len(order)  # .notdef is glyph 0 and only it
        advance = program["hmtx"][order[gid]][0]
        assert abs(width - advance * 1000 / units) <= 1, cid  # what PDF/A validators check
        program["glyf"][order[gid]].getCoordinates(program["glyf"])  # outlines (and components)
    # one cmap subtable, Windows Unicode (a symbolic TrueType program in PDF/A has exactly one)
    [cmap] = program["cmap"].tables
    assert (cmap.platformID, cmap.platEncID) == (3, 1)
    for char in "Übergröße Ωλ Ärmel Käse":
        cid = int(invoice_font().hex[char], 16)  # the CID the content streams show it with
        gid = int.from_bytes(gid_map[2 * cid : 2 * cid + 2], "big")
        assert cmap.cmap[ord(char)] == order[gid]
    text = reader.pages[0].extract_text()
    assert "Übergröße Ωλ Ärmel" in text and "Käse" in text


def test_info_and_xmp_say_the_same_and_the_file_is_pdfa_3b():
    created = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    invoice = make_invoice([("Bohrer (8 mm)", D("3"), D("24.90"), "S", D("19"))])
    built = build_document(source(invoice), created=created)
    assert built.ok, built.errors
    data = built.pdf
    assert data.startswith(b"%PDF-1.7\n%") and all(b > 127 for b in data[10:14])
    assert data.rstrip().endswith(b"%%EOF")
    reader = pypdf.PdfReader(io.BytesIO(data), strict=True)
    info = reader.metadata
    xmp = reader.trailer["/Root"]["/Metadata"].get_object()
    assert "/Filter" not in xmp  # the XMP stays readable without decoding
    text = xmp.get_data().decode("utf-8")
    title = "Müller Werkzeugbau GmbH: Rechnung RE-2026-000042"
    assert info["/Title"] == info["/Subject"] == title
    assert text.count(f">{title}</rdf:li>") == 2  # dc:title and dc:description
    assert info["/Author"] == "Müller Werkzeugbau GmbH"
    assert "<rdf:li>Müller Werkzeugbau GmbH</rdf:li>" in text
    assert f"<pdf:Keywords>{info['/Keywords']}</pdf:Keywords>" in text
    assert f"<xmp:CreatorTool>{info['/Creator']}</xmp:CreatorTool>" in text
    assert f"<pdf:Producer>{info['/Producer']}</pdf:Producer>" in text
    assert info["/CreationDate"] == info["/ModDate"] == "D:20261102093000+00'00'"
    assert "<xmp:CreateDate>2026-11-02T09:30:00+00:00</xmp:CreateDate>" in text
    assert "<pdfaid:part>3</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance>" in text
    assert "<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>" in text
    ids = reader.trailer["/ID"]
    assert len(ids) == 2 and ids[0] == ids[1]
    # every stream's /Length is exact and followed by endstream (pypdf strict mode reads them all)
    for number in range(1, reader.trailer["/Size"]):
        reader.get_object(number)
    spec = reader.trailer["/Root"]["/AF"][0].get_object()
    embedded = spec["/EF"]["/F"].get_object()
    assert embedded["/Params"]["/ModDate"] == "D:20261102093000+00'00'"
    assert embedded["/Params"]["/Size"] == len(embedded.get_data())


def test_a_long_invoice_goes_on_to_further_pages_in_the_same_font():
    lines = [(f"Position {n} Präzisionsteil", D("1"), D("9.99"), "S", D("19")) for n in range(90)]
    invoice = make_invoice(lines)
    built = build_document(source(invoice))
    assert built.ok, built.errors
    reader = pypdf.PdfReader(io.BytesIO(built.pdf))
    assert len(reader.pages) > 1
    fonts = {page["/Resources"]["/Font"].raw_get("/F1").idnum for page in reader.pages}
    assert len(fonts) == 1
    texts = [page.extract_text() for page in reader.pages]
    assert "Position 0 Präzisionsteil" in texts[0] and "USt-IdNr.: DE123456789" in texts[-1]
    text = "\n".join(texts)
    assert all(f"Position {n} Präzisionsteil" in text for n in range(90)) and "Bruttobetrag" in text


def test_documents_showing_the_same_characters_share_one_cut_of_the_font():
    invoice = make_invoice([("Bohrer", D("1"), D("10"), "S", D("19"))])
    first = render_pdf(invoice, created=datetime(2026, 11, 2, tzinfo=UTC))
    before = pdfa._embedding.cache_info().hits
    second = render_pdf(invoice, created=datetime(2026, 11, 3, tzinfo=UTC))
    assert pdfa._embedding.cache_info().hits == before + 1
    greek = render_pdf(make_invoice([("Σφιγκτήρας", D("1"), D("10"), "S", D("19"))]))

    def program(data: bytes) -> bytes:
        reader = pypdf.PdfReader(io.BytesIO(data))
        return _font_objects(reader)[2]["/FontFile2"].get_object().get_data()

    assert first != second and program(first) == program(second)
    assert len(program(greek)) > len(program(first))


def test_a_page_draws_its_text_and_modules_in_its_own_coordinates():
    font = invoice_font()
    page = pdfa.Page(font, 800.0)
    page.text(10, 20, "Ab", 10)
    page.text(10, 40, "Ab", 10)
    page.modules(100, 100, 2.0, [(0, 1, 3)])
    content = page.content().decode("ascii")
    assert content.count("Tf") == 1  # the size carries over
    assert f"10.00 780.00 Td <{font.hex['A']}{font.hex['b']}> Tj" in content
    assert "q 2.00000 0 0 -2.00000 100.00 700.00 cm" in content and "1 0 3 1 re" in content
    assert zlib.decompress(zlib.compress(page.content())) == page.content()


def test_a_control_character_is_refused_like_any_character_the_font_lacks():
    """(A Factur-X invoice never gets this far: its CII refuses the character first; a plain PDF
    invoice has no CII.)"""
    import pytest

    from invoice_pipelines.documents.domain.render import RenderError

    with pytest.raises(RenderError, match="U\\+000C"):
        render_pdf(
            make_invoice([("Bohrer", D("1"), D("10"), "S", D("19"))], buyer="Bäckerei\fHoffmann")
        )
