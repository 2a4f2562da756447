"""Scans: page preparation, the engine's settings, a page's time budget and the word boxes, on the
totals page of a real sample invoice read by Tesseract."""

from __future__ import annotations

import io
import os
import signal
import sys
from decimal import Decimal as D

import pytest
from PIL import Image

from invoice_pipelines.intake.domain.formats.text.table import read_table
from invoice_pipelines.intake.domain.parse import parse_ocr_pages, parse_ocr_text
from invoice_pipelines.resources.ocr.choice import ocr_reader
from invoice_pipelines.resources.ocr.pages import Preparation, prepare_page, skew_degrees
from invoice_pipelines.resources.ocr.readers import (
    OcrError,
    OcrPage,
    PageOverBudget,
    TesseractReader,
    rasterise_pdf,
    run_within,
)
from invoice_pipelines.resources.ocr.words import PositionedWord, layout_lines, slope, straightened
from invoice_pipelines.settings import ConfigError
from invoice_pipelines_devtools.bench.ocr import scanned

TOTALS = ("net_total", "tax_total", "gross_total", "amount_due")


@pytest.fixture(scope="module")
def totals_page(einfach_pdf: bytes) -> bytes:
    # 200 dpi: what the bench's scanner delivers (bench/ocr.py, SCAN_DPI)
    return rasterise_pdf(einfach_pdf, 200, first_page=2, last_page=2)[0]


def _turned(page: bytes, degrees: float) -> Image.Image:
    with Image.open(io.BytesIO(page)) as image:
        return image.convert("L").rotate(degrees, fillcolor=255)


def _totals(reader: TesseractReader, image: bytes) -> dict[str, object]:
    page = reader.ocr_image(image)
    outcome = parse_ocr_text(page.text, source_format="image", confidence=page.confidence)
    assert outcome.invoice is not None
    return {name: getattr(outcome.invoice, name) for name in TOTALS}


def test_the_skew_of_a_turned_page_is_measured(totals_page: bytes) -> None:
    assert abs(skew_degrees(_turned(totals_page, 2.0)) - 2.0) <= 0.1
    assert abs(skew_degrees(_turned(totals_page, -1.2)) + 1.2) <= 0.1
    # and a deskewed page is straight
    buffer = io.BytesIO()
    _turned(totals_page, 2.0).save(buffer, format="PNG")
    prepared = prepare_page(buffer.getvalue(), Preparation(target_dpi=0, deskew=True))
    with Image.open(io.BytesIO(prepared)) as straight:
        assert abs(skew_degrees(straight.convert("L"))) <= 0.1


def test_a_turned_noisy_scan_reads_the_totals_the_page_prints(totals_page: bytes) -> None:
    # the clean page's totals (its XML's too): net, VAT, gross, amount due
    printed = ["473.00", "56.87", "529.87", "529.87"]
    scan = scanned(totals_page, seed=7)  # grey, grain, dust, JPEG, turned by about a degree
    with Image.open(io.BytesIO(scan)) as image:
        assert abs(skew_degrees(image.convert("L"))) >= 0.5
    # a budget no load reaches: this test is about the reading, not the time
    reader = TesseractReader(preparation="deskew,denoise", page_timeout_seconds=600)
    totals = _totals(reader, scan)
    assert [str(totals[name]) for name in TOTALS] == printed


def test_a_page_over_its_budget_is_stopped_and_named(totals_page: bytes) -> None:
    reader = TesseractReader(page_timeout_seconds=0.001, pdf_page_workers=2)
    with pytest.raises(PageOverBudget) as stopped:
        reader.ocr_images([lambda: totals_page, lambda: totals_page])
    assert stopped.value.page == 1
    assert str(stopped.value) == "page 1 of 2 was not read within its 0.001 s budget"


def test_the_settings_choose_the_preparation_and_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INVOICE_PIPELINES_OCR", "tesseract")  # the engine that prepares pages
    monkeypatch.setenv("INVOICE_PIPELINES_OCR_PREPARATION", "dpi300,deskew")
    monkeypatch.setenv("INVOICE_PIPELINES_OCR_PAGE_BUDGET_SECONDS", "12.5")
    reader = ocr_reader()
    assert isinstance(reader, TesseractReader)
    assert (reader.preparation, reader.page_timeout_seconds) == ("dpi300,deskew", 12.5)
    monkeypatch.setenv("INVOICE_PIPELINES_OCR_PREPARATION", "sharpen")
    with pytest.raises(OcrError, match="'sharpen' is not a page preparation step"):
        ocr_reader()
    monkeypatch.setenv("INVOICE_PIPELINES_OCR_PREPARATION", "none")
    monkeypatch.setenv("INVOICE_PIPELINES_OCR_PAGE_BUDGET_SECONDS", "0")
    with pytest.raises(ConfigError, match="must be positive"):
        ocr_reader()


def test_word_boxes_give_the_table_reader_its_columns() -> None:
    # two rows of a line table whose words the engine gave in its own order (amount first)
    def word(text: str, left: int, top: int) -> PositionedWord:
        return PositionedWord(text, left, top, left + 20 * len(text), top + 30)

    words = [
        word("Betrag", 1200, 100),
        word("Pos", 100, 102),
        word("Beschreibung", 300, 98),
        word("Menge", 800, 101),
        word("198,00", 1200, 161),
        word("1", 100, 160),
        word("Trennblätter", 300, 159),
        word("20", 820, 162),
    ]
    lines = layout_lines(words)
    assert lines[0].split() == ["Pos", "Beschreibung", "Menge", "Betrag"]
    assert lines[1].index("198,00") == lines[0].index("Betrag")
    [line] = read_table(lines)
    assert (str(line.quantity), str(line.net_amount)) == ("20", "198.00")


