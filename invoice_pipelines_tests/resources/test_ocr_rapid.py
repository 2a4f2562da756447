"""RapidOCR, the default local engine (resources/ocr/rapid.py): it reads a real sample's pages
with their words where they stand, each page in a process of its own held to the page's budget of
CPU, refuses what is no image with a sentence, and is what INVOICE_PIPELINES_OCR gives unless
another engine is named."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from invoice_pipelines.resources.ocr.choice import ocr_reader
from invoice_pipelines.resources.ocr.engines import (
    RapidOcrEngine,
    TesseractOcrEngine,
    ocr_engine,
    rasterise_pdf,
)
from invoice_pipelines.resources.ocr.rapid import RapidOcrReader, memory_limit, page_slots
from invoice_pipelines.resources.ocr.rapid_page import page_lines
from invoice_pipelines.resources.ocr.readers import (
    OcrError,
    PageOverBudget,
    UnreadableImageError,
)
from invoice_pipelines.settings import FOR_RUNS

# the shared sample's page 1 carries the invoice number, page 2 the totals
NUMBER, NET, GROSS = "471102", "473,00", "529,87"


@pytest.fixture(scope="module")
def totals_page(einfach_pdf: bytes) -> bytes:
    return rasterise_pdf(einfach_pdf, 200, first_page=2, last_page=2)[0]


def test_rapidocr_reads_the_totals_with_their_boxes(totals_page: bytes) -> None:
    page = RapidOcrReader().ocr_image(totals_page)

    assert page.engine == "rapidocr"
    assert NET in page.text and GROSS in page.text
    assert page.confidence is not None and 0.8 < page.confidence <= 1.0
    # the words stand where they are printed: the gross total right of its label, on its row
    label = next(w for w in page.words if w.text == "Bruttosumme")
    amount = min(
        (w for w in page.words if w.text == GROSS), key=lambda w: abs(w.middle - label.middle)
    )
    assert amount.left > label.right
    assert abs(amount.middle - label.middle) < (label.bottom - label.top)
    # laid out, the label and its amount are one line of the page
    assert any(line.split() == ["Bruttosumme", GROSS] for line in page.layout_text().split("\n"))


def test_rapidocr_reads_every_page_of_a_pdf_in_order(einfach_pdf: bytes) -> None:
    pages = RapidOcrReader().ocr_pdf(einfach_pdf, dpi=150)

    assert len(pages) == 2
    assert NUMBER in pages[0].text and NET not in pages[0].text
    assert NET in pages[1].text


def test_rapidocr_refuses_what_is_no_image(totals_page: bytes) -> None:
    reader = RapidOcrReader()
    with pytest.raises(UnreadableImageError, match="not a PNG, JPEG"):
        reader.ocr_image(b"Rechnung 471102, Gesamtbetrag 529,87")
    # an image's first bytes and nothing after: the engine's process says it cannot decode it
    with pytest.raises(UnreadableImageError, match="no image RapidOCR can decode"):
        reader.ocr_image(totals_page[:64])


def test_a_page_over_its_cpu_budget_stops_the_document_naming_the_page(
    totals_page: bytes,
) -> None:
    """A page takes about 2.5 s of CPU: with a budget of 0.2 s the kernel stops the engine's
    process, and the document's reading ends naming the page and its budget."""
    reader = RapidOcrReader(page_timeout_seconds=0.2)

    with pytest.raises(PageOverBudget, match=r"page 1 of 1 was not read within its 0.2 s budget"):
        reader.ocr_images([lambda: totals_page])


def test_a_line_without_word_boxes_is_one_word_over_the_line() -> None:
    """The engine gives no box for a line's words now and then: the line is kept, as one word
    over its own box, not dropped."""
    box = [[10, 20], [110, 20], [110, 40], [10, 40]]
    result = SimpleNamespace(
        boxes=[box, box],
        txts=("Summe 12,00", "Netto"),
        scores=(0.9, 0.8),
        word_results=((("Summe", 0.9, None), ("12,00", 0.9, None)), ("Netto", 0.8, box)),
    )
    assert page_lines(result) == [
        [["Summe 12,00", 0.9, 10, 20, 110, 40]],
        [["Netto", 0.8, 10, 20, 110, 40]],
    ]
    empty = SimpleNamespace(boxes=None, txts=None, scores=None, word_results=())
    assert page_lines(empty) == []


def test_rapidocr_is_the_default_engine_and_the_others_are_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("INVOICE_PIPELINES_OCR", raising=False)
    monkeypatch.setenv("INVOICE_PIPELINES_OCR_PAGE_BUDGET_SECONDS", "7")
    engine = ocr_engine(ocr_reader(FOR_RUNS))
    assert isinstance(engine, RapidOcrEngine)
    assert engine.page_timeout_seconds == 7

    monkeypatch.setenv("INVOICE_PIPELINES_OCR", "tesseract")
    assert isinstance(ocr_engine(ocr_reader(FOR_RUNS)), TesseractOcrEngine)

    monkeypatch.setenv("INVOICE_PIPELINES_OCR", "rapid")
    with pytest.raises(OcrError, match="use 'rapidocr', 'tesseract' or 'google-vision'"):
        ocr_reader()


def test_pages_read_at_once_are_bounded_by_the_cores_and_the_containers_memory(tmp_path) -> None:
    """A page's process takes up to about 0.8 GB: a run pod of 2 GiB on a node of 16 cores reads
    one page at a time instead of being killed for its memory; without a limit, one per core."""
    gib = 1 << 30
    assert page_slots(16, 2 * gib) == 1
    assert page_slots(16, 8 * gib) == 7
    assert page_slots(2, 8 * gib) == 2
    assert page_slots(4, 256 << 20) == 1  # less than a page needs: still one, never none
    assert page_slots(2, None) == 2
    # the container's limit as cgroup v2 and v1 write it
    v2, v1 = tmp_path / "memory.max", tmp_path / "memory.limit_in_bytes"
    v2.write_text("max\n")
    assert memory_limit((v2, v1)) is None
    v2.write_text(f"{2 * gib}\n")
    assert memory_limit((v2, v1)) == 2 * gib
    v1.write_text("9223372036854771712\n")  # v1's "no limit"
    assert memory_limit((tmp_path / "absent", v1)) is None
    assert memory_limit((tmp_path / "absent",)) is None
