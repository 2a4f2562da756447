"""Hostile PDFs against the bounds of `limits.py`: embedded-file bombs, too many embedded files,
too many pages, and a document that needs more memory than a parse worker may use.

Memory is measured as a bound (tracemalloc's peak), never as time.
"""

from __future__ import annotations

import tracemalloc

import pytest

from invoice_pipelines import limits
from invoice_pipelines.einvoice.readers import pdf as pdf_module
from invoice_pipelines.intake.domain.parse import ParseOutcome, parse_document
from invoice_pipelines.intake.domain.workers import SafeParser
from invoice_pipelines_tests.conftest import samples_dir
from invoice_pipelines_tests.intake.hostile_pdf import (
    Embedded,
    MiB,
    build_pdf,
    embedded_xml,
    zeros_deflated,
)
from invoice_pipelines_tests.intake.test_bad_input import own_invoice

EINFACH = "ZUGFeRD-corpus/XML-Rechnung/FX/EN16931_Einfach.pdf"
# Far below what the unbounded reader used on the same files (hundreds of MiB, see each test).
PEAK_BOUND = 100 * MiB
TEXT = "Rechnung Nr. 4711 vom 01.03.2024 Summe 100,00 EUR"


@pytest.fixture(scope="module")
def zeros_20mib() -> bytes:
    return zeros_deflated(20 * MiB)


def parse_measured(data: bytes, filename: str) -> tuple[ParseOutcome, int]:
    tracemalloc.start()
    try:
        result = parse_document(data, filename)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def messages(findings: list) -> str:
    return " | ".join(f.message for f in findings)


def test_bomb_of_compressed_zeros_fails_clearly_in_bounded_memory(zeros_20mib: bytes) -> None:
    # 40 embedded "XML" files of 20 MiB of zeros each: an 800 KiB upload that the old reader
    # decoded to 800 MiB and kept.
    data = build_pdf([Embedded(f"invoice-{n:02}.xml", zeros_20mib) for n in range(40)])
    assert len(data) < 2 * MiB

    result, peak = parse_measured(data, "bomb.pdf")

    assert result.status == "FAILED"
    text = messages(result.errors)
    assert "decodes to more than the 32 MiB we decode from the embedded files of one PDF" in text
    assert "already used the 32 MiB" in text
    assert peak < PEAK_BOUND, f"peak {peak / MiB:.0f} MiB"
    summary = result.raw["pdf"]["attachments"]
    assert len(summary) == limits.MAX_ATTACHMENTS
    assert sum(a["bytes"] or 0 for a in summary) <= limits.MAX_ATTACHMENT_BYTES_TOTAL
    assert any("more than 32 embedded files" in p for p in result.raw["pdf"]["problems"])


def test_factur_x_xml_is_read_next_to_a_bomb_listed_before_it(zeros_20mib: bytes) -> None:
    # The bomb comes first in the file; the invoice XML is still decoded, and first.
    bombs = [
        Embedded(f"appendix-{n:02}.bin", zeros_20mib) for n in range(limits.MAX_ATTACHMENTS - 1)
    ]
    data = build_pdf([*bombs, embedded_xml("factur-x.xml", own_invoice("BOMB-1"))])

    result, peak = parse_measured(data, "invoice.pdf")

    assert result.status == "VALIDATED", messages(result.errors)
    assert result.invoice is not None and result.invoice.number == "BOMB-1"
    assert result.raw["xml_attachment"] == "factur-x.xml"
    assert "embedded file 'appendix-01.bin' was not read" in messages(result.warnings)
    assert peak < PEAK_BOUND, f"peak {peak / MiB:.0f} MiB"


def test_only_the_first_embedded_files_are_looked_at() -> None:
    tiny = [embedded_xml(f"note-{n:03}.txt", b"hello") for n in range(200)]
    result = parse_document(build_pdf(tiny, page_text=TEXT), "many.pdf")

    assert len(result.raw["pdf"]["attachments"]) == limits.MAX_ATTACHMENTS
    assert result.raw["pdf"]["problems"] == [
        "the PDF has more than 32 embedded files; only the first 32 were looked at"
    ]


