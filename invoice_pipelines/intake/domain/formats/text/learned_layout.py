"""Where one supplier's values stand on its page, learned from a document a person confirmed, and
the values read back from the next page of that supplier by it.

The text is a page's layout text (`pdftotext -layout`, OCR laid out alike): a line is a row of
the page and a character's column is where it stands across it. A placement keeps, for one field,
the label the confirmed value stood beside (its words as printed, without the digits that change
from invoice to invoice), whether the value stood on the label's line after it (`right`, and how
many values of its kind stood between them: "Umsatzsteuer 19 %  89,87" has the rate first) or
on a line below under it (`below`, how many non-empty lines down, and how far across), and on
which page and in which third of it the label was.

Nothing here is trusted on its own: a value is read by a placement only where its label stands
once on the page (or once in the part of the page where it was learned) and the value there is
one of its kind; everything read still goes through the invoice's own proofs
(intake/domain/proofs.py) like any other reading. Pure functions: no database, no Dagster.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from invoice_pipelines.core.bank_accounts import iban_is_valid
from invoice_pipelines.intake.domain.formats.text.dates import find_dates
from invoice_pipelines.intake.domain.formats.text.numbers import amounts_in

AMOUNTS = ("net_total", "tax_total", "gross_total", "amount_due")
DATES = ("issue_date", "due_date")
# the fields a layout is learned for, in the order they are learned and shown
FIELDS = ("number", *DATES, *AMOUNTS, "iban")
RIGHT, BELOW = "right", "below"
REGIONS = ("top", "middle", "bottom")
# how many non-empty lines under its label a value may stand, and how far (characters) to its
# side and still be under it
MAX_LINES_BELOW = 2
MARGIN = 6
MAX_LABEL_WORDS = 4
MAX_LABEL_CHARS = 120
# a layout-read value is as sure as one the general reader finds beside a label it knows
LAYOUT_CONFIDENCE = 0.9
_CELL = re.compile(r"\S+(?: \S+)*")
_NUMBER = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9][A-Za-z0-9\-/._]{0,40}(?<![\-/._])")
_SEPARATOR = re.compile(r"^[\W_]+$")
_LETTERS = re.compile(r"[^\W\d_]{2,}")


@dataclass(frozen=True)
class Placement:
    """Where one field's value stands relative to its label (see the module's docstring)."""

    field: str
    label: str
    direction: str
    lines_below: int = 0
    column: int = 0
    skip: int = 0
    page: int = 0
    region: str = "top"

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Line:
    text: str
    index: int  # among the page's lines
    page: int
    region: str


# ---------------------------------------------------------------- the page


def _lines(text: str) -> list[_Line]:
    found = []
    for page_number, page in enumerate(text.replace("\r\n", "\n").split("\f")):
        rows = page.split("\n")
        for index, row in enumerate(rows):
            third = min(2, 3 * index // max(1, len(rows)))
            found.append(_Line(row, index, page_number, REGIONS[third]))
    return found


def _spans(field: str, line: str) -> Iterator[tuple[int, int, Any]]:
    """Each value of the field's kind in a line: (start, end, value), left to right."""
    if field in AMOUNTS:
        for amount in amounts_in(line):
            if not amount.qualified:
                yield amount.start, amount.end, abs(amount.value)
    elif field in DATES:
        for start, day, ambiguous in find_dates(line):
            if not ambiguous:
                yield start, start + _date_length(line[start:]), day
    elif field == "iban":
        for match in re.finditer(r"(?<![A-Z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}", line):
            compact = match.group().replace(" ", "")
            for end in range(len(compact), 14, -1):
                if iban_is_valid(compact[:end]):
                    yield match.start(), match.end(), compact[:end]
                    break
    else:
        for match in _NUMBER.finditer(line):
            if any(c.isdigit() for c in match.group()):
                yield match.start(), match.end(), match.group()


def _date_length(rest: str) -> int:
    cell = _CELL.match(rest)
    return len(cell.group()) if cell else 1


def _same(field: str, read: Any, confirmed: Any) -> bool:
    if field in AMOUNTS:
        return isinstance(confirmed, Decimal) and read == abs(confirmed)
    if field == "number":
        return str(read) == str(confirmed).strip()
    if field == "iban":
        return str(read) == str(confirmed).replace(" ", "").upper()
    return read == confirmed


# ---------------------------------------------------------------- learning


def _label_before(prefix: str) -> str:
    """The label a value stands after: the last cell before it, its words up to the value less
    the digits and signs that change from invoice to invoice ("Umsatzsteuer 19 %": Umsatzsteuer),
    at most a few words, back to a separator ("Lieferant GmbH · IBAN": IBAN)."""
    cells = _CELL.findall(prefix)
    if not cells:
        return ""
    words = cells[-1].split(" ")
    while words and not _LETTERS.search(words[-1]):
        words.pop()
    label: list[str] = []
    for word in reversed(words):
        if any(c.isdigit() for c in word) or _SEPARATOR.match(word):
            break
        label.insert(0, word)
        if len(label) == MAX_LABEL_WORDS:
            break
    text = " ".join(label).strip()
    return text if _LETTERS.search(text) and len(text) <= MAX_LABEL_CHARS else ""


