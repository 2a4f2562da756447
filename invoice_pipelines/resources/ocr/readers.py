"""OCR for scanned invoices in plain Python: local Tesseract or Google Cloud Vision (`OcrReader`:
`TesseractReader`, `GoogleVisionReader`; RapidOCR, the default, is `rapid.py`'s; the settings
choose one in `choice.py`). The Dagster resource `ocr_engine` (`resources/ocr/engines.py`) wraps
these; `invoice-pipelines parse` uses them directly, without Dagster.

PDFs are rendered page by page to files by poppler and OCR'd one page at a time, at most
`limits.MAX_OCR_PAGES` pages per document, whichever engine reads them.
"""

from __future__ import annotations

import abc
import itertools
import math
import operator
import os
import random
import re
import resource
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from invoice_pipelines.limits import MAX_OCR_PAGE_SIDE_PT, MAX_OCR_PAGES
from invoice_pipelines.resources.ocr.pages import Preparation, prepare_page
from invoice_pipelines.resources.ocr.words import PositionedWord, layout_lines

TESSERACT_INSTALL_COMMAND = "apt-get install -y tesseract-ocr tesseract-ocr-deu"
POPPLER_INSTALL_COMMAND = "apt-get install -y poppler-utils"
VISION_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)

# Leading bytes of the raster formats Leptonica (Tesseract's image reader) decodes.
_IMAGE_SIGNATURES: tuple[tuple[int, bytes], ...] = (
    (0, b"\x89PNG\r\n\x1a\n"),
    (0, b"\xff\xd8\xff"),  # JPEG
    (0, b"II*\x00"),  # TIFF, little endian
    (0, b"MM\x00*"),  # TIFF, big endian
    (0, b"GIF87a"),
    (0, b"GIF89a"),
    (0, b"BM"),
    (8, b"WEBP"),
    (0, b"\x00\x00\x00\x0cjP  \r\n\x87\n"),  # JPEG 2000 (JP2)
    (0, b"\xff\x4f\xff\x51"),  # JPEG 2000 codestream
)


class OcrError(Exception):
    """OCR could not produce text; the message says why and, where possible, what to do."""


class UnreadableImageError(OcrError):
    """The bytes are not an image the engine can decode."""


class PageOverBudget(OcrError):
    """A page was not read within its time budget; the engine was stopped. `page` is its number
    in the document (1-based) once the document's reader knows it, else None."""

    def __init__(self, message: str, *, budget_seconds: float, page: int | None = None) -> None:
        super().__init__(message)
        self.budget_seconds = budget_seconds
        self.page = page


@dataclass(frozen=True)
class OcrPage:
    """The text of one page. `confidence` is the mean word confidence in [0, 1], None without words.
    `words` are the words where they stand on the page (pixels), for the engines that say it."""

    text: str
    confidence: float | None
    engine: str
    words: tuple[PositionedWord, ...] = ()

    def layout_text(self) -> str:
        """The page's words laid out in columns as on the page (`resources.ocr.words`); the
        plain text where the engine gave no words."""
        if not self.words:
            return self.text
        return "".join(line + "\n" for line in layout_lines(self.words))


@dataclass(frozen=True)
class OcrWord:
    """One word from Tesseract's TSV output; box in pixels, confidence in [0, 1]."""

    text: str
    confidence: float
    left: int
    top: int
    width: int
    height: int
    block: int
    paragraph: int
    line: int


@dataclass(frozen=True)
class TesseractPage:
    """Tesseract's reading of one image: its size in pixels and its words in reading order."""

    width: int
    height: int
    words: tuple[OcrWord, ...]

    def lines(self) -> list[list[OcrWord]]:
        key = operator.attrgetter("block", "paragraph", "line")
        return [list(group) for _, group in itertools.groupby(self.words, key=key)]

    @property
    def text(self) -> str:
        # One OCR line per text line and no blank lines: the same shape Google Vision's
        # full text has, so text rules downstream do not depend on the engine.
        return "".join(" ".join(w.text for w in line) + "\n" for line in self.lines())

    @property
    def confidence(self) -> float | None:
        if not self.words:
            return None
        return sum(w.confidence for w in self.words) / len(self.words)

    def positioned_words(self) -> tuple[PositionedWord, ...]:
        """The words with their boxes as (left, top, right, bottom), in reading order."""
        return tuple(
            PositionedWord(
                w.text,
                w.left,
                w.top,
                w.left + w.width,
                w.top + w.height,
                w.confidence,
                line=(w.block, w.paragraph, w.line),
            )  # fmt: skip
            for w in self.words
        )


