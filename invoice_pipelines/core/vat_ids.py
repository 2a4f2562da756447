"""An organization's own VAT id (USt-IdNr.) as its country writes it: the shape every EU country
gives its numbers, and the check digit where the country has a public rule for one.

A problem is one sentence for a person; `None` means the id is well formed. Only the form is
checked, not whether the id is registered (that is the EU's VIES service, outside our machines).
"""

from __future__ import annotations

import re
from collections.abc import Callable

_SEPARATORS = re.compile(r"[\s.\-/]+")

# the part after the country prefix, per prefix (EL is Greece's prefix, XI Northern Ireland's)
SHAPES = {
    "AT": r"U\d{8}",
    "BE": r"[01]\d{9}",
    "BG": r"\d{9,10}",
    "CY": r"\d{8}[A-Z]",
    "CZ": r"\d{8,10}",
    "DE": r"\d{9}",
    "DK": r"\d{8}",
    "EE": r"\d{9}",
    "EL": r"\d{9}",
    "ES": r"[A-Z0-9]\d{7}[A-Z0-9]",
    "FI": r"\d{8}",
    "FR": r"[A-HJ-NP-Z0-9]{2}\d{9}",
    "HR": r"\d{11}",
    "HU": r"\d{8}",
    "IE": r"\d{7}[A-W][A-I]?|\d[A-Z+*]\d{5}[A-W]",
    "IT": r"\d{11}",
    "LT": r"\d{9}|\d{12}",
    "LU": r"\d{8}",
    "LV": r"\d{11}",
    "MT": r"\d{8}",
    "NL": r"\d{9}B\d{2}",
    "PL": r"\d{10}",
    "PT": r"\d{9}",
    "RO": r"\d{2,10}",
    "SE": r"\d{10}01",
    "SI": r"\d{8}",
    "SK": r"\d{10}",
    "XI": r"\d{9}|\d{12}|GD\d{3}|HA\d{3}",
}
# the prefix of a country whose VAT ids do not start with its ISO code
PREFIX_OF_COUNTRY = {"GR": "EL"}


def _digits(value: str) -> list[int]:
    return [int(c) for c in value]


def _luhn(value: str) -> bool:
    total = 0
    for i, digit in enumerate(reversed(_digits(value))):
        if i % 2:
            digit *= 2
            digit -= 9 if digit > 9 else 0
        total += digit
    return total % 10 == 0


def _de(number: str) -> bool:
    """ISO 7064 MOD 11,10 over the first eight digits (Bundeszentralamt für Steuern)."""
    product = 10
    for digit in _digits(number[:8]):
        total = (digit + product) % 10 or 10
        product = (2 * total) % 11
    check = 11 - product
    return (0 if check == 10 else check) == int(number[8])


def _at(number: str) -> bool:
    digits = _digits(number[1:])
    total = 0
    for i, digit in enumerate(digits[:7]):
        total += digit if i % 2 == 0 else digit * 2 // 10 + digit * 2 % 10
    return (10 - (total + 4) % 10) % 10 == digits[7]


def _weighted(weights: tuple[int, ...]) -> Callable[[str], int]:
    return lambda number: sum(w * d for w, d in zip(weights, _digits(number), strict=False))


def _dk(number: str) -> bool:
    return _weighted((2, 7, 6, 5, 4, 3, 2, 1))(number) % 11 == 0


def _fi(number: str) -> bool:
    rest = _weighted((7, 9, 10, 5, 8, 4, 2))(number) % 11
    return rest != 1 and (0 if rest == 0 else 11 - rest) == int(number[7])


def _pl(number: str) -> bool:
    rest = _weighted((6, 5, 7, 2, 3, 4, 5, 6, 7))(number) % 11
    return rest != 10 and rest == int(number[9])


def _nl(number: str) -> bool:
    digits = number[:9]
    eleven = (_weighted((9, 8, 7, 6, 5, 4, 3, 2))(digits) - int(digits[8])) % 11 == 0
    # sole traders' ids since 2020: ISO 7064 MOD 97-10 over "NL" and the number (N=23, L=21)
    ninety_seven = int("2321" + number.replace("B", "11")) % 97 == 1
    return eleven or ninety_seven


def _fr(number: str) -> bool:
    key, siren = number[:2], number[2:]
    if not key.isdigit():
        return True  # the newer alphanumeric keys have no published rule
    return int(key) == (12 + 3 * (int(siren) % 97)) % 97


CHECKS: dict[str, Callable[[str], bool]] = {
    "AT": _at,
    "BE": lambda n: 97 - int(n[:8]) % 97 == int(n[8:]),
    "DE": _de,
    "DK": _dk,
    "FI": _fi,
    "FR": _fr,
    "IT": _luhn,
    "LU": lambda n: int(n[:6]) % 89 == int(n[6:]),
    "NL": _nl,
    "PL": _pl,
    "SE": lambda n: _luhn(n[:10]),
}


def vat_id_problem(value: str, country: str) -> str | None:
    """What is wrong with `value` as the VAT id of an organization in `country` (ISO code), in one
    sentence; None when nothing is. Outside the EU any id is taken as written."""
    vat_id = _SEPARATORS.sub("", value).upper()
    prefix = PREFIX_OF_COUNTRY.get(country.upper(), country.upper())
    if prefix not in SHAPES:
        return None
    if not vat_id.startswith(prefix):
        return f"the VAT id {value!r} does not start with {prefix}, the prefix of its country"
    number = vat_id[len(prefix) :]
    if not re.fullmatch(SHAPES[prefix], number):
        return f"the VAT id {value!r} is not of the form of {prefix}'s VAT ids"
    check = CHECKS.get(prefix)
    if check is not None and not check(number):
        return f"the VAT id {value!r} has a wrong check digit"
    return None
