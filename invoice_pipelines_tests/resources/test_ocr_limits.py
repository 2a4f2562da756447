"""OCR reads at most `limits.MAX_OCR_PAGES` pages of a scan, and no page larger than
`limits.MAX_OCR_PAGE_SIDE_PT`, with either engine.

The scans are written here with Pillow: pages that are only an image, no text layer.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from PIL import Image, ImageDraw, ImageFont
from pypdf import PdfReader, PdfWriter

from invoice_pipelines import limits
from invoice_pipelines.resources.ocr.engines import (
    GoogleVisionOcrEngine,
    OcrError,
    TesseractOcrEngine,
    rasterise_pdf,
)
from invoice_pipelines_devtools.standins.vision import VisionStandin
from invoice_pipelines_tests.conftest import require_programs


@pytest.fixture(autouse=True)
def _no_metadata_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_GCE_CHECK", "true")


def scan(pages: int) -> bytes:
    """A scanned-looking PDF: each page one image saying which page it is."""
    font = ImageFont.load_default(size=40)
    images = []
    for number in range(1, pages + 1):
        image = Image.new("L", (600, 300), 255)
        ImageDraw.Draw(image).text((40, 120), f"RECHNUNG SEITE {number}", fill=0, font=font)
        images.append(image)
    buffer = io.BytesIO()
    images[0].save(buffer, format="PDF", save_all=True, append_images=images[1:], resolution=100)
    return buffer.getvalue()


@pytest.fixture
def standin() -> Iterator[VisionStandin]:
    with VisionStandin() as running:
        yield running


def test_tesseract_refuses_a_scan_with_more_pages_than_the_limit() -> None:
    require_programs("tesseract", "pdftoppm", "pdfinfo")
    too_long = scan(limits.MAX_OCR_PAGES + 1)

    with pytest.raises(OcrError) as caught:
        TesseractOcrEngine().reader().ocr_pdf(too_long, dpi=72)

    assert str(caught.value) == "the scan has 21 pages; OCR reads at most 20 pages"


def test_tesseract_reads_every_page_of_a_scan_at_the_limit() -> None:
    require_programs("tesseract", "pdftoppm", "pdfinfo")

    pages = TesseractOcrEngine().reader().ocr_pdf(scan(limits.MAX_OCR_PAGES), dpi=100)

    assert len(pages) == limits.MAX_OCR_PAGES
    assert "SEITE 1" in pages[0].text.upper()
    assert "SEITE 20" in pages[-1].text.upper()


def test_google_vision_refuses_the_same_scan_without_sending_a_page(
    standin: VisionStandin,
) -> None:
    require_programs("pdftoppm", "pdfinfo")
    engine = GoogleVisionOcrEngine(api_endpoint=standin.api_endpoint, anonymous=True).reader()

    with pytest.raises(OcrError, match="the scan has 21 pages; OCR reads at most 20 pages"):
        engine.ocr_pdf(scan(limits.MAX_OCR_PAGES + 1), dpi=72)

    assert standin.received == []


def test_rasterising_a_range_longer_than_the_limit_is_refused() -> None:
    require_programs("pdftoppm", "pdfinfo")
    data = scan(limits.MAX_OCR_PAGES + 5)

    with pytest.raises(OcrError, match="the scan has pages 2-25; OCR reads at most 20 pages"):
        rasterise_pdf(data, 72, first_page=2, last_page=25)
    assert len(rasterise_pdf(data, 72, first_page=3, last_page=4)) == 2


def poster_scan() -> bytes:
    """Two image pages: an ordinary one, then one scaled up to 2160 pt (76 cm) on a side."""
    pages = [Image.new("L", (600, 300), 255), Image.new("L", (300, 300), 255)]
    buffer = io.BytesIO()
    pages[0].save(buffer, format="PDF", save_all=True, append_images=pages[1:], resolution=100)
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(buffer.getvalue())))
    writer.pages[1].scale_to(2160, 2160)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_poster_sized_page_is_refused_before_it_is_rendered(standin: VisionStandin) -> None:
    require_programs("tesseract", "pdftoppm", "pdfinfo")
    data = poster_scan()
    expected = (
        "page 2 of the scan is 2160 x 2160 pt (76 x 76 cm); "
        "OCR reads pages up to 1700 pt (60 cm) on a side"
    )

    with pytest.raises(OcrError) as caught:
        TesseractOcrEngine().reader().ocr_pdf(data)
    assert str(caught.value) == expected

    vision = GoogleVisionOcrEngine(api_endpoint=standin.api_endpoint, anonymous=True).reader()
    with pytest.raises(OcrError, match="page 2 of the scan is 2160 x 2160 pt"):
        vision.ocr_pdf(data)
    assert standin.received == []