# a page's time budget, in seconds of CPU its tesseract uses: a page takes 1.7-2.2 s of one core
# (docs/intake.md, "Scans"), the budget ten times that. Counted in CPU, not on the clock, so a loaded machine does not send
# good scans to review (a budget of 30 s on the clock stopped 4 of the bench's 9 scans at a load
# of 20 on two cores); a page that would hold up the batch is still stopped
DEFAULT_PAGE_BUDGET_SECONDS = 20.0
# the clock's backstop, as a multiple of the budget: a tesseract that waits instead of working
# (it never should) is stopped there all the same
WALL_BACKSTOP_FACTOR = 5
DEFAULT_PREPARATION = "none"


class Slots:
    """A bound on the pages this process reads at once, whatever the number of documents read:
    `size()` is asked once, when a page first waits here."""

    def __init__(self, size: Callable[[], int]) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._semaphore: threading.BoundedSemaphore | None = None

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            if self._semaphore is None:
                self._semaphore = threading.BoundedSemaphore(self._size())
            semaphore = self._semaphore
        with semaphore:
            yield


def available_cores() -> int:
    """CPUs this process may run on (the container's share, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# one of this process's engine slots, one per core: pages of every document being read wait
# here instead of overloading the cores (and overrunning their budgets)
engine_slot = Slots(available_cores).held


def looks_like_image(data: bytes) -> bool:
    """True when the bytes start like a raster image Tesseract can decode."""
    if any(data[offset : offset + len(magic)] == magic for offset, magic in _IMAGE_SIGNATURES):
        return True
    # PBM/PGM/PPM: "P1".."P6" then whitespace (pdftoppm writes these by default).
    return len(data) > 2 and data[:1] == b"P" and data[1:2] in b"123456" and data[2:3].isspace()


def require_image(data: bytes) -> None:
    """UnreadableImageError unless the bytes start like an image a local engine decodes: what
    is no image never reaches an engine's process."""
    if not looks_like_image(data):
        raise UnreadableImageError(
            "the data is not a PNG, JPEG, TIFF, GIF, BMP, WebP, JPEG 2000 or PNM image"
        )


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: bytes
    stderr: bytes
    over_budget: str  # "" within its budget, else what it went past


