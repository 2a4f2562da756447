"""RapidOCR, the default local engine: PP-OCR's text detection and recognition models, which come
inside the `rapidocr` wheel from PyPI, on onnxruntime's CPU build.

Chosen by measurement (docs/intake.md, "RapidOCR, the default engine"): on the bench's scans of
68 public invoices held out from all tuning it read 97.4 % of fields and sent 52 straight
through, against 94.6 % and 23 for Tesseract on the same scans, with none VALIDATED wrong on
either. It costs about 2.5 s of CPU a page against Tesseract's 1.7, and far more memory.

Each page is read by a process of its own (`rapid_page.py`), exactly as a tesseract is: held to
the page's budget in seconds of CPU (the kernel stops it past it, `readers.run_within`), at most
one per core in this process and no more than the container's memory holds (`page_slots`), the
pages of a document side by side. A page the engine stopped on or that came back past its budget
raises PageOverBudget; bytes that are no image, UnreadableImageError.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from invoice_pipelines.resources.ocr.rapid_page import NOT_AN_IMAGE
from invoice_pipelines.resources.ocr.readers import (
    DEFAULT_PAGE_BUDGET_SECONDS,
    OcrError,
    OcrPage,
    OcrReader,
    PageOverBudget,
    Slots,
    UnreadableImageError,
    available_cores,
    engine_slot,
    require_image,
    run_within,
)
from invoice_pipelines.resources.ocr.words import PositionedWord

ENGINE = "rapidocr"
# what one page's process may take: it peaks at about 0.8 GB (the detection model on a page of
# 2,000 pixels), against Tesseract's fraction of that; and what the reading process keeps for
# itself (docs/intake.md, "RapidOCR, the default engine")
PAGE_MEMORY_BYTES = 1 << 30
RESERVED_BYTES = 1 << 29
# the container's memory limit, cgroup v2 then v1 (no file, or "max": no limit)
MEMORY_LIMIT_FILES = (
    Path("/sys/fs/cgroup/memory.max"),
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
)


def memory_limit(files: tuple[Path, ...] = MEMORY_LIMIT_FILES) -> int | None:
    """The memory this process's container may use, in bytes; None without a limit."""
    for path in files:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        # cgroup v1 writes "no limit" as a number near 2**63
        return int(text) if text.isdigit() and int(text) < 1 << 60 else None
    return None


def page_slots(cores: int, limit: int | None) -> int:
    """How many pages RapidOCR reads at once in one process: one per core, and no more than
    the container's memory holds (a run pod of 2 GiB on a node of 16 cores reads one page at a
    time, instead of being killed for its memory)."""
    if limit is None:
        return max(1, cores)
    return max(1, min(cores, (limit - RESERVED_BYTES) // PAGE_MEMORY_BYTES))


_memory_slot = Slots(lambda: page_slots(available_cores(), memory_limit())).held


def page_command(python: str = sys.executable) -> list[str]:
    """The program that reads one page (rapid_page.py), as the reader runs it."""
    return [python, "-m", "invoice_pipelines.resources.ocr.rapid_page"]


def rapid_page(image: bytes, *, cpu_seconds: float, python: str = sys.executable) -> OcrPage:
    """One page image read by RapidOCR in its own process, within `cpu_seconds` of CPU."""
    require_image(image)
    # one thread each: pages run side by side, one per core (engine_slot)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_THREAD_LIMIT": "1"}
    done = run_within(page_command(python), image, env, cpu_seconds=cpu_seconds)
    if done.over_budget:
        raise PageOverBudget(f"RapidOCR {done.over_budget} on one page", budget_seconds=cpu_seconds)
    stderr = done.stderr.decode("utf-8", "replace").strip()
    if done.returncode == NOT_AN_IMAGE:
        raise UnreadableImageError(stderr.splitlines()[-1] if stderr else "not an image")
    if done.returncode != 0:
        detail = " / ".join(stderr.splitlines()[-3:])
        raise OcrError(f"RapidOCR failed with exit code {done.returncode}: {detail}")
    try:
        lines = json.loads(done.stdout)["lines"]
    except (ValueError, KeyError, TypeError) as exc:
        raise OcrError(f"RapidOCR gave no page ({exc})") from exc
    return page_of_lines(lines)


def page_of_lines(lines: list[list[list]]) -> OcrPage:
    """The page `rapid_page.py` printed: its words with their boxes, each in the engine's own
    text line (so the page's slope is measured along them, words.slope); the text is the lines
    in the engine's order, and the confidence the mean of the words'."""
    words = tuple(
        PositionedWord(
            text=str(text),
            left=int(left),
            top=int(top),
            right=int(right),
            bottom=int(bottom),
            confidence=float(confidence),
            line=(number,),
        )
        for number, line in enumerate(lines)
        for text, confidence, left, top, right, bottom in line
    )
    confidences = [word.confidence for word in words if word.confidence is not None]
    return OcrPage(
        text="\n".join(" ".join(str(word[0]) for word in line) for line in lines),
        confidence=sum(confidences) / len(confidences) if confidences else None,
        engine=ENGINE,
        words=words,
    )


@dataclass(kw_only=True)
class RapidOcrReader(OcrReader):
    """RapidOCR on this machine (the default engine): each page in a process of its own, held to
    `page_timeout_seconds` of CPU; over it the document goes to review naming the page. At most
    one page per core runs in this process, and no more than the container's memory holds
    (`page_slots`), whatever the number of documents read at once."""

    page_timeout_seconds: float = field(
        default=DEFAULT_PAGE_BUDGET_SECONDS,
        metadata={
            "description": "A page's budget in seconds of CPU "
            "(INVOICE_PIPELINES_OCR_PAGE_BUDGET_SECONDS); over it the document goes to review"
        },
    )

    def ocr_image(self, data: bytes) -> OcrPage:
        with _memory_slot(), engine_slot():
            return rapid_page(data, cpu_seconds=self.page_timeout_seconds)

    def _default_page_workers(self) -> int:
        return page_slots(available_cores(), memory_limit())
