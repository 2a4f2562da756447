"""A scan's words where they stand: OCR's word boxes laid out as text lines whose character
columns follow the page, the shape `pdftotext -layout` gives a text PDF. The intake's table reader
(intake/domain/formats/text/table.py) takes a value's column from where it stands in its line, so
the same reader works on a scan's words as on a text layer's.

Rows are found on the whole page, not in the engine's blocks: an amount at the right margin and
its label at the left are one row even when the engine read them as two blocks. A word's column is
its left edge over the page's typical character width (the median over its words' widths per
character), so words under one another on the page stand under one another in the text.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace

# at most this many characters in a laid-out line: a stray box at a far edge does not make a
# line of thousands of spaces
MAX_COLUMNS = 400
# words at most this many typical characters apart on the page are one phrase: one space between
NEAR = 1.5
# a line that says how the page is turned reaches across at least this many characters
SLOPE_SPAN = 20
# turned further than this (about 6 degrees), the engine's lines are no guide to the rows
MAX_SLOPE = 0.1


@dataclass(frozen=True)
class PositionedWord:
    """One word read from a page and its box in pixels (left, top, right, bottom)."""

    text: str
    left: int
    top: int
    right: int
    bottom: int
    confidence: float | None = None
    # the engine's own text line the word was read in (Tesseract's block, paragraph and line),
    # where the engine says it
    line: tuple[int, ...] | None = None

    @property
    def middle(self) -> float:
        return (self.top + self.bottom) / 2

    @property
    def centre(self) -> float:
        return (self.left + self.right) / 2


def character_width(words: Sequence[PositionedWord]) -> float:
    """The page's typical width of one character in pixels (1.0 without words)."""
    widths = [(w.right - w.left) / len(w.text) for w in words if len(w.text) >= 2]
    widths = [width for width in widths if width > 0]
    return statistics.median(widths) if widths else 1.0


def rows(words: Sequence[PositionedWord]) -> list[list[PositionedWord]]:
    """The words grouped into rows top to bottom, each row left to right: a word joins the row
    whose middle lies within its own height."""
    found: list[list[PositionedWord]] = []
    for word in sorted(words, key=lambda w: (w.middle, w.left)):
        row = found[-1] if found else None
        if row is not None:
            middle = statistics.fmean(w.middle for w in row)
            if word.top <= middle <= word.bottom:
                row.append(word)
                continue
        found.append([word])
    return [sorted(row, key=lambda w: w.left) for row in found]


def slope(words: Sequence[PositionedWord]) -> float:
    """How far the page's text climbs or falls per pixel across (a scan turned by a degree or
    so): the median, over the engine's own lines that reach across at least `SLOPE_SPAN` typical
    characters, of the least-squares slope of their words' middles; 0.0 where no line says it or
    the page is turned further than `MAX_SLOPE` (then the engine's lines are no guide)."""
    width = character_width(words)
    lines: dict[tuple[int, ...], list[PositionedWord]] = {}
    for word in words:
        if word.line is not None:
            lines.setdefault(word.line, []).append(word)
    slopes = []
    for line in lines.values():
        xs = [w.centre for w in line]
        if len(line) < 2 or max(xs) - min(xs) < SLOPE_SPAN * width:
            continue
        mean_x, mean_y = statistics.fmean(xs), statistics.fmean(w.middle for w in line)
        spread = sum((x - mean_x) ** 2 for x in xs)
        slopes.append(
            sum((x - mean_x) * (w.middle - mean_y) for x, w in zip(xs, line, strict=True)) / spread
        )
    found = statistics.median(slopes) if slopes else 0.0
    return found if abs(found) <= MAX_SLOPE else 0.0


def straightened(words: Sequence[PositionedWord]) -> list[PositionedWord]:
    """The words turned back by the page's `slope` about its top left corner: a row's words then
    stand level, and a column's words under one another, however the sheet lay in the scanner."""
    turn = slope(words)
    if not turn:
        return list(words)
    return [
        replace(
            word,
            left=round(word.left + turn * word.middle),
            right=round(word.right + turn * word.middle),
            top=round(word.top - turn * word.centre),
            bottom=round(word.bottom - turn * word.centre),
        )
        for word in words
    ]


def layout_lines(words: Sequence[PositionedWord]) -> list[str]:
    """The words as text lines, each word at the character column of its place on the page (the
    leftmost word of the page at column 0) and at least one space after the word before it; a
    turned page's words are turned back first (`straightened`)."""
    words = straightened(words)
    width = character_width(words)
    margin = min((w.left for w in words), default=0)
    lines: list[str] = []
    for row in rows(words):
        line = ""
        for before, word in zip([None, *row], row, strict=False):
            column = min(round((word.left - margin) / width), MAX_COLUMNS)
            if before is not None and word.left - before.right <= NEAR * width:
                # the next word of a phrase or of one value the engine cut in two ("20261
                # 129-205", an IBAN's groups): one space, as printed, never a column's gap
                line += " " + word.text
                continue
            gap = max(column - len(line), 1 if line else 0)
            line += " " * gap + word.text
        lines.append(line)
    return lines