def test_an_embedded_file_in_an_image_codec_is_not_decoded() -> None:
    data = build_pdf([Embedded("factur-x.xml", b"\x00" * 64, filter="/JBIG2Decode")])

    result = parse_document(data, "odd.pdf")

    assert result.status == "FAILED"
    assert "encoded with /JBIG2Decode, which we do not decode" in messages(result.errors)


def test_a_scan_with_more_pages_than_ocr_reads_fails_with_the_count() -> None:
    result = parse_document(build_pdf(pages=limits.MAX_OCR_PAGES + 1), "scan.pdf")

    assert (result.status, result.format) == ("FAILED", "image-pdf")
    assert messages(result.errors) == (
        "the scan has 21 pages; OCR reads at most 20 pages, so it was not read"
    )


def test_a_scan_at_the_page_limit_still_goes_to_ocr() -> None:
    result = parse_document(build_pdf(pages=limits.MAX_OCR_PAGES), "scan.pdf")

    assert result.status == "NEEDS_OCR"


def test_a_text_pdf_with_more_pages_than_we_read_fails_instead_of_losing_pages() -> None:
    result = parse_document(build_pdf(pages=limits.MAX_TEXT_PAGES + 5, page_text=TEXT), "long.pdf")

    assert (result.status, result.format) == ("FAILED", "text-pdf")
    assert "the PDF has 25 pages and no embedded invoice XML" in messages(result.errors)
    assert "read from at most 20 pages" in messages(result.errors)


def test_pages_do_not_matter_when_the_invoice_xml_is_embedded() -> None:
    data = build_pdf(
        [embedded_xml("factur-x.xml", own_invoice("LONG-1"))], pages=60, page_text=TEXT
    )

    result = parse_document(data, "long-hybrid.pdf")

    # the XML decides: a valid e-invoice, at most held because its pages show something else
    assert result.verdict is not None and result.verdict.klass.value == "valid_einvoice"
    assert result.status in ("VALIDATED", "NEEDS_REVIEW"), messages(result.errors)
    assert all(f.stage == "hybrid" for f in result.review)
    assert result.invoice is not None and result.invoice.number == "LONG-1"


# ------------------------------------------------------------------ memory of a parse worker

_SELF = "invoice_pipelines_tests.intake.test_hostile_documents"
BIG_STREAM = 250 * MiB  # below pypdf's own 300 MB decoding limit per stream


def parse_without_attachment_bound(data: bytes, filename: str, **options: object) -> ParseOutcome:
    """Runs in the worker: the real parser with the embedded-file bound lifted, so a bomb
    reaches the worker's memory limit."""
    pdf_module.MAX_ATTACHMENT_BYTES_TOTAL = 1 << 40
    return parse_document(data, filename, **options)  # type: ignore[arg-type]


def test_a_document_past_the_worker_memory_limit_fails_alone() -> None:
    sample = samples_dir() / EINFACH
    if not sample.is_file():
        pytest.skip(f"sample {EINFACH} not found")
    streams = -(-limits.PARSE_WORKER_MEMORY_BYTES // BIG_STREAM) + 1
    zeros = zeros_deflated(BIG_STREAM)
    bomb = build_pdf([Embedded(f"zeros-{n}.bin", zeros) for n in range(streams)])
    batch = [(bomb, "bomb.pdf"), (sample.read_bytes(), "EN16931_Einfach.pdf")]

    # The default limit, with the schematrons compiled at start: the limit leaves Saxon room.
    with SafeParser(
        workers=1, timeout_s=120, target=f"{_SELF}:parse_without_attachment_bound"
    ) as parser:
        results = parser.parse_many(batch)

    assert results[0].status == "FAILED"
    assert messages(results[0].errors) == (
        "the parser ran out of memory reading this file (each parse worker may use 1536 MiB)"
    )
    assert results[1].status == "VALIDATED", messages(results[1].errors)
    assert results[1].invoice is not None and results[1].invoice.number == "471102"
