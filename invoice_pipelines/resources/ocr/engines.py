"""The `ocr_engine` resource for scanned invoices: local Tesseract or Google Cloud Vision. Dagster
shows and configures its settings and hands a run the plain reader of `resources/ocr/readers.py`
(where the engines, PDF rendering and the page limit live) that `reader()` gives, the object
`invoice-pipelines parse` gets too, so a run and a command read scans the same way. An asset
takes it as `ResourceParam[OcrReader]`. A reader holds no workers between calls (a PDF's pages
are read by a pool that one call opens and closes), so nothing needs tearing down.
"""

from __future__ import annotations

import abc
import threading

import dagster as dg
from pydantic import PrivateAttr

# what reading a scan raises and gives, also importable from here, beside the resource
from invoice_pipelines.resources.ocr.readers import (  # noqa: F401
    DEFAULT_PAGE_BUDGET_SECONDS,
    DEFAULT_PREPARATION,
    GoogleVisionReader,
    OcrError,
    OcrPage,
    OcrReader,
    PageOverBudget,
    TesseractReader,
    UnreadableImageError,
    available_cores,
    rasterise_pdf,
)
from invoice_pipelines.resources.plain_settings import OfPlain


class OcrEngine(OfPlain, dg.ConfigurableResource, abc.ABC):
    """Reads text from page images and PDFs. Subclasses pick the engine; callers never need to know."""

    pdf_page_workers: int | None = None
    rasterise_timeout_seconds: float = 300.0

    @abc.abstractmethod
    def reader(self) -> OcrReader:
        """The plain reader these settings make."""

    def create_resource(self, context: dg.InitResourceContext) -> OcrReader:  # type: ignore[override]
        return self.reader()


class TesseractOcrEngine(OcrEngine):
    """Tesseract on this machine, the default engine (`resources.ocr.readers.TesseractReader`)."""

    languages: str = "deu+eng"
    psm: int = 4
    # a page's time budget: over it, tesseract is stopped and the document goes to review
    page_timeout_seconds: float = DEFAULT_PAGE_BUDGET_SECONDS
    tesseract_cmd: str = "tesseract"
    # what is done to a page before it is read: "none" or steps ("dpi300,deskew,denoise,otsu")
    preparation: str = DEFAULT_PREPARATION
    # tesseract's own settings as name=value ("preserve_interword_spaces=1")
    variables: list[str] = []

    def reader(self) -> TesseractReader:
        return self._plain(TesseractReader)


class GoogleVisionOcrEngine(OcrEngine):
    """Google Cloud Vision DOCUMENT_TEXT_DETECTION over its REST API
    (`resources.ocr.readers.GoogleVisionReader`, where credentials are looked up on first use).
    One reader per resource instance: its client serves every page."""

    api_endpoint: str | None = None
    credentials_file: str | None = None
    anonymous: bool = False
    language_hints: list[str] = ["de", "en"]
    timeout_seconds: float = 60.0
    max_attempts: int = 5
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 30.0

    _reader: GoogleVisionReader | None = PrivateAttr(default=None)
    _reader_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def reader(self) -> GoogleVisionReader:
        with self._reader_lock:
            if self._reader is None:
                self._reader = self._plain(GoogleVisionReader)
            return self._reader


def ocr_engine(reader: OcrReader) -> OcrEngine:
    """The run's resource around the reader `resources.ocr.readers.ocr_reader` built for the code
    location: the engine of its kind, with its settings (an endpoint or credentials file it holds
    as an `EnvVar` stays one)."""
    kind = TesseractOcrEngine if isinstance(reader, TesseractReader) else GoogleVisionOcrEngine
    return kind.of(reader)