def _label_above(lines: list[_Line], at: int, start: int, end: int) -> tuple[str, int, int]:
    """The label a value stands under: a cell with letters on one of the non-empty lines above
    whose columns meet the value's; (label, lines up, the value's column less the label's)."""
    up = 0
    for above in range(at - 1, -1, -1):
        line = lines[above]
        if line.page != lines[at].page:
            break
        if not line.text.strip():
            continue
        up += 1
        if up > MAX_LINES_BELOW:
            break
        for cell in _CELL.finditer(line.text):
            label = cell.group()
            meets = cell.start() - MARGIN <= end and start <= cell.end() + MARGIN
            if meets and _LETTERS.search(label) and not any(c.isdigit() for c in label):
                if len(label) <= MAX_LABEL_CHARS:
                    return label, up, start - cell.start()
    return "", 0, 0


def _candidates(field: str, value: Any, lines: list[_Line]) -> Iterator[Placement]:
    for at, line in enumerate(lines):
        spans = list(_spans(field, line.text))
        for position, (start, end, read) in enumerate(spans):
            if not _same(field, read, value):
                continue
            label = _label_before(line.text[:start])
            if label:
                label_end = line.text.rfind(label, 0, start) + len(label)
                skip = sum(1 for s, _, _ in spans[:position] if s >= label_end)
                yield Placement(
                    field, label, RIGHT, 0, start - label_end, skip, line.page, line.region
                )
                continue
            label, up, column = _label_above(lines, at, start, end)
            if label:
                yield Placement(field, label, BELOW, up, column, 0, line.page, line.region)


def learn_placements(text: str, confirmed: dict[str, Any]) -> dict[str, Placement]:
    """For each field a person confirmed (`confirmed`: field -> value), where its value stands on
    the page: the first placement that reads the confirmed value back from this very page; a
    field whose value is not on the page, or stands beside nothing that reads it back, is not
    learned."""
    lines = _lines(text)
    learned: dict[str, Placement] = {}
    for field in FIELDS:
        value = confirmed.get(field)
        if value is None or value == "" or (isinstance(value, Decimal) and not value):
            continue
        for placement in _candidates(field, value, lines):
            read = _read_one(placement, lines)
            if read is not None and _same(field, read[0], value):
                learned[field] = placement
                break
    return learned


# ---------------------------------------------------------------- reading


def _label_pattern(label: str) -> re.Pattern[str]:
    words = [re.escape(word) for word in label.split(" ")]
    return re.compile(r"(?<![^\W_])" + r"[ \t]+".join(words) + r"(?![^\W_])")


def _right_of(placement: Placement, line: str, label_end: int) -> Any:
    spans = [s for s in _spans(placement.field, line) if s[0] >= label_end]
    cells = _CELL.findall(line[label_end:])
    if len(spans) <= placement.skip or not cells:
        return None
    return spans[placement.skip][2]


def _under(placement: Placement, lines: list[_Line], at: int, start: int, end: int) -> Any:
    down = 0
    for below in range(at + 1, len(lines)):
        if lines[below].page != lines[at].page:
            return None
        if not lines[below].text.strip():
            continue
        down += 1
        if down < placement.lines_below:
            continue
        near = [
            s
            for s in _spans(placement.field, lines[below].text)
            if start - MARGIN <= s[1] and s[0] <= end + MARGIN
        ]
        if not near:
            return None
        best = min(near, key=lambda s: abs(s[0] - start - placement.column))
        return best[2]
    return None


def _read_one(placement: Placement, lines: list[_Line]) -> tuple[Any, str] | None:
    """The value a placement reads from the page and the line it stands in, or None: its label
    must stand once on the page, or once in the page and third where it was learned, and every
    place it stands must give the same value."""
    pattern = _label_pattern(placement.label)
    places = [(at, match) for at, line in enumerate(lines) for match in pattern.finditer(line.text)]
    if len(places) > 1:
        places = [
            (at, m)
            for at, m in places
            if (lines[at].page, lines[at].region) == (placement.page, placement.region)
        ]
    values = []
    for at, match in places:
        if placement.direction == RIGHT:
            value = _right_of(placement, lines[at].text, match.end())
        else:
            value = _under(placement, lines, at, match.start(), match.end())
        if value is None:
            return None
        values.append((value, lines[at].text))
    if not values or any(v != values[0][0] for v, _ in values):
        return None
    return values[0]


def read_placements(
    text: str, placements: list[Placement], make: Callable[[Any, float, str], Any]
) -> dict[str, Any]:
    """The fields the placements read from the page, each made with `make(value, confidence,
    source line)`; a field whose label is not on the page (or not once), or where no value of
    its kind stands by it, is left to the general reader."""
    lines = _lines(text)
    read: dict[str, Any] = {}
    for placement in placements:
        found = _read_one(placement, lines)
        if found is None:
            continue
        value, source = found
        if isinstance(value, Decimal):
            value = value.quantize(Decimal("0.01"))
        if isinstance(value, date | Decimal | str):
            read[placement.field] = make(value, LAYOUT_CONFIDENCE, source)
    return read
