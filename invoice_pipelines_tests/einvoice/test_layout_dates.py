"""The e-invoice page writes its dates as the seller does, the discount sentence in its payment
terms included: a US seller's Factur-X page (a US organization whose customers receive Factur-X)
says 11/02/2026 throughout, where it said 2026-11-02 beside a discount sentence of 11/16/2026; a
German seller's page in English keeps ISO dates, in German 02.11.2026."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal as D

import pytest

from invoice_pipelines.core.invoice import Address
from invoice_pipelines.core.skonto import DiscountTerm, describe, offers
from invoice_pipelines.einvoice.layout import render_invoice_text
from invoice_pipelines_tests.documents.test_build import make_invoice

US_SELLER = Address("500 Main Street", "Springfield", "62701", "US")


@pytest.mark.parametrize(
    ("country", "language", "issued", "due", "last_day", "not_seen"),
    [
        ("US", "en", "11/02/2026", "11/16/2026", "11/16/2026", "2026-11-02"),
        ("DE", "en", "2026-11-02", "2026-11-16", "2026-11-16", "11/02/2026"),
        ("DE", "de", "02.11.2026", "16.11.2026", "16.11.2026", "2026-11-02"),
    ],
)
def test_the_page_and_its_discount_sentence_write_dates_alike(
    country, language, issued, due, last_day, not_seen
):
    invoice = make_invoice([("Consulting", D("8"), D("120"), "S", D("19"))], language=language)
    if country == "US":
        invoice = replace(invoice, seller_address=US_SELLER, currency="USD")
    (offer,) = offers([DiscountTerm(14, D("2"))], invoice.issue_date, invoice.gross_total)
    assert offer.last_day == date(2026, 11, 16)
    sentence = describe(offer, invoice.currency, language, country)
    page = "\n".join(render_invoice_text(invoice, language=language, payment_terms=sentence))
    assert issued in page
    assert due in page
    assert last_day in sentence and last_day in page
    assert not_seen not in page