def test_a_page_is_held_to_its_cpu_not_to_the_clock() -> None:
    """The budget counts the engine's CPU: a process that works past it is stopped by the kernel;
    one that waits past it (a busy machine) is not over it, up to the clock's backstop."""
    env = dict(os.environ)
    # clocks long enough for any load: each case here is about the CPU, or about the clock alone
    patient = 600
    spinning = run_within(
        [sys.executable, "-c", "while True: pass"], b"", env, cpu_seconds=1, wall_seconds=patient
    )
    assert spinning.over_budget == "used more than 1 s of CPU"
    assert spinning.returncode == -signal.SIGXCPU  # the kernel stopped it (RLIMIT_CPU)
    waiting = run_within(["sleep", "3"], b"", env, cpu_seconds=2, wall_seconds=patient)
    assert (waiting.over_budget, waiting.returncode) == ("", 0)
    hung = run_within(["sleep", "600"], b"", env, cpu_seconds=0.2)
    assert hung.over_budget == "took longer than 1 s on the clock"
    assert hung.returncode == -signal.SIGKILL
    # what the engine printed reaches the reader
    echoed = run_within(["cat"], b"page", env, cpu_seconds=5, wall_seconds=patient)
    assert (echoed.stdout, echoed.over_budget) == (b"page", "")


def _turned_page(slope: float, *, with_lines: bool = True) -> list[PositionedWord]:
    """A page of label-and-amount rows 60 px apart, the sheet turned so that the text climbs
    `slope` px per px across: each amount at the far margin stands lower than its label by more
    than half a row at 1.5 degrees. Each row is one of the engine's lines (unless not
    `with_lines`)."""
    rows = [("Nettobetrag", "473,00"), ("Umsatzsteuer", "56,87"), ("Gesamtbetrag", "529,87")]
    words = []
    for number, (label, amount) in enumerate(rows):
        for text, left in ((label, 100), (amount, 1500)):
            top = round(200 + 60 * number + slope * left)
            line = (1, 1, number) if with_lines else None
            words.append(
                PositionedWord(text, left, top, left + 20 * len(text), top + 30, line=line)
            )
    return words


def test_a_turned_pages_rows_are_laid_out_level() -> None:
    """Turned by 1.5 degrees, each amount is nearer the row below it than its own label; turned
    back by the slope of the engine's own lines, each row is one line again."""
    lines = layout_lines(_turned_page(0.026))
    assert [line.split() for line in lines] == [
        ["Nettobetrag", "473,00"],
        ["Umsatzsteuer", "56,87"],
        ["Gesamtbetrag", "529,87"],
    ]
    assert abs(slope(_turned_page(0.026)) - 0.026) < 0.001
    # without the engine's lines nothing says how the page is turned: rows are not straightened,
    # and a label parts from its amount
    assert slope(_turned_page(0.026, with_lines=False)) == 0.0
    assert ["Nettobetrag", "473,00"] not in [
        line.split() for line in layout_lines(_turned_page(0.026, with_lines=False))
    ]


def test_a_page_turned_past_the_limit_is_not_turned_back() -> None:
    # 0.2 px per px is 11 degrees: the engine's lines are no guide there, the words stay as read
    assert slope(_turned_page(0.2)) == 0.0
    assert straightened(_turned_page(0.2)) == _turned_page(0.2)


def test_the_intake_parses_a_scans_words_laid_out() -> None:
    """What the intake parses is the scan's words laid out where they stand (parse_ocr_pages),
    not the engine's plain lines (empty here): the totals of a turned page with their labels."""
    page = OcrPage(text="", confidence=0.9, engine="tesseract", words=tuple(_turned_page(0.026)))
    outcome = parse_ocr_pages([page], source_format="image")
    invoice = outcome.invoice
    assert (invoice.net_total, invoice.tax_total, invoice.gross_total) == (
        D("473.00"),
        D("56.87"),
        D("529.87"),
    )


def test_a_value_the_engine_cut_in_two_stays_one_phrase() -> None:
    """The engine read "20261129-205" as two words a hair apart: laid out by column they would
    stand two spaces apart, which the reader takes for a column's gap and reads the number as
    "20261". Words as near as a character are one phrase: one space. A value far to the right
    still stands in its column."""

    def word(text: str, left: int, per_character: int = 20, top: int = 100) -> PositionedWord:
        return PositionedWord(text, left, top, left + per_character * len(text), top + 30)

    words = [
        word("Rechnungsnummer:", 100),
        # digits print wider than the page's typical character (20 px): by its column the next
        # word would stand three spaces on, though it is 12 px (half a character) away
        word("20261", 800, per_character=30),
        word("129-205", 800 + 150 + 12, per_character=30),
        word("Gesamtbetrag", 100, top=200),
        word("952,00", 1800, top=200),
    ]
    first, second = layout_lines(words)
    assert first.split(":")[1].strip() == "20261 129-205"
    assert second.index("952,00") == round((1800 - 100) / 20)
    page = OcrPage(text="", confidence=0.95, engine="tesseract", words=tuple(words))
    assert parse_ocr_pages([page], source_format="image").invoice.number == "20261129-205"
