"""The readable PDF a bill gets in QuickBooks beside the supplier's XML (issue 56): a US
supplier's sales tax is "Sales tax" with its rate and amount, not VAT, and the payment terms the
document states are printed (its words and its discount as a sentence), as is a German
supplier's VAT invoice with its terms. Written by the PDF/A letter writer the bill push uses and
read back as text."""

from __future__ import annotations

import dataclasses
import io
from datetime import date, timedelta
from decimal import Decimal

import pypdf
import pytest

from invoice_pipelines.core.skonto import DiscountTerm
from invoice_pipelines.documents.domain.letters import PdfaLetters
from invoice_pipelines.einvoice.cii import EN16931_GUIDELINE, write_cii
from invoice_pipelines.quickbooks.domain.sync.bill_documents import read_invoice, readable_pdf
from invoice_pipelines.quickbooks.domain.sync.bills import letter_pdf
from invoice_pipelines_devtools.demo.invoices import (
    LineItem,
    demo_supplier_invoices,
    invoice_from_lines,
)
from invoice_pipelines_devtools.demo.payables import (
    ACME,
    SALES_TAX,
    SUPPLIERS,
    demo_supplier_invoices_us,
)

TODAY = date(2026, 11, 20)
RATE = Decimal(SALES_TAX)


@pytest.fixture(scope="module")
def write_letter():
    return letter_pdf(PdfaLetters())


def _printed(data: bytes, write_letter, language: str) -> str:
    pdf = readable_pdf(read_invoice(data), write_letter, language)
    text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    return " ".join(text.split())  # the layout wraps long sentences


def test_a_us_suppliers_bill_pdf_says_sales_tax_and_its_payment_terms(write_letter):
    (_, northwind), (_, harbor), _ = demo_supplier_invoices_us(TODAY)
    text = _printed(harbor, write_letter, "en")
    assert "Sales tax 8.88 % 73.70 USD" in text
    assert "VAT" not in text
    assert "Subtotal 830.00 USD" in text and "Total amount 903.70 USD" in text
    # BT-20's words, then its 2 % step in words (the #SKONTO# line is for machines)
    assert "2/10, net 30. If paid by 11/26/2026, deduct a 2 % early-payment discount" in text
    assert "(18.07 USD): 885.63 USD to pay." in text
    assert "#SKONTO#" not in text
    assert "Delivery date: 11/15/2026" in text and "Due date: 12/16/2026" in text
    assert "Tax number: 12-3456702" in text

    text = _printed(northwind, write_letter, "en")
    assert "Sales tax 8.88 % 102.83 USD" in text and "VAT" not in text
    assert "Net 30 days." in text


def test_a_us_suppliers_discount_is_written_like_the_rest_of_its_bill(write_letter):
    """The discount sentence's last day and amounts as the page writes its own: a US supplier's
    dates MM/DD/YYYY, amounts with thousands separators."""
    issued = date(2026, 11, 5)
    invoice = invoice_from_lines(
        number="HFL-1105-9",
        issue_date=issued,
        due_date=issued + timedelta(days=30),
        seller=SUPPLIERS[1],
        buyer=ACME,
        lines=[LineItem("Truckload New Jersey - Brooklyn", Decimal(20), Decimal("415.00"), RATE)],
        currency="USD",
        guideline_id=EN16931_GUIDELINE,
    )
    invoice = dataclasses.replace(invoice, discount_terms=(DiscountTerm(10, Decimal("2")),))
    extra = {"payment_terms": "2/10, net 30", "seller_tax_number": "12-3456702"}
    xml = write_cii(invoice, guideline_id=EN16931_GUIDELINE, extra=extra)
    text = _printed(xml, write_letter, "en")
    assert "Invoice date: 11/05/2026" in text and "Due date: 12/05/2026" in text
    assert "Total amount 9,037.04 USD" in text  # 8,300.00 and 8.88 % sales tax
    # 2 % of 9,037.04 = 180.74, until ten days after 11/05/2026
    assert (
        "If paid by 11/15/2026, deduct a 2 % early-payment discount (180.74 USD): "
        "8,856.30 USD to pay." in text
    )
    assert "2026-11-15" not in text


def test_a_german_suppliers_bill_pdf_keeps_its_vat_and_prints_its_terms(write_letter):
    (_, office), *_ = demo_supplier_invoices(TODAY)
    text = _printed(office, write_letter, "de")
    assert "USt. 19 % 76,04 EUR" in text and "USt. 7 % 2,44 EUR" in text
    assert "Sales tax" not in text
    assert "Zahlbar innerhalb von 30 Tagen ohne Abzug." in text
    assert "Leistungsdatum: 24.10.2026" in text
