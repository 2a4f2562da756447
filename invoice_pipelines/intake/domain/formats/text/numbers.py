"""Money and percentages in running text: "1.234,56", "1,234.56", "1 234", "(3.50)", "104,00-"."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

_SPACES = "\u00a0\u202f\u2009 "
_MINUS = "-\u2212\u2013"
# Currency marks that may sit right against a number; stripped before a number is parsed.
_STRIP_CURRENCY = re.compile(
    r"(€|£|¥|₹|₽|₺|US\$|A\$|C\$|\$|\b(?:EURO?|USD|GBP|CHF|PLN|HUF|CZK|SEK|NOK|DKK|INR|JPY|"
    r"CNY|AUD|CAD|RON|BGN|TRY|zł|Ft|Kč|Fr\.|Rs\.?)\b)",
    re.IGNORECASE,
)


def _valid_grouping(parts: list[str], separator: str) -> bool:
    if 1 <= len(parts[0]) <= 3 and all(len(p) == 3 for p in parts[1:]):
        return True
    # Indian grouping (lakh, crore): "1,23,45,678" has pairs before the last three digits.
    return (
        separator == ","
        and len(parts) > 2
        and 1 <= len(parts[0]) <= 2
        and len(parts[-1]) == 3
        and all(len(p) == 2 for p in parts[1:-1])
    )


def parse_amount(text: str, *, decimal_separator: str | None = None) -> Decimal | None:
    """Read "1.234,56", "1,234.56", "1 234,56", "-12,5", "104,00 €", "(3.50)" as Decimal.

    With a single separator followed by exactly three digits ("1,234" / "1.234") the separator
    is read as thousands grouping, because money has two decimals; pass decimal_separator when
    the document's convention is known. Returns None for anything that is not one number.
    """
    s = _STRIP_CURRENCY.sub("", text).strip()
    negative = False
    if s.startswith("(") and s.endswith(")"):
        negative, s = True, s[1:-1].strip()
    if s and s[0] in _MINUS:
        negative, s = True, s[1:].strip()
    elif s and s[-1] in _MINUS:  # German bookkeeping writes "104,00-"
        negative, s = True, s[:-1].strip()
    elif s.startswith("+"):
        s = s[1:].strip()
    # Spaces and apostrophes only ever group thousands (French "1 234,56", Swiss "1'234.56").
    s = re.sub(rf"(?<=\d)[{_SPACES}'’](?=\d{{3}}(\D|$))", "", s)
    if not re.fullmatch(r"\d[\d.,]*", s) or s[-1] in ".,":
        return None
    dots, commas = s.count("."), s.count(",")
    if dots and commas:
        decimal_sep = "." if s.rfind(".") > s.rfind(",") else ","
    elif dots or commas:
        sep = "." if dots else ","
        tail = s.rsplit(sep, 1)[1]
        if dots + commas > 1:
            decimal_sep = None
        elif decimal_separator is not None:
            decimal_sep = sep if sep == decimal_separator else None
        else:
            decimal_sep = None if len(tail) == 3 else sep
    else:
        decimal_sep = None
    if decimal_sep is None:
        integer, fraction = s, ""
    else:
        integer, _, fraction = s.rpartition(decimal_sep)
        if not fraction.isdigit() or decimal_sep in integer:
            return None
    group_sep = {".": ",", ",": ".", None: None}[decimal_sep]
    if decimal_sep is None:
        group_sep = "." if "." in integer else "," if "," in integer else None
    if group_sep is not None and group_sep in integer:
        parts = integer.split(group_sep)
        if not _valid_grouping(parts, group_sep):
            return None
        integer = "".join(parts)
    if not integer.isdigit():
        return None
    value = Decimal(f"{integer}.{fraction}" if fraction else integer)
    return -value if negative else value


# Money in running text: optional sign, digits in thousands groups (one separator character
# each) or at most seven plain digits, at most two decimals, and not part of a longer number,
# date or identifier (so 4-decimal unit prices, "05.03.2018", "DE123456789", "201/113/40209"
# and "99999999800010" never match).
AMOUNT = re.compile(
    rf"(?<![\w.,/\-])[{_MINUS}]?(?:\d{{1,2}}(?:,\d{{2}})+,\d{{3}}|\d{{1,3}}(?:[.,{_SPACES}'’]\d{{3}})+|\d{{1,7}})(?:[.,]\d{{1,2}})?"
    r"(?![.,]?\d)(?!/)"
)
_CURRENCY_AFTER = re.compile(
    r"\s?(€|£|¥|₹|\$|[A-Z]{3}\b|zł|Ft\b|Kč|kr\b|Fr\.|Rs\.?|EUR)", re.UNICODE
)
_PERCENT_AFTER = re.compile(r"\s?%")
# A number directly followed by a word is a quantity or a term ("30 Tage", "20 Stk", "250g").
_WORD_AFTER = re.compile(r"\s?[^\W\d_]")
_SYMBOLS = r"(?:€|£|¥|₹|US\$|\$|EUR|USD|GBP|CHF)"
_MINUS_BEFORE_SYMBOL = re.compile(rf"(?<![\w.,])[{_MINUS}]\s?{_SYMBOLS}\s?$")
_OPEN_PAREN = re.compile(rf"\(\s?(?:{_SYMBOLS}\s?)?$")
_CLOSE_PAREN = re.compile(rf"\s?(?:{_SYMBOLS})?\s?\)")
# not part of a longer number ("0.19 %", "1,19 %"); after a label's dot it is one ("USt.19%")
PERCENT = re.compile(r"(?<![\d,])(?<!\d\.)(\d{1,2}(?:[.,]\d{1,3})?)\s?%")


@dataclass(frozen=True, slots=True)
class Amount:
    """A number found in a line: its value, where it is, and whether a word qualifies it."""

    value: Decimal
    start: int
    end: int
    text: str
    qualified: bool  # followed by a word that is not a currency: a quantity, not money
    has_decimals: bool


def amounts_in(line: str) -> list[Amount]:
    """Every money-like number in a line, left to right; percentages are left out."""
    found: list[Amount] = []
    for match in AMOUNT.finditer(line):
        rest = line[match.end() :]
        if _PERCENT_AFTER.match(rest):
            continue
        raw = match.group(0)
        # A trailing minus belongs to the number only when it touches it ("104,00-").
        if rest.startswith("-") and not rest[1:2].isdigit():
            raw += "-"
        value = parse_amount(raw)
        if value is None:
            continue
        before = line[: match.start()]
        if value > 0 and (
            _MINUS_BEFORE_SYMBOL.search(before)
            or (
                _OPEN_PAREN.search(before)
                and _CLOSE_PAREN.match(rest)
                and re.search(r"[.,]\d{2}$", match.group(0))
            )
        ):
            value = -value  # "-£120.00", "– € 5,00", "($2,000.00)"; not "(614) 555-0187"
        qualified = bool(_WORD_AFTER.match(rest)) and not _CURRENCY_AFTER.match(rest)
        has_decimals = bool(re.search(r"[.,]\d{1,2}$", match.group(0)))
        found.append(
            Amount(value, match.start(), match.end(), match.group(0), qualified, has_decimals)
        )
    return found


def percent_in(text: str) -> Decimal | None:
    """The first percentage in a text ("19 %", "5,5%", "20.0%"), else None."""
    match = PERCENT.search(text)
    # A percentage has no thousands: either mark is the decimal point.
    return Decimal(match.group(1).replace(",", ".")) if match else None