def run_within(
    command: list[str], data: bytes, env: dict, *, cpu_seconds: float, wall_seconds: float = 0
) -> Finished:
    """`command` with `data` on its stdin, held to `cpu_seconds` of CPU: the kernel stops it a
    second past that at most (RLIMIT_CPU), and one that finished past it is over its budget all
    the same (its own CPU time, from wait4). A backstop on the clock (`wall_seconds`, by default
    WALL_BACKSTOP_FACTOR times the budget) stops one that waits. Files, not pipes, carry the data: no thread to feed them,
    and the process stays unreaped until wait4 has read its CPU time."""
    wall = wall_seconds or max(cpu_seconds * WALL_BACKSTOP_FACTOR, 1.0)
    with (
        tempfile.TemporaryFile() as given,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        given.write(data)
        given.seek(0)
        proc = subprocess.Popen(command, stdin=given, stdout=out, stderr=err, env=env)
        limited = _limit_cpu(proc.pid, cpu_seconds)
        stopped = threading.Event()
        ended = threading.Lock()  # taken once it has ended: no signal for a pid that is gone

        def backstop() -> None:
            if ended.acquire(blocking=False):
                stopped.set()
                os.kill(proc.pid, signal.SIGKILL)
                ended.release()

        timer = threading.Timer(wall, backstop)
        timer.start()
        try:
            # ended and not yet reaped (its pid still its own) once this returns
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        except BaseException:
            os.kill(proc.pid, signal.SIGKILL)  # this thread was stopped: so is the page
            raise
        finally:
            timer.cancel()
            ended.acquire()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        used = usage.ru_utime + usage.ru_stime
        over = ""
        if stopped.is_set():
            over = f"took longer than {wall:g} s on the clock"
        elif used > cpu_seconds or (limited and proc.returncode == -signal.SIGXCPU):
            over = f"used more than {cpu_seconds:g} s of CPU"
        out.seek(0)
        err.seek(0)
        return Finished(proc.returncode, out.read(), err.read(), over)


def _limit_cpu(pid: int, seconds: float) -> bool:
    """RLIMIT_CPU of the process `pid` (whole seconds, at least one): False where the platform
    has none (the check of its CPU time after it ends still holds it to the budget)."""
    if not hasattr(resource, "prlimit"):
        return False
    soft = max(1, math.ceil(seconds))
    try:
        resource.prlimit(pid, resource.RLIMIT_CPU, (soft, soft + 1))
    except (ProcessLookupError, PermissionError, OSError):
        return False  # it has ended already
    return True


def tesseract_tsv(
    image: bytes,
    *,
    languages: str = "deu+eng",
    psm: int = 4,
    timeout_seconds: float = 120.0,
    tesseract_cmd: str = "tesseract",
    variables: tuple[str, ...] = (),
) -> TesseractPage:
    """OCR one image with the tesseract binary and return its words with boxes and confidences."""
    # Tesseract reads input that is not an image as a list of file names to OCR, so an upload
    # of text could make it open local files: refuse before it runs.
    require_image(image)
    # One OpenMP thread per tesseract: on 2 cores a page took 1.0 s instead of 4.5 s with
    # the default threading; parallelism comes from running pages side by side instead.
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    command = [tesseract_cmd, "stdin", "stdout", "-l", languages, "--psm", str(psm)]
    # "name=value" settings of tesseract's own (preserve_interword_spaces=1, ...)
    command += [arg for variable in variables for arg in ("-c", variable)] + ["tsv"]
    try:
        done = run_within(command, image, env, cpu_seconds=timeout_seconds)
    except FileNotFoundError as exc:
        raise OcrError(
            f"the tesseract binary ({tesseract_cmd}) is not installed; "
            f"install it with: {TESSERACT_INSTALL_COMMAND}"
        ) from exc
    if done.over_budget:
        # stopped (or done past its budget): nothing of the page is kept
        raise PageOverBudget(
            f"tesseract {done.over_budget} on one page", budget_seconds=timeout_seconds
        )
    stderr = done.stderr.decode("utf-8", "replace")
    if "Failed loading language" in stderr or "couldn't load any languages" in stderr:
        # Tesseract carries on with the languages it found; a silently worse reading
        # of German invoices is worse than a clear stop.
        raise OcrError(
            f"tesseract is missing language data for {languages!r}; "
            f"install it with: {TESSERACT_INSTALL_COMMAND}"
        )
    if done.returncode != 0:
        detail = stderr.strip().splitlines()[-3:]
        if any("pixRead" in line or "Error during processing" in line for line in detail):
            raise UnreadableImageError(
                f"tesseract could not decode the image ({' / '.join(detail)})"
            )
        raise OcrError(f"tesseract failed with exit code {done.returncode}: {' / '.join(detail)}")
    return _parse_tsv(done.stdout.decode("utf-8", "replace"))


def _parse_tsv(tsv: str) -> TesseractPage:
    width = height = 0
    words: list[OcrWord] = []
    for row in tsv.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12:
            continue
        level = int(cols[0])
        if level == 1:
            width, height = int(cols[8]), int(cols[9])
        elif level == 5 and cols[11].strip() and float(cols[10]) >= 0:
            words.append(
                OcrWord(
                    text=cols[11].strip(),
                    confidence=float(cols[10]) / 100.0,
                    left=int(cols[6]),
                    top=int(cols[7]),
                    width=int(cols[8]),
                    height=int(cols[9]),
                    block=int(cols[2]),
                    paragraph=int(cols[3]),
                    line=int(cols[4]),
                )
            )
    return TesseractPage(width=width, height=height, words=tuple(words))


_BOX_LINE = re.compile(
    r"^Page\s+(\d+) (MediaBox|CropBox):\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s*$",
    re.MULTILINE,
)


def _pdf_info(
    pdf: Path, first: int, last: int, timeout_seconds: float
) -> tuple[int | None, list[tuple[int, float, float]]]:
    """The page count and the (page, width, height in points) of pages first..last, from
    pdfinfo; (None, []) when it cannot tell (pdftoppm then says why).

    The size is the larger of a page's MediaBox and CropBox on each side. pdfinfo's own "size"
    line is the CropBox, but pdftoppm renders the MediaBox: a 600-byte PDF with 5000 pt media
    boxes behind A4 crop boxes passed a check on the CropBox and took pdftoppm minutes and GBs.
    """
    command = ["pdfinfo", "-box", "-f", str(first), "-l", str(last), str(pdf)]
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout_seconds, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None, []
    if done.returncode != 0:
        return None, []
    out = done.stdout.decode("latin-1")
    count = re.search(r"^Pages:\s+(\d+)\s*$", out, re.MULTILINE)
    sides: dict[int, tuple[float, float]] = {}
    for m in re.finditer(r"^Page\s+(\d+) size:\s+([\d.]+) x ([\d.]+) pts", out, re.MULTILINE):
        sides[int(m.group(1))] = (float(m.group(2)), float(m.group(3)))
    for m in _BOX_LINE.finditer(out):
        x1, y1, x2, y2 = (float(m.group(i)) for i in range(3, 7))
        width, height = sides.get(int(m.group(1)), (0.0, 0.0))
        sides[int(m.group(1))] = (max(width, abs(x2 - x1)), max(height, abs(y2 - y1)))
    sizes = [(number, width, height) for number, (width, height) in sorted(sides.items())]
    return (int(count.group(1)) if count else None), sizes


@contextmanager
def rendered_pages(
    data: bytes,
    dpi: int = 300,
    *,
    first_page: int | None = None,
    last_page: int | None = None,
    timeout_seconds: float = 300.0,
    max_pages: int = MAX_OCR_PAGES,
) -> Iterator[list[Path]]:
    """Render PDF pages to grayscale PNG files (in page order) in a temporary directory.

    The files live until the block ends, so a caller can OCR one page at a time instead of holding
    every page image in memory. A range of more than `max_pages` pages, or a page with a side over
    `limits.MAX_OCR_PAGE_SIDE_PT`, is refused before anything is rendered: a scan with thousands
    of pages, or one poster-sized page, would otherwise hold up the whole batch.
    """
    if not 36 <= dpi <= 1200:
        raise ValueError(f"dpi must be between 36 and 1200, not {dpi}")
    first = max(1, first_page or 1)
    with tempfile.TemporaryDirectory(prefix="invoice-ocr-") as tmp:
        pdf = Path(tmp) / "document.pdf"
        pdf.write_bytes(data)
        window = last_page if last_page is not None else first + max_pages
        page_count, sizes = _pdf_info(pdf, first, min(window, first + max_pages), timeout_seconds)
        last = last_page if last_page is not None else page_count
        if last is not None and page_count is not None:
            last = min(last, page_count)
        if last is not None and last - first + 1 > max_pages:
            pages_label = f"{page_count} pages" if last_page is None else f"pages {first}-{last}"
            raise OcrError(f"the scan has {pages_label}; OCR reads at most {max_pages} pages")
        for number, width, height in sizes:
            if max(width, height) > MAX_OCR_PAGE_SIDE_PT and (last is None or number <= last):
                raise OcrError(
                    f"page {number} of the scan is {width:g} x {height:g} pt "
                    f"({width / 72 * 2.54:.0f} x {height / 72 * 2.54:.0f} cm); OCR reads pages "
                    f"up to {MAX_OCR_PAGE_SIDE_PT} pt ({MAX_OCR_PAGE_SIDE_PT / 72 * 2.54:.0f} cm) "
                    "on a side"
                )
        # Also bounded when pdfinfo could not count the pages.
        last = min(last, first + max_pages - 1) if last is not None else first + max_pages - 1
        # PNG rather than pdftoppm's default PGM: Google Vision does not accept PGM.
        command = ["pdftoppm", "-r", str(dpi), "-gray", "-png", "-f", str(first), "-l", str(last)]
        # Never a bitmap larger than the largest page allowed, should pdfinfo have missed a size:
        # pdftoppm renders only this window (a smaller page is rendered whole, byte for byte).
        side_px = str(math.ceil(MAX_OCR_PAGE_SIDE_PT / 72 * dpi) + 1)
        command += ["-x", "0", "-y", "0", "-W", side_px, "-H", side_px]
        command += [str(pdf), str(Path(tmp) / "page")]
        try:
            done = subprocess.run(command, capture_output=True, timeout=timeout_seconds)
        except FileNotFoundError as exc:
            raise OcrError(
                f"pdftoppm is not installed; install it with: {POPPLER_INSTALL_COMMAND}"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise OcrError(f"rasterising the PDF took longer than {timeout_seconds:g} s") from exc
        if done.returncode != 0:
            detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-2:]
            raise OcrError(
                f"could not rasterise the PDF: {' / '.join(detail) or 'pdftoppm failed'}"
            )
        # pdftoppm zero-pads page numbers to the page count's width (page-01.png ...).
        pages = sorted(Path(tmp).glob("page-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        if not pages:
            raise OcrError("the PDF has no pages in the requested range")
        yield pages


def rasterise_pdf(
    data: bytes,
    dpi: int = 300,
    *,
    first_page: int | None = None,
    last_page: int | None = None,
    timeout_seconds: float = 300.0,
) -> list[bytes]:
    """Render PDF pages to grayscale PNGs (one per page, in page order) with poppler's pdftoppm.

    At most `limits.MAX_OCR_PAGES` pages; a longer range raises OcrError (see `rendered_pages`).
    """
    with rendered_pages(
        data, dpi, first_page=first_page, last_page=last_page, timeout_seconds=timeout_seconds
    ) as pages:
        return [page.read_bytes() for page in pages]


@dataclass(kw_only=True)
class OcrReader(abc.ABC):
    """Reads text from page images and PDFs. Subclasses pick the engine; callers never need to know."""

    pdf_page_workers: int | None = field(
        default=None,
        metadata={"description": "Pages of one PDF read side by side; empty: the engine's own"},
    )
    rasterise_timeout_seconds: float = field(
        default=300.0, metadata={"description": "Time limit to render a PDF's pages as images"}
    )

    @abc.abstractmethod
    def ocr_image(self, data: bytes) -> OcrPage:
        """OCR one page image (PNG, JPEG, TIFF ...)."""

    def ocr_pdf(self, data: bytes, dpi: int = 300) -> list[OcrPage]:
        """Rasterise every page and OCR it; pages come back in document order.

        A PDF of more than `limits.MAX_OCR_PAGES` pages raises OcrError before any page is
        rendered; the same bound holds for every engine.
        """
        with rendered_pages(data, dpi, timeout_seconds=self.rasterise_timeout_seconds) as pages:
            return self.ocr_images([page.read_bytes for page in pages])

    def ocr_images(self, pages: list[Callable[[], bytes]]) -> list[OcrPage]:
        """OCR a document's pages (each given by a function that loads its image), side by side
        on a bounded pool; pages come back in document order. A page over its time budget
        stops the document: PageOverBudget names the page, the pages not begun are not read."""
        workers = min(len(pages), self.pdf_page_workers or self._default_page_workers())

        def read(number: int) -> OcrPage:
            try:
                return self.ocr_image(pages[number - 1]())
            except PageOverBudget as exc:
                raise PageOverBudget(
                    f"page {number} of {len(pages)} was not read within its "
                    f"{exc.budget_seconds:g} s budget",
                    budget_seconds=exc.budget_seconds,
                    page=number,
                ) from exc

        numbers = range(1, len(pages) + 1)
        if workers <= 1:
            return [read(number) for number in numbers]
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ocr-page")
        try:
            return list(pool.map(read, numbers))
        finally:
            # after a page failed, the pages still waiting are not begun
            pool.shutdown(wait=True, cancel_futures=True)

    def _default_page_workers(self) -> int:
        return 1


@dataclass(kw_only=True)
class TesseractReader(OcrReader):
    """Tesseract on this machine, the default engine.

    `psm` 4 (one column of text lines of varying size) read the corpus invoices best:
    94.9 % of words and all 61 amounts, against 90.9 % and 59 for psm 6, at the same speed.
    `preparation` is what is done to a page first (`resources.ocr.pages.Preparation.parse`:
    "none" or steps such as "deskew"); docs/intake.md, "Scans", has the measurements behind
    the default. `page_timeout_seconds` is a page's time budget in seconds of CPU: tesseract is
    stopped there and the document goes to review naming the page. At most one tesseract per core
    runs in this process, whatever the number of documents read at once; the wait for a core and
    a busy machine do not count against a page's budget.
    """

    languages: str = field(
        default="deu+eng", metadata={"description": "Tesseract's languages, e.g. deu+eng"}
    )
    psm: int = field(default=4, metadata={"description": "Tesseract's page segmentation mode"})
    page_timeout_seconds: float = field(
        default=DEFAULT_PAGE_BUDGET_SECONDS,
        metadata={
            "description": "A page's budget in seconds of CPU "
            "(INVOICE_PIPELINES_OCR_PAGE_BUDGET_SECONDS); over it the document goes to review"
        },
    )
    tesseract_cmd: str = field(
        default="tesseract", metadata={"description": "The tesseract program"}
    )
    preparation: str = field(
        default=DEFAULT_PREPARATION,
        metadata={
            "description": "What is done to a page before it is read: none, or steps such as "
            "dpi300,deskew,denoise,otsu (INVOICE_PIPELINES_OCR_PREPARATION)"
        },
    )
    variables: list[str] = field(
        default_factory=list,
        metadata={
            "description": "Tesseract's own settings as name=value (preserve_interword_spaces=1)"
        },
    )

    def ocr_image(self, data: bytes) -> OcrPage:
        prepared = self._prepared(data)
        with engine_slot():
            page = tesseract_tsv(
                prepared,
                languages=self.languages,
                psm=self.psm,
                timeout_seconds=self.page_timeout_seconds,
                tesseract_cmd=self.tesseract_cmd,
                variables=tuple(self.variables),
            )
        return OcrPage(
            text=page.text,
            confidence=page.confidence,
            engine="tesseract",
            words=page.positioned_words(),
        )

    def _prepared(self, data: bytes) -> bytes:
        preparation = Preparation.parse(self.preparation)
        if preparation == Preparation.none() or not looks_like_image(data):
            return data  # what is no image is refused by tesseract_tsv, with its sentence
        try:
            return prepare_page(data, preparation)
        except (OSError, ValueError) as exc:  # Pillow cannot decode it: neither could tesseract
            raise UnreadableImageError(f"the image could not be decoded ({exc})") from exc

    def _default_page_workers(self) -> int:
        # Each tesseract runs single-threaded, so one page per core keeps every core busy.
        return available_cores()


@dataclass(kw_only=True)
class GoogleVisionReader(OcrReader):
    """Google Cloud Vision DOCUMENT_TEXT_DETECTION over its REST API.

    PDFs are rasterised here and sent page by page as images: Vision reads PDFs only
    through files:asyncBatchAnnotate, which needs input and output in Cloud Storage,
    and that is not available to an offline pipeline.

    Credentials: `credentials_file` (a service-account JSON), `anonymous` (for the local
    stand-in), or else Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS),
    looked up on first use, never at import.
    """

    api_endpoint: str | None = field(
        default=None,
        metadata={
            "description": "Vision's endpoint (INVOICE_PIPELINES_VISION_ENDPOINT); empty: "
            "Google's own"
        },
    )
    credentials_file: str | None = field(
        default=None,
        metadata={
            "description": "Service-account JSON (GOOGLE_APPLICATION_CREDENTIALS); empty: "
            "Application Default Credentials"
        },
    )
    anonymous: bool = field(
        default=False, metadata={"description": "No credentials (the local stand-in only)"}
    )
    language_hints: list[str] = field(
        default_factory=lambda: ["de", "en"],
        metadata={"description": "Languages the pages are in"},
    )
    timeout_seconds: float = field(
        default=60.0, metadata={"description": "Time limit per page request"}
    )
    max_attempts: int = field(
        default=5, metadata={"description": "Attempts per page on a temporary failure"}
    )
    backoff_initial_seconds: float = field(
        default=1.0,
        metadata={
            "description": "Most wait after the first failure, doubled after each further one"
        },
    )
    backoff_max_seconds: float = field(
        default=30.0, metadata={"description": "Longest wait between attempts"}
    )

    _client: Any = field(default=None, init=False, repr=False, compare=False)
    _client_lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def ocr_image(self, data: bytes) -> OcrPage:
        from google.api_core import exceptions as api_exceptions
        from google.cloud import vision

        client = self._vision_client()
        image = vision.Image(content=data)
        context = vision.ImageContext(language_hints=list(self.language_hints))
        attempts = max(1, self.max_attempts)
        for attempt in range(1, attempts + 1):
            try:
                response = client.document_text_detection(
                    image=image, image_context=context, retry=None, timeout=self.timeout_seconds
                )
                break
            except Exception as exc:  # classified below; anything else is a bug and re-raised
                if _is_unreachable(exc):
                    # The request never left this machine: a wrong endpoint or no network.
                    # Retrying only delays the message, so say it now.
                    raise OcrError(
                        f"cannot reach Google Cloud Vision at {self._endpoint_label()}: {exc}"
                    ) from exc
                if not _is_transient(exc):
                    if isinstance(exc, api_exceptions.GoogleAPICallError):
                        raise OcrError(f"Google Cloud Vision failed: {exc}") from exc
                    raise
                if attempt == attempts:
                    raise OcrError(
                        f"Google Cloud Vision still failing after {attempts} attempts: {exc}"
                    ) from exc
                time.sleep(self._backoff_seconds(attempt, exc))
        if response.error.code or response.error.message:
            raise UnreadableImageError(
                f"Google Cloud Vision could not read the image: {response.error.message} "
                f"(code {response.error.code})"
            )
        annotation = response.full_text_annotation
        words = [
            word
            for page in annotation.pages
            for block in page.blocks
            for paragraph in block.paragraphs
            for word in paragraph.words
        ]
        confidences = [word.confidence for word in words]
        confidence = sum(confidences) / len(confidences) if confidences else None
        positioned = tuple(filter(None, map(_vision_word, words)))
        return OcrPage(annotation.text, confidence, "google-vision", words=positioned)

    def _default_page_workers(self) -> int:
        # Pages wait on the network, not on our CPU; a few in flight stay well below quota.
        return 4

    def _endpoint_label(self) -> str:
        return self.api_endpoint or "vision.googleapis.com"

    def _backoff_seconds(self, attempt: int, exc: Exception) -> float:
        ceiling = min(self.backoff_max_seconds, self.backoff_initial_seconds * 2 ** (attempt - 1))
        # Half fixed, half random: clients that failed together do not retry together.
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)
        retry_after = _retry_after_seconds(exc)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max_seconds))
        return delay

    def _vision_client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = self._build_client()
            return self._client

    def _build_client(self) -> Any:
        import google.auth
        from google.auth import exceptions as auth_exceptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import vision

        if self.anonymous and self.credentials_file:
            raise OcrError(
                "GoogleVisionOcrEngine: set either anonymous or credentials_file, not both"
            )
        credentials: Any = None
        try:
            if self.anonymous:
                credentials = AnonymousCredentials()
            elif self.credentials_file:
                credentials, _ = google.auth.load_credentials_from_file(
                    self.credentials_file, scopes=VISION_SCOPES
                )
            client_options = {"api_endpoint": self.api_endpoint} if self.api_endpoint else None
            # REST, not gRPC: an api_endpoint of "http://host:port" then talks plain HTTP,
            # which is how the local stand-in is reached (see devtools/standins/vision.py).
            return vision.ImageAnnotatorClient(
                credentials=credentials, transport="rest", client_options=client_options
            )
        except auth_exceptions.DefaultCredentialsError as exc:
            source = self.credentials_file or "Application Default Credentials"
            raise OcrError(
                f"no usable Google credentials ({source}): {str(exc).rstrip('.')}. Set credentials_file or "
                "GOOGLE_APPLICATION_CREDENTIALS to a service-account JSON file"
            ) from exc


def _vision_word(word: Any) -> PositionedWord | None:
    """A word of Vision's answer with the box around its corners; None without text or box."""
    text = "".join(symbol.text for symbol in word.symbols)
    corners = list(word.bounding_box.vertices)
    if not text or not corners:
        return None
    xs, ys = [corner.x for corner in corners], [corner.y for corner in corners]
    return PositionedWord(text, min(xs), min(ys), max(xs), max(ys), word.confidence)


def _is_unreachable(exc: Exception) -> bool:
    """True when no connection to the endpoint could be opened (refused, DNS, no route)."""
    from invoice_pipelines.resources.http_faults import never_connected

    return never_connected(exc)


def _is_transient(exc: Exception) -> bool:
    """Errors worth another attempt: quota (429), UNAVAILABLE (503), deadlines, dropped replies."""
    import requests
    from google.api_core import exceptions as api_exceptions

    return isinstance(
        exc,
        api_exceptions.TooManyRequests
        | api_exceptions.ServiceUnavailable
        | api_exceptions.GatewayTimeout
        | requests.exceptions.Timeout
        | requests.exceptions.ConnectionError,
    )


def _retry_after_seconds(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    value = getattr(response, "headers", {}).get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date; rare enough that our own backoff is fine
