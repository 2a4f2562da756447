"""PDF reading: every embedded file (whatever its name) with the reason any one failed, and the text layer."""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

from pypdf import PdfReader

MAX_TEXT_PAGES = 20
PDFTOTEXT_TIMEOUT_S = 30
# Below this many non-blank characters a page has no usable text layer: it is a scan.
MIN_TEXT_CHARS = 40


class PdfUnreadable(ValueError):
    """The bytes are not a PDF we can read; the message says why."""


@dataclass(frozen=True, slots=True)
class PdfAttachment:
    """One embedded file; `data` is None when it could not be read, and `error` says why."""

    name: str
    data: bytes | None
    error: str | None = None

    def looks_like_xml(self) -> bool:
        if self.data is None:
            return self.name.lower().endswith(".xml")
        head = self.data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
        return head.startswith(b"<") or self.name.lower().endswith(".xml")


@dataclass
class PdfDocument:
    """What we found in a PDF: page count, embedded files and reading problems."""

    page_count: int
    attachments: list[PdfAttachment] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    reader: Any = None

    def attachment_summary(self) -> list[dict[str, Any]]:
        return [
            {
                "name": a.name,
                "bytes": None if a.data is None else len(a.data),
                "error": a.error,
            }
            for a in self.attachments
        ]


def open_pdf(data: bytes) -> PdfDocument:
    """Open a PDF and list its embedded files; raise PdfUnreadable for corrupt or locked files."""
    if b"%%EOF" not in data:
        raise PdfUnreadable("the PDF is truncated: it has no %%EOF end marker")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            # Owner-password-only PDFs open with the empty user password; others we cannot read.
            try:
                opened = reader.decrypt("")
            except Exception as exc:  # pypdf raises several types, incl. missing crypto deps
                raise PdfUnreadable(f"the PDF is encrypted and cannot be opened: {exc}") from None
            if not opened:
                raise PdfUnreadable("the PDF is password protected")
        page_count = len(reader.pages)
    except PdfUnreadable:
        raise
    except Exception as exc:  # corrupt input makes pypdf raise anything from KeyError to its own
        raise PdfUnreadable(f"cannot read the PDF: {type(exc).__name__}: {exc}") from None
    document = PdfDocument(page_count=page_count, reader=reader)
    try:
        entries = list(reader.attachment_list)
    except Exception as exc:
        document.problems.append(f"cannot list embedded files: {type(exc).__name__}: {exc}")
        entries = []
    for entry in entries:
        try:
            name = entry.name
        except Exception:
            name = "(unnamed)"
        try:
            content = entry.content
            document.attachments.append(PdfAttachment(name, bytes(content)))
        except Exception as exc:
            document.attachments.append(
                PdfAttachment(name, None, f"cannot read it: {type(exc).__name__}: {exc}")
            )
    return document


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
    """The text layer and how we got it ("pdftotext" or "pypdf").

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
