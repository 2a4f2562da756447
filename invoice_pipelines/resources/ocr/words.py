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
from dataclasses import dataclass

# at most this many characters in a laid-out line: a stray box at a far edge does not make a
# line of thousands of spaces
MAX_COLUMNS = 400


@dataclass(frozen=True)
class PositionedWord:
    """One word read from a page and its box in pixels (left, top, right, bottom)."""

    text: str
    left: int
    top: int
    right: int
    bottom: int
    confidence: float | None = None

    @property
    def middle(self) -> float:
        return (self.top + self.bottom) / 2


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


def layout_lines(words: Sequence[PositionedWord]) -> list[str]:
    """The words as text lines, each word at the character column of its place on the page (the
    leftmost word of the page at column 0) and at least one space after the word before it."""
    width = character_width(words)
    margin = min((w.left for w in words), default=0)
    lines: list[str] = []
    for row in rows(words):
        line = ""
        for word in row:
            column = min(round((word.left - margin) / width), MAX_COLUMNS)
            gap = max(column - len(line), 1 if line else 0)
            line += " " * gap + word.text
        lines.append(line)
    return lines
