"""Benchmark: Tesseract pages per second on a rasterised Factur-X invoice, one page per core."""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from invoice_pipelines.cli_args import positive_int
from invoice_pipelines.resources.ocr.engines import (
    TesseractOcrEngine,
    available_cores,
    rasterise_pdf,
)
from invoice_pipelines_devtools.bench.limit import limit_fields, tesseract_plain

SAMPLE_PDF = Path("ZUGFeRD-corpus/XML-Rechnung/FX/EN16931_Einfach.pdf")


# how a scanner delivers a page in the field-accuracy bench: its resolution, the JPEG quality and
# the most it turns a page (each page gets its own angle, from its own seed)
SCAN_DPI = 200
SCAN_JPEG_QUALITY = 70
SCAN_MAX_TURN_DEGREES = 1.5


def scanned(page_png: bytes, seed: int, dpi: int = SCAN_DPI) -> bytes:
    """A page rendered at `dpi` as a scanner delivers it: grey paper and toner, turned by up
    to `SCAN_MAX_TURN_DEGREES` either way, grain and dust, saved as JPEG. Seeded, so the same page
    gives the same scan on every run."""
    import io
    import random

    from PIL import Image, ImageChops, ImageFilter

    rng = random.Random(seed)
    with Image.open(io.BytesIO(page_png)) as rendered:
        page = rendered.convert("L")
    page = page.point(lambda v: 30 + v * 200 // 255)
    angle = rng.uniform(0.3, SCAN_MAX_TURN_DEGREES) * rng.choice((-1, 1))
    page = page.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=226)
    grain = Image.frombytes("L", page.size, rng.randbytes(page.size[0] * page.size[1]))
    # grain of +-12 grey levels, and one pixel in about 300 a dark speck
    page = ImageChops.add(page, grain.point(lambda v: v * 24 // 255), offset=-12)
    page = ImageChops.darker(page, grain.point(lambda v: 70 if v < 1 else 255))
    page = page.filter(ImageFilter.GaussianBlur(0.5))
    out = io.BytesIO()
    page.save(out, format="JPEG", quality=SCAN_JPEG_QUALITY, dpi=(dpi, dpi))
    return out.getvalue()


def default_samples_dir() -> Path:
    """The shared sample corpus next to the repository (../shared/samples/einvoice)."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "samples" / "einvoice"


def measure_ocr(
    pages: int = 4,
    dpi: int = 300,
    *,
    pdf_path: Path | str | None = None,
    cores: int | None = None,
    limit: bool = False,
) -> dict[str, object]:
    """OCR one page alone, then `pages` pages on `cores` parallel workers; return the timings.

    The target is 80 % of perfect scaling: `cores` pages at once should each take no more
    than 1.25x the time one page takes alone. With `limit`, the same pages are then read by the
    tesseract program directly (`ocr_limit_*`).
    """
    if pages < 1:
        raise ValueError("pages must be at least 1")
    path = Path(pdf_path) if pdf_path is not None else default_samples_dir() / SAMPLE_PDF
    images = rasterise_pdf(path.read_bytes(), dpi)
    # Cycle through the document's pages so any page count can be measured.
    batch = [images[i % len(images)] for i in range(pages)]
    workers = cores or available_cores()
    engine = TesseractOcrEngine().reader()

    started = time.perf_counter()
    engine.ocr_image(images[-1])
    single = time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(engine.ocr_image, batch))
    elapsed = time.perf_counter() - started

    pages_per_s = pages / elapsed
    target = 0.8 * workers / single
    figures: dict[str, object] = {}
    if limit:
        limit_seconds = tesseract_plain(batch, workers, languages=engine.languages, psm=engine.psm)
        figures = {
            "ocr_limit_seconds": round(limit_seconds, 3),
            "ocr_limit_pages_per_s": round(pages / limit_seconds, 3),
        }
    return {
        "ocr_pages": pages,
        "ocr_dpi": dpi,
        "ocr_psm": engine.psm,
        "ocr_seconds": round(elapsed, 3),
        "ocr_pages_per_s": round(pages_per_s, 3),
        "ocr_single_page_seconds": round(single, 3),
        "cores": workers,
        "ocr_target_pages_per_s": round(target, 3),
        "ocr_meets_target": pages_per_s >= target,
        **figures,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pages", type=positive_int, default=4)
    parser.add_argument("--dpi", type=positive_int, default=300)
    parser.add_argument("--pdf", type=Path, default=None, help="default: the shared sample")
    parser.add_argument("--cores", type=positive_int, default=None, help="default: CPUs available")


LIMIT_METHOD = (
    "the same page images read by the tesseract program directly, right after the engine: the "
    "same command line (languages, page segmentation mode, TSV out, one OMP thread), as many at "
    "once as the engine runs, its output not parsed into words and confidences"
)


def run(args: argparse.Namespace) -> dict[str, object]:
    result = measure_ocr(args.pages, args.dpi, pdf_path=args.pdf, cores=args.cores, limit=True)
    return limit_fields(
        {"scenario": "ocr", **result},
        "ocr_pages_per_s",
        result["ocr_limit_pages_per_s"],  # type: ignore[arg-type]
        LIMIT_METHOD,
        # the sample's pages (their count and resolution) are on both sides; no database
        limit_seconds=result["ocr_limit_seconds"],
    )
