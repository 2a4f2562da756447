"""The OCR page-size bound holds for the box pdftoppm renders (the MediaBox), not only the
CropBox pdfinfo reports as a page's size.

A 600-byte PDF with three 5000 pt media boxes behind A4 crop boxes once passed the check and took
pdftoppm 179 s and 4.6 GB; it is refused now before anything is rendered.
"""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from invoice_pipelines.intake.domain.parse import parse_document
from invoice_pipelines.intake.domain.pipeline import _run_ocr
from invoice_pipelines.resources.ocr.engines import OcrError, TesseractOcrEngine, rasterise_pdf
from invoice_pipelines_tests.conftest import require_programs


def crop_box_bomb(pages: int = 3, media_side: int = 5000, crop: str = "0 0 595 842") -> bytes:
    """Blank pages with a `media_side` pt MediaBox and an A4 CropBox, written byte by byte."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{3 + i} 0 R" for i in range(pages)).encode()
    objects.append(b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages)
    for _ in range(pages):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /CropBox [%s]"
            b" /Resources << >> >>" % (media_side, media_side, crop.encode())
        )
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


EXPECTED = (
    "page 1 of the scan is 5000 x 5000 pt (176 x 176 cm); "
    "OCR reads pages up to 1700 pt (60 cm) on a side"
)


def test_a_huge_media_box_behind_an_a4_crop_box_is_refused_before_rendering() -> None:
    require_programs("pdftoppm", "pdfinfo")
    data = crop_box_bomb()
    assert len(data) < 1000

    started = time.monotonic()
    with pytest.raises(OcrError) as caught:
        TesseractOcrEngine().reader().ocr_pdf(data)
    assert str(caught.value) == EXPECTED
    assert time.monotonic() - started < 5


def test_a_media_box_with_a_negative_origin_is_measured_too() -> None:
    require_programs("pdftoppm", "pdfinfo")
    data = crop_box_bomb(pages=1, crop="0 0 595 842").replace(
        b"/MediaBox [0 0 5000 5000]", b"/MediaBox [-4405 -4158 595 842]"
    )

    with pytest.raises(OcrError, match=r"page 1 of the scan is 5000 x 5000 pt"):
        rasterise_pdf(data, 72)


def test_the_intake_records_the_crop_box_bomb_failed_with_the_page_size() -> None:
    require_programs("pdftoppm", "pdfinfo")
    outcome = parse_document(crop_box_bomb(), "scan.pdf")
    assert (outcome.status, outcome.format) == ("NEEDS_OCR", "image-pdf")

    result, pages = _run_ocr(TesseractOcrEngine().reader(), outcome, crop_box_bomb())

    assert (result.status, pages) == ("FAILED", 0)
    assert [finding.message for finding in result.errors] == [f"OCR failed: {EXPECTED}"]


def test_a_page_at_the_bound_renders_whole() -> None:
    require_programs("pdftoppm", "pdfinfo")
    at_the_limit = crop_box_bomb(pages=1, media_side=1700, crop="0 0 1700 1700")

    (page,) = rasterise_pdf(at_the_limit, 72)

    assert Image.open(io.BytesIO(page)).size == (1700, 1700)
