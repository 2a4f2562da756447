"""Dates in invoice text: numeric (day or month first, decided per document), ISO, month names in
German, English, French, Dutch, Spanish and Italian ("5. März 2024", "5 mars 2024", "5 maart
2024", "March 5, 2024", "1er mars 2024", "05-Mar-2024")."""

from __future__ import annotations

import re
from datetime import date

MONTHS: dict[str, int] = {
    # German
    "januar": 1, "jänner": 1, "februar": 2, "märz": 3, "maerz": 3, "mrz": 3, "april": 4,
    "mai": 5, "juni": 6, "juli": 7, "august": 8, "september": 9, "oktober": 10, "okt": 10,
    "november": 11, "dezember": 12, "dez": 12,
    # English
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "aug": 8, "sep": 9, "sept": 9,
    "october": 10, "oct": 10, "nov": 11, "december": 12, "dec": 12,
    # French
    "janvier": 1, "janv": 1, "février": 2, "fevrier": 2, "févr": 2, "fevr": 2, "mars": 3,
    "avril": 4, "avr": 4, "juin": 6, "juillet": 7, "juil": 7, "août": 8, "aout": 8,
    "septembre": 9, "octobre": 10, "novembre": 11, "décembre": 12, "decembre": 12, "déc": 12,
    # Dutch
    "januari": 1, "februari": 2, "maart": 3, "mrt": 3, "mei": 5, "augustus": 8,
    # Spanish and Italian (full names only: their abbreviations collide with other words)
    "enero": 1, "febrero": 2, "marzo": 3, "abril": 4, "mayo": 5, "junio": 6, "julio": 7,
    "agosto": 8, "septiembre": 9, "setiembre": 9, "octubre": 10, "noviembre": 11,
    "diciembre": 12, "gennaio": 1, "febbraio": 2, "aprile": 4, "maggio": 5, "giugno": 6,
    "luglio": 7, "settembre": 9, "ottobre": 10, "dicembre": 12,
}  # fmt: skip
_MONTH_NAMES = "|".join(sorted((re.escape(m) for m in MONTHS), key=len, reverse=True))

_ISO = re.compile(
    r"(?<![\d.,/])(?P<y>(?:19|20)\d{2})(?P<s>[-./])(?P<m>\d{1,2})(?P=s)(?P<d>\d{1,2})(?!\d)"
)
# Day/month/year or month/day/year with the same separator twice; which one is decided per document.
_NUMERIC = re.compile(
    r"(?<![\d.,/])(?P<a>\d{1,2})(?P<s>[./-])(?P<b>\d{1,2})(?P=s)(?P<y>(?:19|20)\d{2}|\d{2})"
    r"(?!\d|[.,]\d)"
)
_DAY_MONTH_NAME = re.compile(
    rf"(?<![\d.,])(?P<d>\d{{1,2}})(?:st|nd|rd|th|er|e|\.)?(?:\s+of|\s+de)?[\s.\-/]*"
    rf"(?P<mn>{_MONTH_NAMES})(?![^\W\d_])\.?(?:\s+de)?[\s,.\-/]*(?P<y>(?:19|20)\d{{2}}|\d{{2}})(?!\d)",
    re.IGNORECASE,
)
_MONTH_NAME_DAY = re.compile(
    rf"(?<![^\W\d_])(?P<mn>{_MONTH_NAMES})(?![^\W\d_])\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s?,?\s+"
    rf"(?P<y>(?:19|20)\d{{2}})(?!\d)",
    re.IGNORECASE,
)


def _year(text: str) -> int:
    year = int(text)
    return year + 2000 if year < 100 else year


def _make(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def day_first_evidence(text: str) -> bool | None:
    """Whether numeric dates in this text put the day first (True), the month (False), or unknown.

    "17/11/2017" can only be day first and "11/17/2017" only month first; one document keeps one
    convention, so an unambiguous date decides the ambiguous ones ("11/03/2017").
    """
    day_first = month_first = 0
    for match in _NUMERIC.finditer(text):
        a, b = int(match.group("a")), int(match.group("b"))
        if match.group("s") == "." or a == b:
            continue
        if a > 12 >= b >= 1:
            day_first += 1
        elif b > 12 >= a >= 1:
            month_first += 1
    if day_first and not month_first:
        return True
    if month_first and not day_first:
        return False
    return None


def find_dates(text: str, *, day_first: bool = True) -> list[tuple[int, date, bool]]:
    """Every date in a string: (position, date, ambiguous), in reading order.

    `ambiguous` is True for numeric dates that read as valid dates both ways ("03/05/2024").
    Dotted dates ("05.03.2024") are always day first.
    """
    found: dict[int, tuple[date, bool]] = {}
    taken: list[tuple[int, int]] = []

    def free(match: re.Match[str]) -> bool:
        return all(match.end() <= s or match.start() >= e for s, e in taken)

    for match in _ISO.finditer(text):
        value = _make(_year(match.group("y")), int(match.group("m")), int(match.group("d")))
        if value is not None:
            found[match.start()] = (value, False)
            taken.append(match.span())
    for pattern in (_DAY_MONTH_NAME, _MONTH_NAME_DAY):
        for match in pattern.finditer(text):
            if not free(match):
                continue
            value = _make(
                _year(match.group("y")), MONTHS[match.group("mn").lower()], int(match.group("d"))
            )
            if value is not None:
                found[match.start()] = (value, False)
                taken.append(match.span())
    for match in _NUMERIC.finditer(text):
        if not free(match):
            continue
        a, b, year = int(match.group("a")), int(match.group("b")), _year(match.group("y"))
        first = day_first or match.group("s") == "."
        value = _make(year, b, a) if first else _make(year, a, b)
        if value is None:  # "17/11/2017" in a month-first document is still the 17th
            value = _make(year, a, b) if first else _make(year, b, a)
        if value is None:
            continue
        ambiguous = match.group("s") != "." and a != b and a <= 12 and b <= 12
        found[match.start()] = (value, ambiguous)
        taken.append(match.span())
    return [(pos, value, ambiguous) for pos, (value, ambiguous) in sorted(found.items())]


def parse_date(text: str, *, day_first: bool = True) -> date | None:
    """The first date in a text (19.01.2016, 19. Januar 2016, 5 mars 2024, March 5, 2024, ISO)."""
    dates = find_dates(text, day_first=day_first)
    return dates[0][1] if dates else None
