"""The text layer of a PDF's first pages (pdftotext, else pypdf's layout mode), for the PDFs that
carry no invoice XML and for the comparison of a hybrid's page with its XML. The PDF itself is
opened by the e-invoice library (`einvoice/readers/pdf.py`)."""

from __future__ import annotations

import shutil
import subprocess

from invoice_pipelines.einvoice.readers.pdf import PdfDocument
from invoice_pipelines.limits import MAX_TEXT_PAGES

PDFTOTEXT_TIMEOUT_S = 30
# Below this many non-blank characters a page has no usable text layer: it is a scan.
MIN_TEXT_CHARS = 40


def _pdftotext(data: bytes, max_pages: int) -> str | None:
    binary = shutil.which("pdftotext")
    if binary is None:
        return None
    try:
        completed = subprocess.run(
            [binary, "-layout", "-enc", "UTF-8", "-l", str(max_pages), "-", "-"],
            input=data,
            capture_output=True,
            timeout=PDFTOTEXT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if completed.returncode != 0:
        return None
    return completed.stdout.decode("utf-8", "replace")


def _pypdf_text(document: PdfDocument, max_pages: int) -> str:
    pages = []
    reader_pages = document.reader.pages
    for number in range(min(len(reader_pages), max_pages)):
        try:
            pages.append(reader_pages[number].extract_text(extraction_mode="layout") or "")
        except Exception:  # one broken page must not lose the others
            pages.append("")
    return "\f".join(pages)


def extract_text(
    data: bytes, document: PdfDocument, *, max_pages: int = MAX_TEXT_PAGES, prefer: str = "auto"
) -> tuple[str, str]:
    """The text layer of the first `max_pages` pages and how we got it ("pdftotext" or "pypdf").

    pdftotext (poppler) keeps columns apart better, so it is used when installed; pypdf's layout
    mode is the fallback and gives the same labels-and-values lines for the fields we read.
    """
    if prefer in ("auto", "pdftotext"):
        text = _pdftotext(data, max_pages)
        if text is not None and (text.strip() or prefer == "pdftotext"):
            return text, "pdftotext"
    return _pypdf_text(document, max_pages), "pypdf"


def has_text_layer(text: str) -> bool:
    return sum(1 for ch in text if not ch.isspace()) >= MIN_TEXT_CHARS
