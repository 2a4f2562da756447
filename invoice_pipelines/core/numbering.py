"""Invoice numbers: the organization's format (prefix, year, zero-padded counter) and gapless blocks."""

# An organization has one counter for sales invoices. It never resets (not even with a new year), so
# `sequence_number` is unique per organization and the formatted number is too, as long as the
# format contains `{counter}`. A chunk of invoices takes a block of consecutive counters
# `last_value + 1 .. last_value + n`; only a committed transaction moves `last_value`, so a rolled
# back chunk hands its numbers to the next one and no gap appears.

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

FIELDS = ("year", "month", "counter")
MAX_NUMBER_LENGTH = 64  # sales_invoices.invoice_number is VARCHAR(64)
_COUNTER_SPEC = re.compile(r"^(?:0(?P<width>[1-9][0-9]?))?d?$")
_DATE_SPEC = re.compile(r"^(?:0[1-9])?d?$")


class InvalidNumberFormat(ValueError):
    """An organization's invoice number format that cannot produce unique numbers."""


@dataclass(frozen=True)
class NumberFormat:
    """A parsed format such as `RE-{year}-{counter:06d}`, `INV-{counter:05d}` or `{year}/{counter}`.

    Fields: `{year}`, `{month}` (of the invoice date) and `{counter}` (required, exactly once).
    Format specs: none, `d`, or zero padding `0Nd`.
    """

    pattern: str
    counter_width: int

    @classmethod
    def parse(cls, pattern: str) -> NumberFormat:
        counter_width: int | None = None
        try:
            parts = list(string.Formatter().parse(pattern))
        except ValueError as exc:
            raise InvalidNumberFormat(f"invoice number format {pattern!r}: {exc}") from exc
        for _literal, field, spec, conversion in parts:
            if field is None:
                continue
            if field not in FIELDS:
                raise InvalidNumberFormat(
                    f"invoice number format {pattern!r}: unknown field {{{field}}}; "
                    f"use {{year}}, {{month}} and {{counter}}"
                )
            if conversion:
                raise InvalidNumberFormat(
                    f"invoice number format {pattern!r}: no !{conversion} conversions"
                )
            spec = spec or ""
            if field == "counter":
                match = _COUNTER_SPEC.match(spec)
                if counter_width is not None:
                    raise InvalidNumberFormat(
                        f"invoice number format {pattern!r}: {{counter}} appears twice"
                    )
                if match is None:
                    raise InvalidNumberFormat(
                        f"invoice number format {pattern!r}: counter spec {spec!r}; use e.g. {{counter:06d}}"
                    )
                counter_width = int(match.group("width") or 0)
            elif not _DATE_SPEC.match(spec):
                raise InvalidNumberFormat(
                    f"invoice number format {pattern!r}: {field} spec {spec!r}"
                )
        if counter_width is None:
            # without the counter two invoices would get the same number
            raise InvalidNumberFormat(f"invoice number format {pattern!r} has no {{counter}}")
        return cls(pattern=pattern, counter_width=counter_width)

    def format(self, counter: int, issue_date: date) -> str:
        """The invoice number for `counter` on an invoice dated `issue_date`."""
        if counter < 1:
            raise ValueError(f"invoice counters start at 1, got {counter}")
        number = self.pattern.format(year=issue_date.year, month=issue_date.month, counter=counter)
        if len(number) > MAX_NUMBER_LENGTH:
            raise InvalidNumberFormat(
                f"invoice number {number!r} is longer than {MAX_NUMBER_LENGTH} characters"
            )
        return number

    def split(self, issue_date: date) -> tuple[str, int, str]:
        """(prefix, counter width, suffix) for `issue_date`: the number is
        prefix + counter zero-padded to at least `width` digits + suffix.

        Lets SQL build thousands of numbers in one statement (`billing/domain/chunk_postgres.py`).
        """
        values = {"year": issue_date.year, "month": issue_date.month}
        before: list[str] = []
        after: list[str] = []
        target = before
        for literal, field, spec, _conversion in string.Formatter().parse(self.pattern):
            target.append(literal)
            if field == "counter":
                target = after
            elif field is not None:
                target.append(format(values[field], spec or ""))
        prefix, suffix = "".join(before), "".join(after)
        return prefix, self.counter_width, suffix


def number_regex(pattern: str) -> re.Pattern | None:
    """The numbers a format such as `RE-{year}-{counter:06d}` writes, as a regex with the
    counter as a group; None for a format this cannot read."""
    parts = []
    try:
        for literal, name, _spec, _conversion in string.Formatter().parse(pattern):
            parts.append(re.escape(literal))
            if name == "counter":
                parts.append(r"(?P<counter>\d+)")
            elif name in ("year", "month"):
                parts.append(r"\d+")
            elif name is not None:
                return None
        return re.compile("".join(parts))
    except (ValueError, re.error):
        return None


@dataclass(frozen=True)
class NumberBlock:
    """Consecutive counters `first .. first + count - 1` reserved by one transaction."""

    first: int
    count: int

    @property
    def last(self) -> int:
        return self.first + self.count - 1

    def numbers(self) -> range:
        return range(self.first, self.first + self.count)


def reserve_block(last_value: int, count: int) -> tuple[NumberBlock, int]:
    """The block after `last_value` and the sequence's new last value."""
    if count < 0:
        raise ValueError("cannot reserve a negative number of invoice numbers")
    if last_value < 0:
        raise ValueError("a sequence's last value is never negative")
    return NumberBlock(last_value + 1, count), last_value + count


def find_gaps(sequence_numbers: Iterable[int], start: int = 1) -> list[int]:
    """Numbers missing between `start` and the largest number given."""
    seen = set(sequence_numbers)
    if not seen:
        return []
    return [n for n in range(start, max(seen) + 1) if n not in seen]


def is_gapless(sequence_numbers: Iterable[int], start: int = 1) -> bool:
    """True when the numbers are exactly start, start+1, ... with no gap and no duplicate."""
    numbers = sorted(sequence_numbers)
    return numbers == list(range(start, start + len(numbers)))
