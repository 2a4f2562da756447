"""The invoice currency from ISO 4217 codes, symbols and local abbreviations in the text."""

from __future__ import annotations

import re
from collections import Counter

# ISO 4217 codes an invoice is likely to carry. A three-letter word only counts as a currency
# when it is one of these AND stands next to an amount or after a currency label, so "VAT",
# "ttc" or "GLN" never do.
ISO_CODES = frozenset(
    """EUR USD GBP CHF PLN HUF CZK SEK NOK DKK ISK RON BGN HRK RSD TRY RUB UAH INR JPY CNY HKD
    SGD AUD NZD CAD MXN BRL ARS CLP COP ZAR AED SAR QAR ILS EGP KRW TWD THB MYR IDR PHP VND
    PKR BDT LKR NGN KES MAD TND""".split()
)
# Symbols and abbreviations; ambiguous ones ($, ¥, kr) carry less weight than the ISO code.
SYMBOLS: dict[str, tuple[str, float]] = {
    "€": ("EUR", 1.0),
    "EURO": ("EUR", 1.0),
    "£": ("GBP", 1.0),
    "₹": ("INR", 1.0),
    "RS.": ("INR", 0.7),
    "RS": ("INR", 0.5),
    "US$": ("USD", 1.0),
    "$": ("USD", 0.6),
    "¥": ("JPY", 0.5),
    "ZŁ": ("PLN", 1.0),
    "FT": ("HUF", 0.8),
    "KČ": ("CZK", 1.0),
    "₽": ("RUB", 1.0),
    "₺": ("TRY", 1.0),
    "FR.": ("CHF", 0.6),
    "SFR": ("CHF", 0.8),
    "A$": ("AUD", 1.0),
    "AU$": ("AUD", 1.0),
    "C$": ("CAD", 1.0),
    "CA$": ("CAD", 1.0),
    "NZ$": ("NZD", 1.0),
    "HK$": ("HKD", 1.0),
    "S$": ("SGD", 1.0),
    "R$": ("BRL", 1.0),
}
_SYMBOL = re.compile(
    r"(US\$|AU\$|A\$|CA\$|C\$|NZ\$|HK\$|S\$|R\$|€|£|₹|¥|₽|₺|\$|(?<![^\W\d_])(?:EURO|zł|Kč|Ft|Rs\.?|Fr\.|SFr)(?![^\W\d_]))",
    re.IGNORECASE,
)
_CODE = re.compile(r"(?<![A-Za-z])([A-Z]{3})(?![A-Za-z])")
_NEAR_NUMBER = re.compile(r"\d")
_TABLE_HEADER = re.compile(r"\S {3,}\S")
CURRENCY_LABEL = re.compile(
    r"w[äa]hrung|rechnungsw[äa]hrung|currency|devise|monnaie|valuta|moneda|waluta|p[ée]nznem|"
    r"betr[äa]ge\s+in|amounts?\s+in|montants?\s+en|bedragen\s+in",
    re.IGNORECASE,
)
# between the label and its code only space and marks: a scan's colon may come out as ">", "‘:"
# or "ı:" (any character that is no ASCII letter or digit)
_LABELLED_CODE = re.compile(r"^[^A-Za-z0-9]{0,80}?([A-Z]{3})(?![A-Za-z])")


def labelled_code(value_text: str) -> str | None:
    """The ISO code that starts the text after a currency label ("Währung:   EUR")."""
    match = _LABELLED_CODE.match(value_text)
    return match.group(1) if match and match.group(1) in ISO_CODES else None


def find_currency(text: str) -> tuple[str, float, str] | None:
    """(ISO code, confidence, what decided it) from the marks next to amounts, or None."""
    weights: Counter[str] = Counter()
    for line in text.splitlines():
        if not _NEAR_NUMBER.search(line):
            # A table header names the currency of its columns: "Preis EUR   Betrag EUR".
            if _TABLE_HEADER.search(line):
                for match in _CODE.finditer(line):
                    if match.group(1) in ISO_CODES:
                        weights[match.group(1)] += 0.5
            continue
        for match in _CODE.finditer(line):
            if match.group(1) in ISO_CODES:
                weights[match.group(1)] += 1.0
        for match in _SYMBOL.finditer(line):
            code, weight = SYMBOLS[match.group(1).upper()]
            weights[code] += weight
    if not weights:
        return None
    (code, weight), *others = weights.most_common()
    share = weight / sum(weights.values())
    # One "$" alone is weak evidence; several marks that agree are strong.
    confidence = min(0.9, 0.5 + 0.1 * weight) * share
    if (
        code == "USD"
        and not any(m.group(1).upper() in ("US$",) for m in _SYMBOL.finditer(text))
        and "USD" not in text
    ):
        confidence = min(confidence, 0.75)
    return code, round(confidence, 2), f"{weight:g} x {code}"
