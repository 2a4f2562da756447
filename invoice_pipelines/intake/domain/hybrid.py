"""A hybrid PDF's visible page against its embedded XML (Factur-X, ZUGFeRD, XRechnung in a PDF).

Under German VAT law the XML is the invoice; what is booked comes from it. A page that shows
another invoice (another number, date, total, currency) is still something a person must see
before it is booked: the supplier may have attached the wrong XML. The comparison is
conservative, because a false alarm on every valid hybrid would teach people to ignore it: a
value of the XML that appears anywhere on the page (numbers without spaces, separators and case,
amounts in any common notation, dates in any common form, a currency by its code or its symbol)
agrees; a difference is reported only when the XML's value is nowhere on the page AND the page
states another value for it under its label. A page with too little text to read says nothing.

It runs on every hybrid PDF, so the page is only read for labelled values (the costly part) when
one of the XML's values is not on it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date
from decimal import Decimal

from invoice_pipelines.core.invoice import Invoice
from invoice_pipelines.core.rules import Finding, comparison_text
from invoice_pipelines.intake.domain.formats.text import extract_fields
from invoice_pipelines.intake.domain.formats.text.currency import CURRENCY_LABEL, ISO_CODES, SYMBOLS
from invoice_pipelines.intake.domain.formats.text.dates import find_dates
from invoice_pipelines.intake.domain.formats.text.extract import ExtractedFields
from invoice_pipelines.intake.domain.formats.text.labels import (
    NOT_ISSUE,
    NUMBER_DATE_JOINERS,
    NUMBER_LABEL,
    TITLE_NUMBER,
    TITLE_WORDS,
)
from invoice_pipelines.intake.domain.plausibility import on_page
from invoice_pipelines.limits import MAX_TEXT_PAGES

MIN_PAGE_CHARS = 80
XML_IS_BOOKED = "the XML is what is booked"
# a labelled value the page reading is not sure of is no evidence of a difference
SURE_ENOUGH = 0.75
# how extract_fields marks an amount due it did not read but took from the total
_DUE_FROM_TOTAL = "total, nothing prepaid"
# Currencies the euro replaced: old documents and systems still print them ("Währung DEM").
LEGACY_CODES = frozenset("DEM FRF ATS BEF NLG ITL ESP PTE FIM IEP LUF GRD".split())
# what may stand between the characters of an invoice number on a page ("RE 2026/0042")
_SEPARATORS = r"[\W_]{0,3}"
_ALNUM_EDGE_BEFORE = r"(?<![^\W_])"
_ALNUM_EDGE_AFTER = r"(?![^\W_])"
_LABELLED_CODE = re.compile(
    rf"(?i:{CURRENCY_LABEL.pattern})[ \t:.]{{0,20}}\(?([A-Z]{{3}})(?![A-Za-z])"
)
_TOTAL_CODE = re.compile(
    r"(?i:total|gesamt|summe|betrag|montant|amount|bedrag)[^\n]{0,40}?\(([A-Z]{3})\)"
)
_NUMBER_WORD = re.compile(r"(?<![^\W\d_])(?:nr|no|n[°º]|nummer|number|num[ée]ro|#)", re.IGNORECASE)
_TITLE = re.compile(rf"(?:{TITLE_WORDS})", re.IGNORECASE)
_TOKEN = re.compile(r"(?<![\w\-/.])[A-Za-z0-9](?:[A-Za-z0-9\-/._]*[A-Za-z0-9])?")


def _finding(rule: str, what: str, page_value: object, xml_value: object) -> Finding:
    message = (
        f"the page shows {what} {page_value} but the embedded XML says {xml_value}; {XML_IS_BOOKED}"
    )
    return Finding(rule, message, severity="warning", stage="hybrid")


def _number_runs(number: str) -> list[str]:
    """The number's runs of letters and of digits, folded, the digits without leading zeros
    ("RE-2026/0042" -> re, 2026, 42)."""
    runs = re.findall(r"\d+|[^\W\d_]+", comparison_text(number))
    return [run.lstrip("0") or "0" if run.isdigit() else run for run in runs]


def _number_key(number: str) -> str:
    """An invoice number as compared: "RE-2026/0042", "re 2026 42" and "RE2026-042" are one."""
    return "".join(_number_runs(number))


def _number_pattern(number: str) -> str | None:
    """A pattern for the number on a case-folded page: separators, spaces and leading zeros of
    its digit runs may differ."""
    runs = _number_runs(number)
    if not runs:
        return None
    parts = [
        ("0*" if run.isdigit() else "") + _SEPARATORS.join(re.escape(char) for char in run)
        for run in runs
    ]
    return _ALNUM_EDGE_BEFORE + _SEPARATORS.join(parts) + _ALNUM_EDGE_AFTER


def _number_on(folded_page: str, number: str) -> bool:
    pattern = _number_pattern(number)
    # nothing to look for is nothing to report
    return pattern is None or re.search(pattern, folded_page) is not None


def _date_of_number(folded_page: str, number: str) -> date | None:
    """The date a title line gives the XML's own number ("Rechnungskorrektur (384) Nr.
    RK21012345 vom 16.09.2018", "Invoice 4711 dated 3 March 2026"): the page's issue date where
    no label names it."""
    pattern = _number_pattern(number)
    if pattern is None:
        return None
    joined = re.compile(pattern + r"\s*,?\s*" + NUMBER_DATE_JOINERS + r"\s+")
    for line in folded_page.splitlines():
        match = joined.search(line)
        if match is None or not _TITLE.search(line[: match.start()]):
            continue
        if NOT_ISSUE.search(line[: match.start()]):
            continue
        after = line[match.end() : match.end() + 30]
        found = find_dates(after, day_first=True)
        if found and found[0][0] == 0:
            return found[0][1]
    return None


def _same_number(page_number: str, number: str) -> bool:
    """Whether two numbers are one: equal as compared, or one the other's tail with a prefix the
    page left out ("2026-0042" for "RE-2026-0042")."""
    a, b = _number_key(page_number), _number_key(number)
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    return len(short) >= 4 and long.endswith(short)


def _shape(token: str) -> str:
    return re.sub(r"[^\W\d_]", "A", re.sub(r"\d", "9", token))


def _number_of_same_shape(page_text: str, number: str) -> str | None:
    """A token on a line that names a number and looks exactly like the XML's number
    ("01.234.567.8-2018-1" for "01.234.567.8-2014-1"): the page's own invoice number."""
    shape = _shape(number.strip())
    if len(shape) < 5 or shape.count("9") < 3 or " " in shape:
        return None
    for line in page_text.splitlines():
        if not (
            _NUMBER_WORD.search(line) or NUMBER_LABEL.search(line) or TITLE_NUMBER.search(line)
        ):
            continue
        for token in _TOKEN.findall(line):
            if _shape(token) == shape and not _same_number(token, number):
                return token
    return None


