"""OCR engines on rasterised sample invoices: Tesseract, and Google Vision via the real client and the stand-in."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import vision

from invoice_pipelines.resources.ocr.choice import ocr_reader
from invoice_pipelines.resources.ocr.engines import (
    GoogleVisionOcrEngine,
    GoogleVisionReader,
    OcrError,
    TesseractOcrEngine,
    UnreadableImageError,
    ocr_engine,
    rasterise_pdf,
)
from invoice_pipelines.settings import FOR_RUNS
from invoice_pipelines_devtools.standins.vision import Fault, VisionStandin

# Page 1 carries the invoice number, page 2 the totals (net 473,00, gross 529,87).
PAGE_1_MARKER = "471102"
PAGE_2_MARKER = "473,00"


@pytest.fixture(autouse=True)
def _no_metadata_server(monkeypatch: pytest.MonkeyPatch) -> None:
    # google-auth would otherwise probe the GCE metadata server when looking for credentials.
    monkeypatch.setenv("NO_GCE_CHECK", "true")


@pytest.fixture(scope="module")
def totals_page(einfach_pdf: bytes) -> bytes:
    return rasterise_pdf(einfach_pdf, 300, first_page=2, last_page=2)[0]


@pytest.fixture(scope="module")
def small_page(einfach_pdf: bytes) -> bytes:
    # For tests about transport, not reading: low resolution keeps the OCR behind them cheap.
    return rasterise_pdf(einfach_pdf, 72, first_page=1, last_page=1)[0]


@pytest.fixture
def standin() -> Iterator[VisionStandin]:
    with VisionStandin() as running:
        yield running


def vision_engine(standin: VisionStandin, **config: object) -> GoogleVisionReader:
    settings: dict[str, object] = {
        "api_endpoint": standin.api_endpoint,
        "anonymous": True,
        "backoff_initial_seconds": 0.01,
        "backoff_max_seconds": 0.05,
    }
    settings.update(config)
    return GoogleVisionOcrEngine(**settings).reader()  # type: ignore[arg-type]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- Tesseract -------------------------------------------------------------------------------


def test_tesseract_reads_the_totals_of_a_rasterised_invoice(totals_page: bytes) -> None:
    page = TesseractOcrEngine().reader().ocr_image(totals_page)

    assert "529,87" in page.text
    assert "473,00" in page.text
    assert page.engine == "tesseract"
    assert page.confidence is not None and 0.5 < page.confidence <= 1.0


def test_tesseract_ocr_pdf_returns_every_page_in_order(einfach_pdf: bytes) -> None:
    pages = TesseractOcrEngine().reader().ocr_pdf(einfach_pdf, dpi=150)

    assert len(pages) == 2
    assert PAGE_1_MARKER in pages[0].text and PAGE_2_MARKER not in pages[0].text
    assert PAGE_2_MARKER in pages[1].text


def test_tesseract_refuses_data_that_is_not_an_image() -> None:
    # Tesseract would read this as a list of image files to open.
    with pytest.raises(UnreadableImageError, match="not a PNG"):
        TesseractOcrEngine().reader().ocr_image(b"/etc/passwd\n")


def test_missing_tesseract_binary_names_the_install_command(small_page: bytes) -> None:
    engine = TesseractOcrEngine(tesseract_cmd="/nonexistent/tesseract").reader()

    with pytest.raises(OcrError, match="apt-get install -y tesseract-ocr tesseract-ocr-deu"):
        engine.ocr_image(small_page)


def test_a_broken_pdf_gives_a_clear_error(einfach_pdf: bytes) -> None:
    with pytest.raises(OcrError, match="could not rasterise the PDF"):
        TesseractOcrEngine().reader().ocr_pdf(b"%PDF-1.4\nnot really a pdf\n")


# -- Google Cloud Vision through the real client, against the stand-in ------------------------


def test_vision_reads_text_through_the_real_rest_client(
    standin: VisionStandin, totals_page: bytes
) -> None:
    page = vision_engine(standin).ocr_image(totals_page)

    assert "529,87" in page.text
    assert "473,00" in page.text
    assert page.engine == "google-vision"
    assert page.confidence is not None and 0.5 < page.confidence <= 1.0
    # its words where they stand: the gross amount right of its label, on one laid-out line
    [gross] = [line for line in page.layout_text().splitlines() if "Bruttosumme" in line]
    assert gross.index("529,87") > gross.index("Bruttosumme")
    [received] = standin.received
    assert received.path.startswith("/v1/images:annotate")
    [image_request] = received.body["requests"]
    assert image_request["features"] == [{"type": vision.Feature.Type.DOCUMENT_TEXT_DETECTION}]
    assert image_request["imageContext"] == {"languageHints": ["de", "en"]}


def test_standin_answers_in_the_shape_of_the_real_service(
    standin: VisionStandin, small_page: bytes
) -> None:
    client = vision.ImageAnnotatorClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options={"api_endpoint": standin.api_endpoint},
    )

    response = client.document_text_detection(image=vision.Image(content=small_page))

    annotation = response.full_text_annotation
    word = annotation.pages[0].blocks[0].paragraphs[0].words[0]
    assert annotation.pages[0].blocks[0].block_type == vision.Block.BlockType.TEXT
    assert (
        "".join(symbol.text for symbol in word.symbols) == response.text_annotations[1].description
    )
    assert len(word.symbols[0].bounding_box.vertices) == 4
    assert 0 < word.symbols[0].confidence <= 1
    assert response.text_annotations[0].description == annotation.text


def test_vision_retries_after_503_and_succeeds(standin: VisionStandin, small_page: bytes) -> None:
    standin.script(Fault.unavailable())

    page = vision_engine(standin).ocr_image(small_page)

    assert page.text
    assert [r.fault.status if r.fault else 200 for r in standin.received] == [503, 200]


def test_vision_retries_a_response_slower_than_the_timeout(
    standin: VisionStandin, small_page: bytes
) -> None:
    # the page is read once first, so the stand-in answers the retry from what Tesseract read
    # then, in milliseconds like the real service, however busy this machine is: only the
    # scripted slow answer can run into the timeout
    first = vision_engine(standin).ocr_image(small_page)
    standin.script(Fault.slow(4.0))

    page = vision_engine(standin, timeout_seconds=2.0).ocr_image(small_page)

    assert page.text and page.text == first.text
    assert len(standin.received) == 3


def test_vision_gives_up_on_persistent_429_after_bounded_retries(
    standin: VisionStandin, small_page: bytes
) -> None:
    standin.script(*[Fault.rate_limited()] * 10)

    with pytest.raises(OcrError, match=r"after 3 attempts.*Quota exceeded"):
        vision_engine(standin, max_attempts=3).ocr_image(small_page)

    assert len(standin.received) == 3


def test_vision_does_not_retry_an_internal_error(standin: VisionStandin, small_page: bytes) -> None:
    standin.script(Fault.internal())

    with pytest.raises(OcrError, match="Internal error encountered"):
        vision_engine(standin).ocr_image(small_page)

    assert len(standin.received) == 1


def test_vision_reports_the_per_image_error_for_a_corrupt_image(standin: VisionStandin) -> None:
    corrupt_png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

    with pytest.raises(UnreadableImageError, match=r"Bad image data\. \(code 3\)"):
        vision_engine(standin).ocr_image(corrupt_png)


def test_vision_unreachable_endpoint_fails_at_once_with_a_clear_error(small_page: bytes) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    engine = GoogleVisionOcrEngine(api_endpoint=endpoint, anonymous=True).reader()

    with pytest.raises(OcrError, match=f"cannot reach Google Cloud Vision at {endpoint}"):
        engine.ocr_image(small_page)


def test_vision_ocr_pdf_sends_each_page_and_keeps_their_order(
    standin: VisionStandin, einfach_pdf: bytes
) -> None:
    pages = vision_engine(standin).ocr_pdf(einfach_pdf, dpi=150)

    assert len(pages) == 2
    assert PAGE_1_MARKER in pages[0].text and PAGE_2_MARKER not in pages[0].text
    assert PAGE_2_MARKER in pages[1].text
    assert len(standin.received) == 2


# -- choosing the engine ---------------------------------------------------------------------


def test_engine_from_settings_picks_google_vision(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOICE_PIPELINES_OCR", "google-vision")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/secrets/vision.json")
    monkeypatch.delenv("INVOICE_PIPELINES_VISION_ENDPOINT", raising=False)

    engine = ocr_engine(ocr_reader())

    assert isinstance(engine, GoogleVisionOcrEngine)
    assert engine.api_endpoint is None
    assert engine.credentials_file == "/secrets/vision.json"


def test_engine_from_settings_reaches_the_standin_without_credentials(
    monkeypatch: pytest.MonkeyPatch, standin: VisionStandin, small_page: bytes
) -> None:
    monkeypatch.setenv("INVOICE_PIPELINES_OCR", "google-vision")
    monkeypatch.setenv("INVOICE_PIPELINES_VISION_ENDPOINT", standin.api_endpoint)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/secrets/vision.json")

    page = ocr_reader().ocr_image(small_page)

    assert page.engine == "google-vision"
    assert "authorization" not in {name.lower() for name in standin.received[0].headers}


def test_engine_from_settings_rejects_an_unknown_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOICE_PIPELINES_OCR", "google_vision")

    with pytest.raises(OcrError, match="use 'rapidocr', 'tesseract' or 'google-vision'"):
        ocr_reader()


def test_the_code_location_passes_vision_settings_as_env_vars(
    monkeypatch: pytest.MonkeyPatch, standin: VisionStandin, small_page: bytes
) -> None:
    """The resource holds EnvVars (the UI shows their names, run config never holds the values);
    Dagster resolves them when the resource is set up."""
    from dagster import EnvVar, build_resources

    monkeypatch.setenv("INVOICE_PIPELINES_OCR", "google-vision")
    monkeypatch.setenv("INVOICE_PIPELINES_VISION_ENDPOINT", standin.api_endpoint)
    engine = ocr_engine(ocr_reader(FOR_RUNS))
    assert isinstance(engine.api_endpoint, EnvVar)
    assert engine.api_endpoint.env_var_name == "INVOICE_PIPELINES_VISION_ENDPOINT"
    with build_resources({"ocr_engine": engine}) as resources:
        assert resources.ocr_engine.api_endpoint == standin.api_endpoint
        page = resources.ocr_engine.ocr_image(small_page)
    assert page.engine == "google-vision"
