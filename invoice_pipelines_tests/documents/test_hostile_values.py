"""Hostile text in a sales invoice (customer and seller names, addresses, invoice number, line
descriptions, notes) gives a valid document that reads back as written, or a clear per-invoice
finding; never an exception. Companion of test_build.py's read-back property, which covers
amounts and VAT with ordinary text."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from decimal import Decimal

import pypdf
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lxml import etree

from invoice_pipelines.core.invoice import Address, Invoice
from invoice_pipelines.documents.domain.build import build_document
from invoice_pipelines.einvoice.cii import InvoiceNotWritable, write_cii
from invoice_pipelines.einvoice.readers.xmlsafe import clean_text
from invoice_pipelines.einvoice.ubl import write_ubl
from invoice_pipelines.intake.domain.parse import parse_document
from invoice_pipelines_tests.documents.test_build import make_invoice, source

D = Decimal
FRAGMENTS = (
    '=HYPERLINK("http://evil.example")',
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\x00",
    "\r",
    "\n",
    "\r\n",
    "\t",
    "\x1b[31m",
    "\u202e",
    "\u202c",
    "\u2067",
    "\u200b",
    "\u200d",
    "\ufeff",
    "😀",
    "𝔘",
    '"',
    "'",
    "<",
    "&",
    ";",
    "Ä" * 300,
)
hostile = st.lists(
    st.one_of(
        st.sampled_from(FRAGMENTS),
        st.text(
            alphabet=st.characters(categories=("L", "N", "P", "S", "Zs", "Cc", "Cf")),
            max_size=12,
        ),
    ),
    min_size=1,
    max_size=5,
).map("".join)
# where a hostile value goes: an invoice field, a line description or a document extra
PLACES = ("buyer_name", "seller_name", "number", "street", "city", "line", "note", "terms")
FORMATS = ("facturx", "xrechnung-cii", "xrechnung-ubl")
# characters XML 1.0 cannot carry at all (tab, LF and CR it can)
NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def hostile_invoice(place: str, value: str) -> tuple[Invoice, dict]:
    invoice = make_invoice(
        [
            ("Bohrer HSS" if place != "line" else value, D("2"), D("24.90"), "S", D("19")),
            ("Fräser", D("1"), D("10"), "S", D("19")),
        ]
    )
    extras: dict = {}
    if place in ("buyer_name", "seller_name", "number"):
        invoice = replace(invoice, **{place: value})
    elif place in ("street", "city"):
        address = invoice.buyer_address
        invoice = replace(
            invoice,
            buyer_address=Address(
                value if place == "street" else address.line_one,
                value if place == "city" else address.city,
                address.postcode,
                address.country_code,
            ),
        )
    elif place == "note":
        extras["note"] = value
    elif place == "terms":
        extras["payment_terms"] = value
    return invoice, extras


def _assert_clear(errors: list[dict]) -> None:
    assert errors
    for error in errors:
        assert error["rule"] and error["message"].strip()
        assert "Traceback" not in error["message"] and len(error["message"]) < 1000


def _read_value(read: Invoice, place: str):
    return {
        "buyer_name": read.buyer_name,
        "seller_name": read.seller_name,
        "number": read.number,
        "street": read.buyer_address.line_one if read.buyer_address else None,
        "city": read.buyer_address.city if read.buyer_address else None,
        "line": read.lines[0].description if read.lines else None,
    }.get(place, ...)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(place=st.sampled_from(PLACES), value=hostile, fmt=st.sampled_from(FORMATS))
@example(place="buyer_name", value="ACME\x00GmbH", fmt="facturx")
@example(place="line", value="Zeile\r\nBcc: x@evil.example", fmt="xrechnung-ubl")
@example(place="number", value="=1+1\u202eRE", fmt="xrechnung-cii")
def test_hostile_text_gives_a_valid_document_or_a_clear_finding(place, value, fmt):
    invoice, extras = hostile_invoice(place, value)
    doc = source(invoice, einvoice_format=fmt, leitweg_id="991-12345-67")
    doc = replace(doc, extras={**doc.extras, **extras})
    built = build_document(doc)  # an exception here is the failure this test looks for
    if not built.ok:
        _assert_clear(built.errors)
        assert built.pdf is None and built.xrechnung is None
        bad = NOT_IN_XML.search(value)
        if bad:  # the finding names the character, so a person can find and fix it
            assert any(f"U+{ord(bad.group()):04X}" in e["message"] for e in built.errors)
        return
    assert not NOT_IN_XML.search(value), "a character XML cannot carry was written"
    reader = pypdf.PdfReader(io.BytesIO(built.pdf))
    xml = next(iter(reader.attachment_list)).content
    etree.fromstring(xml)  # well-formed
    read = parse_document(built.pdf, "x.pdf")
    assert read.status == "VALIDATED", read.errors
    got = _read_value(read.invoice, place)
    if got is not ...:
        # the reader's documented cleaning: runs of whitespace become one space
        assert got == clean_text(value)
    if built.xrechnung is not None:
        again = parse_document(built.xrechnung, built.xrechnung_name)
        assert again.status == "VALIDATED", again.errors
        got = _read_value(again.invoice, place)
        if got is not ...:
            assert got == clean_text(value)


@settings(max_examples=40, deadline=None)
@given(place=st.sampled_from(PLACES), value=hostile, writer=st.sampled_from(["cii", "ubl"]))
def test_the_xml_writers_refuse_what_xml_cannot_carry_by_naming_it(place, value, writer):
    invoice, extras = hostile_invoice(place, value)
    write = write_cii if writer == "cii" else write_ubl
    try:
        data = write(invoice, extra={"payment_terms": "14 Tage", **extras})
    except InvoiceNotWritable as exc:
        bad = NOT_IN_XML.search(value)
        if bad is None:  # a blank required term is named as missing
            assert not value.strip() and "missing" in str(exc)
        else:
            assert f"U+{ord(bad.group()):04X}" in str(exc)
        return
    assert not NOT_IN_XML.search(value)
    etree.fromstring(data)  # well-formed, whatever the text
