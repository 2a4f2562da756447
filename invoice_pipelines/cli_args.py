"""argparse types for the `invoice-pipelines` commands' numeric and list flags.

Each one turns a malformed value into argparse's one-line error and exit code 2 ("argument
--invoices: 'abc' is not a list of ids such as 12,13"), before the command touches anything:
`--invoices abc`, `--connections 0`, `--limit 99999999999999999999999` or `--per-second NaN`
once ended in a traceback (or, worse, did something).
"""

from __future__ import annotations

import argparse
import math
from datetime import date
from decimal import Decimal, InvalidOperation

# The largest id or count a flag takes: PostgreSQL's bigint (and SQLite's INTEGER).
MAX_WHOLE_NUMBER = 2**63 - 1


def _whole(text: str, *, least: int, what: str, most: int = MAX_WHOLE_NUMBER) -> int:
    value = text.strip()
    if not value.lstrip("-").isdigit() or not value.isascii():
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    number = int(value)
    if not least <= number <= most:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return number


def positive_int(text: str) -> int:
    """A whole number from 1 up (counts, sizes, ids)."""
    return _whole(text, least=1, what="a whole number of 1 or more")


def non_negative_int(text: str) -> int:
    """A whole number from 0 up (days, seeds)."""
    return _whole(text, least=0, what="a whole number of 0 or more")


def port(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535."""
    return _whole(text, least=0, most=65535, what="a port from 0 to 65535")


def id_list(text: str) -> list[int]:
    """`"12,13"` -> [12, 13]: ids, each a whole number of 1 or more; "" -> []."""
    parts = [part.strip() for part in text.split(",")]
    if parts == [""]:
        return []
    what = "a list of ids such as 12,13"
    if any(not part for part in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    try:
        return [_whole(part, least=1, what=what) for part in parts]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def positive_number(text: str) -> float:
    """A finite number above 0 (rates such as messages per second)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number above 0")
    return value


def percent(text: str) -> str:
    """A percentage from -100 to 100 with at most 4 decimals, e.g. 1.27 or -0.88; kept as text."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if (
        not value.is_finite()
        or not -100 <= value <= 100
        or value != value.quantize(Decimal("0.0001"))
    ):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a percentage from -100 to 100 (e.g. 1.27)"
        )
    return text.strip()


def day(text: str) -> date:
    """A day YYYY-MM-DD (whether it is a plausible one is the command's to say)."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None
