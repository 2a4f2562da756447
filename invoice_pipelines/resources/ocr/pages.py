"""Page preparation before OCR: a scan as it comes (turned a little, grey, specked, at whatever
resolution the scanner used) made into the page an OCR engine reads best. Pillow only (it comes
with fpdf2, a runtime dependency); no image library of its own.

- resolution: a page below `target_dpi` is scaled up to it (Tesseract's models are trained on
  text of about 20-30 px per line; 200 dpi text is smaller than that). Without a stated
  resolution, the page is taken for A4 or Letter at the width it has.
- deskew: the angle is measured, not guessed: the page's ink is turned by candidate angles and
  the one whose rows of ink are sharpest (text lines lie flat) wins; a page turned by less than
  `MIN_SKEW_DEGREES` is left as it is.
- denoise: a 3 x 3 median removes specks a pixel or two across and keeps strokes.
- binarise (off by default): a global Otsu threshold; Tesseract binarises itself, so this is a
  measured option, not a rule (docs/intake.md, "Scans").

`prepare_page` takes and gives image bytes, so any engine can be handed the prepared page.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

# below this a turn does not change what Tesseract reads; rotating would only blur the page
MIN_SKEW_DEGREES = 0.15
MAX_SKEW_DEGREES = 5.0
# the width (in pixels) at which the angle is measured: enough for text lines, cheap to turn
_MEASURE_WIDTH = 900
# an A4 or Letter page is this wide in inches (used when the image states no resolution)
_PAGE_WIDTH_INCHES = 8.3


@dataclass(frozen=True)
class Preparation:
    """What is done to a page before OCR; `Preparation()` is the measured default."""

    target_dpi: int = 300
    deskew: bool = True
    denoise: bool = False
    binarise: bool = False

    @classmethod
    def none(cls) -> Preparation:
        """The page as it came (what the readers did before page preparation)."""
        return cls(target_dpi=0, deskew=False, denoise=False, binarise=False)

    @classmethod
    def parse(cls, spec: str) -> Preparation:
        """From a comma list such as "dpi300,deskew,denoise,otsu" or "none" (bench, settings);
        ValueError names an unknown step."""
        steps = [step.strip().lower() for step in spec.split(",") if step.strip()]
        if steps in ([], ["none"]):
            return cls.none()
        target, flags = 0, set()
        for step in steps:
            if step.startswith("dpi") and step[3:].isdigit():
                target = int(step[3:])
            elif step in ("deskew", "denoise", "otsu"):
                flags.add(step)
            else:
                raise ValueError(
                    f"{step!r} is not a page preparation step; use dpiNNN, deskew, denoise, otsu"
                )
        return cls(target, "deskew" in flags, "denoise" in flags, "otsu" in flags)

    def label(self) -> str:
        steps = [f"dpi{self.target_dpi}"] if self.target_dpi else []
        steps += [name for name, on in self._flags() if on]
        return ",".join(steps) or "none"

    def _flags(self) -> tuple[tuple[str, bool], ...]:
        return (("deskew", self.deskew), ("denoise", self.denoise), ("otsu", self.binarise))


def prepare_page(data: bytes, preparation: Preparation) -> bytes:
    """The page image prepared as `preparation` says, as TIFF; the bytes unchanged when it asks
    for nothing. Raises PIL.UnidentifiedImageError for bytes that are no image."""
    if preparation == Preparation.none():
        return data
    from PIL import Image

    with Image.open(io.BytesIO(data)) as opened:
        dpi = _stated_dpi(opened)
        page = opened.convert("L")
    dpi = dpi or round(page.width / _PAGE_WIDTH_INCHES)
    if preparation.target_dpi and dpi < preparation.target_dpi * 0.9:
        scale = preparation.target_dpi / dpi
        size = (round(page.width * scale), round(page.height * scale))
        page = page.resize(size, Image.Resampling.LANCZOS)
        dpi = preparation.target_dpi
    if preparation.denoise:
        page = _denoised(page)
    if preparation.deskew:
        angle = skew_degrees(page)
        if abs(angle) >= MIN_SKEW_DEGREES:
            paper = _paper_grey(page)
            page = page.rotate(-angle, resample=Image.Resampling.BICUBIC, fillcolor=paper)
    if preparation.binarise:
        threshold = otsu_threshold(page.histogram())
        page = page.point(lambda v: 255 if v > threshold else 0)
    out = io.BytesIO()
    # uncompressed TIFF: it keeps the resolution for the engine and takes a tenth of PNG's time
    # to write (0.07 s against 0.64 s for an A4 page at 200 dpi)
    page.save(out, format="TIFF", dpi=(dpi, dpi))
    return out.getvalue()


def _stated_dpi(image) -> int | None:
    dpi = image.info.get("dpi")
    if not dpi:
        return None
    value = round(float(dpi[0]))
    # 72 and 96 are what writers put when they know nothing; a scan says its own resolution
    return value if 100 <= value <= 1200 else None


def _denoised(page):
    from PIL import ImageFilter

    return page.filter(ImageFilter.MedianFilter(3))


def _paper_grey(page) -> int:
    """The grey of the paper: the brightest level that a tenth of the pixels reach."""
    histogram = page.histogram()
    total, seen = sum(histogram), 0
    for level in range(255, -1, -1):
        seen += histogram[level]
        if seen >= total / 10:
            return level
    return 255


def skew_degrees(page) -> float:
    """The angle (degrees, counter-clockwise positive) by which the page's text lines are turned:
    half-degree steps over +-MAX_SKEW_DEGREES, then tenths around the best; 0.0 for a blank
    page."""
    from PIL import Image, ImageOps

    scale = min(1.0, _MEASURE_WIDTH / page.width)
    small = page.resize((max(1, round(page.width * scale)), max(1, round(page.height * scale))))
    threshold = otsu_threshold(small.histogram())
    ink = ImageOps.invert(small.point(lambda v: 255 if v > threshold else 0))
    if ink.getbbox() is None:
        return 0.0

    def sharpness(angle: float) -> float:
        turned = ink.rotate(-angle, resample=Image.Resampling.NEAREST, fillcolor=0)
        rows = turned.resize((1, turned.height), Image.Resampling.BOX).tobytes()
        return float(sum((a - b) ** 2 for a, b in zip(rows, rows[1:], strict=False)))

    best = max(_steps(-MAX_SKEW_DEGREES, MAX_SKEW_DEGREES, 0.5), key=sharpness)
    # to a tenth of a degree: what is left (0.05 at most) changes nothing an engine reads
    best = max(_steps(best - 0.4, best + 0.4, 0.1), key=sharpness)
    return round(best, 2)


def _steps(low: float, high: float, step: float) -> list[float]:
    count = round((high - low) / step)
    return [low + i * step for i in range(count + 1)]


def otsu_threshold(histogram: list[int]) -> int:
    """Otsu's threshold of a 256-level histogram: the level that best splits ink from paper."""
    levels = histogram[:256]
    total = sum(levels)
    if not total:
        return 127
    weighted_all = sum(level * count for level, count in enumerate(levels))
    below = weighted_below = 0
    best_level, best_spread = 127, -1.0
    for level, count in enumerate(levels):
        below += count
        if below == 0 or below == total:
            continue
        weighted_below += level * count
        mean_below = weighted_below / below
        mean_above = (weighted_all - weighted_below) / (total - below)
        spread = below * (total - below) * (mean_below - mean_above) ** 2
        if spread > best_spread:
            best_level, best_spread = level, spread
    return best_level
