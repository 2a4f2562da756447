"""The `ocr_engine` resource for scanned invoices: local RapidOCR (the default) or Tesseract, or
Google Cloud Vision. Their settings are declared once, on the plain readers of
`resources/ocr/readers.py` and `resources/ocr/rapid.py` (where the engines, PDF rendering and the
page limit live); Dagster shows and configures them here, one resource per engine, and hands a run
the reader they make, the object `invoice-pipelines parse` gets too, so a run and a command read
scans the same way. An asset takes it as `ResourceParam[OcrReader]`. A reader holds no workers
between calls (a PDF's pages are read by a pool that one call opens and closes), so nothing needs
tearing down; a Vision reader's client serves every page of its run.
"""

from __future__ import annotations

from typing import Any

from invoice_pipelines.resources.ocr.rapid import RapidOcrReader

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
from invoice_pipelines.resources.plain_settings import dagster_resource

RapidOcrEngine = dagster_resource(RapidOcrReader, "RapidOcrEngine", made_by="reader")
TesseractOcrEngine = dagster_resource(TesseractReader, "TesseractOcrEngine", made_by="reader")
GoogleVisionOcrEngine = dagster_resource(
    GoogleVisionReader, "GoogleVisionOcrEngine", made_by="reader"
)


def ocr_engine(reader: OcrReader) -> Any:
    """The run's resource around the reader `resources.ocr.choice.ocr_reader` built for the code
    location: the engine of its kind, with its settings (an endpoint or credentials file it holds
    as an `EnvVar` stays one)."""
    if isinstance(reader, RapidOcrReader):
        return RapidOcrEngine.of(reader)
    kind = TesseractOcrEngine if isinstance(reader, TesseractReader) else GoogleVisionOcrEngine
    return kind.of(reader)
