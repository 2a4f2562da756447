"""Which OCR reader the settings choose: INVOICE_PIPELINES_OCR (`rapidocr`, the default,
`tesseract` or `google-vision`) and the page budget of a local engine. The one builder of the
`ocr_engine` resource's reader (resources/area.py), kept apart from the readers themselves
(`readers.py`, `rapid.py`) so that neither needs to import the other."""

from __future__ import annotations

from invoice_pipelines.resources.ocr.pages import Preparation
from invoice_pipelines.resources.ocr.rapid import RapidOcrReader
from invoice_pipelines.resources.ocr.readers import (
    GoogleVisionReader,
    OcrError,
    OcrReader,
    TesseractReader,
)
from invoice_pipelines.settings import NOW, Reading, env, env_value, positive_number


def ocr_reader(read: Reading = NOW) -> OcrReader:
    """The reader chosen by INVOICE_PIPELINES_OCR (`rapidocr`, the default, `tesseract` or
    `google-vision`): the one builder of the `ocr_engine` resource (resources/area.py). A command
    reads with it; a run's resource wraps it (`resources.ocr.engines.ocr_engine`).

    For `google-vision`: INVOICE_PIPELINES_VISION_ENDPOINT overrides the endpoint (an http://
    one, i.e. the stand-in, is called without credentials) and GOOGLE_APPLICATION_CREDENTIALS
    names the service-account JSON; for a run both are `EnvVar`s (Dagster resolves them when a
    run starts, the UI shows where they come from, and no secret lands in run config).
    """
    choice = ocr_choice()
    if choice == "rapidocr":
        return RapidOcrReader(page_timeout_seconds=page_budget())
    if choice == "tesseract":
        return tesseract_reader()
    endpoint = env_value("INVOICE_PIPELINES_VISION_ENDPOINT")
    # the local stand-in: never send a bearer token in clear text
    plain_http = bool(endpoint and endpoint.lower().startswith("http://"))
    return GoogleVisionReader(
        api_endpoint=read.secret_if_set("INVOICE_PIPELINES_VISION_ENDPOINT"),
        anonymous=plain_http,
        credentials_file=None
        if plain_http
        else read.secret_if_set("GOOGLE_APPLICATION_CREDENTIALS"),
    )


def tesseract_reader() -> TesseractReader:
    """Tesseract with the page budget and preparation of INVOICE_PIPELINES_OCR_PAGE_BUDGET_SECONDS
    and INVOICE_PIPELINES_OCR_PREPARATION; ConfigError or OcrError names a wrong value."""
    budget = page_budget()
    preparation = env("INVOICE_PIPELINES_OCR_PREPARATION").strip() or "none"
    try:
        Preparation.parse(preparation)
    except ValueError as exc:
        raise OcrError(f"INVOICE_PIPELINES_OCR_PREPARATION: {exc}") from exc
    return TesseractReader(page_timeout_seconds=budget, preparation=preparation)


def page_budget() -> float:
    """INVOICE_PIPELINES_OCR_PAGE_BUDGET_SECONDS, a page's budget in seconds of CPU (a local
    engine's); ConfigError names a wrong value."""
    return float(positive_number("INVOICE_PIPELINES_OCR_PAGE_BUDGET_SECONDS", float))


OCR_ENGINES = ("rapidocr", "tesseract", "google-vision")


def ocr_choice() -> str:
    """INVOICE_PIPELINES_OCR: `rapidocr` (the default), `tesseract` or `google-vision`; OcrError
    for a typo."""
    choice = env("INVOICE_PIPELINES_OCR").strip().lower()
    if choice == "":
        return OCR_ENGINES[0]
    if choice in OCR_ENGINES:
        return choice
    # A typo must not silently fall back to another engine.
    raise OcrError(
        f"INVOICE_PIPELINES_OCR={choice!r} is not an OCR engine; use 'rapidocr', 'tesseract' or "
        "'google-vision'"
    )
