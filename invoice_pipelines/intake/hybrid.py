"""A hybrid PDF's visible page against its embedded XML (Factur-X, ZUGFeRD, XRechnung in a PDF).

Under German VAT law the XML is the invoice; what is booked comes from it. A page that shows
another invoice (another number, date, total, currency) is still something a person must see
before it is booked: the supplier may have attached the wrong XML. The comparison is
conservative, because a false alarm on every valid hybrid would teach people to ignore it: a
value of the XML that appears anywhere on the page (numbers without spaces and case, amounts in
any common notation, dates in any common form) agrees; a difference is reported only when the
XML's value is nowhere on the page AND the page states another value for it under its label.
A page with too little text to read says nothing.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from invoice_pipelines.core.invoice import Invoice
from invoice_pipelines.core.rules import Finding, comparison_text
from invoice_pipelines.intake.formats.text import extract_fields
from invoice_pipelines.intake.formats.text.dates import find_dates
from invoice_pipelines.intake.plausibility import on_page

MIN_PAGE_CHARS = 80
XML_IS_BOOKED = "the XML is what is booked"
# a labelled value the page reading is not sure of is no evidence of a difference
SURE_ENOUGH = 0.75


def _finding(rule: str, what: str, page_value: object, xml_value: object) -> Finding:
    message = (
        f"the page shows {what} {page_value} but the embedded XML says {xml_value}; {XML_IS_BOOKED}"
    )
    return Finding(rule, message, severity="warning", stage="hybrid")


def _dates_on(page: str) -> set[date]:
    found = {found for _, found, _ in find_dates(page, day_first=True)}
    found |= {found for _, found, _ in find_dates(page, day_first=False)}
    return found


def compare(page_text: str, invoice: Invoice) -> list[Finding]:
    """Findings (stage "hybrid", IP-HYB-01..05) where the page shows another invoice than the
    XML: number, issue date, totals and amount due, VAT, currency."""
    if sum(1 for char in page_text if not char.isspace()) < MIN_PAGE_CHARS:
        return []
    read = extract_fields(page_text)

    def seen(name: str):
        found = read.fields.get(name)
        if found is None or found.confidence < SURE_ENOUGH:
            return None
        return found.value

    findings: list[Finding] = []
    if invoice.number:
        compact_page = comparison_text(page_text)
        number = comparison_text(invoice.number)
        page_number = seen("number")
        if (
            number
            and number not in compact_page
            and page_number
            and comparison_text(page_number) != number
        ):
            findings.append(_finding("IP-HYB-01", "invoice number", page_number, invoice.number))
    if invoice.issue_date and invoice.issue_date not in _dates_on(page_text):
        page_date = seen("issue_date")
        if page_date and page_date != invoice.issue_date:
            findings.append(_finding("IP-HYB-02", "the issue date", page_date, invoice.issue_date))
    for name, what, rule in (
        ("gross_total", "the total with VAT", "IP-HYB-03"),
        ("amount_due", "the amount due", "IP-HYB-03"),
        ("tax_total", "the VAT", "IP-HYB-04"),
    ):
        value: Decimal | None = getattr(invoice, name)
        if value is None or on_page(value, page_text):
            continue
        page_value = seen(name)
        if page_value is not None and abs(page_value) != abs(value):
            findings.append(_finding(rule, what, page_value, value))
    if invoice.currency:
        page_currency = seen("currency")
        if (
            page_currency
            and page_currency != invoice.currency
            and invoice.currency not in page_text
        ):
            findings.append(_finding("IP-HYB-05", "the currency", page_currency, invoice.currency))
    return findings