def _date_on(page: str, wanted: date) -> bool:
    """Whether the page prints the date in any form the text reader knows (either day order).

    Only lines with the date's year are read: finding every date of a long page costs
    milliseconds, and this runs on every hybrid PDF."""
    year = re.compile(rf"(?<!\d)(?:{wanted.year}|{wanted.year % 100:02d})(?!\d)")
    lines = "\n".join(line for line in page.splitlines() if year.search(line))
    if not lines:
        return False
    return any(
        found == wanted
        for day_first in (True, False)
        for _, found, _ in find_dates(lines, day_first=day_first)
    )


def _currency_on(page: str, code: str) -> bool:
    if re.search(rf"(?<![A-Za-z]){re.escape(code)}(?![A-Za-z])", page):
        return True
    marks = [mark for mark, (its_code, _) in SYMBOLS.items() if its_code == code]
    folded = page.casefold()
    return any(mark.casefold() in folded for mark in marks)


def _page_currency(page: str, read: ExtractedFields) -> str | None:
    """A currency the page names under its label or beside a total, else the one beside its
    amounts."""
    known = ISO_CODES | LEGACY_CODES
    for pattern in (_LABELLED_CODE, _TOTAL_CODE):
        for match in pattern.finditer(page):
            if match.group(1) in known:
                return match.group(1)
    found = read.fields.get("currency")
    return found.value if found is not None and found.confidence >= SURE_ENOUGH else None


def _vat_on(page: str, invoice: Invoice) -> bool:
    """The XML's VAT total is on the page, or each of its rates' VAT amounts is (a page may
    print only the rates' lines)."""
    if invoice.tax_total is not None and on_page(invoice.tax_total, page):
        return True
    amounts = [entry.amount for entry in invoice.vat_breakdown if entry.amount]
    return bool(amounts) and all(on_page(amount, page) for amount in amounts)


def compare(page_text: str, invoice: Invoice) -> list[Finding]:
    """Findings (stage "hybrid", IP-HYB-01..05) where the page shows another invoice than the
    XML: number, issue date, totals and amount due, VAT, currency."""
    if sum(1 for char in page_text if not char.isspace()) < MIN_PAGE_CHARS:
        return []
    page = unicodedata.normalize("NFKC", page_text)
    folded = page.casefold()
    cache: list[ExtractedFields] = []

    def read() -> ExtractedFields:
        if not cache:
            cache.append(extract_fields(page))
        return cache[0]

    def seen(name: str) -> object | None:
        found = read().fields.get(name)
        if found is None or found.confidence < SURE_ENOUGH:
            return None
        return found.value

    findings: list[Finding] = []
    if invoice.number and not _number_on(folded, invoice.number):
        page_number = seen("number")
        if page_number is None:
            page_number = _number_of_same_shape(page, invoice.number)
        if page_number and not _same_number(str(page_number), invoice.number):
            findings.append(_finding("IP-HYB-01", "invoice number", page_number, invoice.number))
    if invoice.issue_date and not _date_on(page, invoice.issue_date):
        page_date = seen("issue_date") or _date_of_number(folded, invoice.number or "")
        if page_date and page_date != invoice.issue_date:
            findings.append(_finding("IP-HYB-02", "the issue date", page_date, invoice.issue_date))
    findings.extend(_amounts(page, invoice, read, seen))
    if invoice.currency and not _currency_on(page, invoice.currency):
        page_currency = _page_currency(page, read())
        if page_currency and page_currency != invoice.currency:
            findings.append(_finding("IP-HYB-05", "the currency", page_currency, invoice.currency))
    return findings


def _amounts(
    page: str,
    invoice: Invoice,
    read: Callable[[], ExtractedFields],
    seen: Callable[[str], object | None],
) -> list[Finding]:
    # Pages past the ones read may hold the totals, and what was read then is a subtotal.
    if page.count("\f") >= MAX_TEXT_PAGES - 1:
        return []
    findings: list[Finding] = []
    gross = invoice.gross_total
    page_gross: object | None = None
    if gross is not None and not on_page(gross, page):
        page_gross = seen("gross_total")
        if isinstance(page_gross, Decimal) and abs(page_gross) != abs(gross):
            findings.append(_finding("IP-HYB-03", "the total with VAT", page_gross, gross))
    due = invoice.amount_due
    if due is not None and not on_page(due, page):
        found = read().fields.get("amount_due")
        # an amount due the page does not state (taken from its total) is no evidence
        if (
            found is not None
            and found.confidence >= SURE_ENOUGH
            and found.source != _DUE_FROM_TOTAL
        ):
            page_due = found.value
            if isinstance(page_due, Decimal) and abs(page_due) != abs(due):
                findings.append(_finding("IP-HYB-03", "the amount due", page_due, due))
    if invoice.tax_total is not None and not _vat_on(page, invoice):
        page_vat = seen("tax_total")
        if isinstance(page_vat, Decimal) and abs(page_vat) != abs(invoice.tax_total):
            findings.append(_finding("IP-HYB-04", "the VAT", page_vat, invoice.tax_total))
    return findings
