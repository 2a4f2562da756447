"""Property-based fuzzing of every document reader: malformed input is a clear per-document
failure or a parse result, never an exception that would stop a batch.

Generated input: truncated and byte-mutated real samples (PDF and XML), XML with huge attribute
values, deep nesting and unusual text, and arbitrary text for the text-layer field reader. Each
reader is driven directly (its only allowed exception is its own "unreadable" error) and through
`parse_document`, whose last line of defence ("unexpected error", stage "internal") must never be
reached: reaching it means a reader raised where it should have reported.

Examples are derandomized (the same inputs every run, no example database), so a failure here is
a real bug, not bad luck. For a longer, random campaign set INVOICE_PIPELINES_FUZZ_EXAMPLES (e.g.
500): each test then runs that many new examples.
"""

from __future__ import annotations

import functools
import json
import os

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from invoice_pipelines.einvoice.readers.cii import parse_cii
from invoice_pipelines.einvoice.readers.pdf import PdfUnreadable, open_pdf
from invoice_pipelines.einvoice.readers.ubl import parse_ubl
from invoice_pipelines.einvoice.readers.xmlsafe import XmlRejected, parse_xml
from invoice_pipelines.einvoice.readers.zugferd1 import parse_zugferd1
from invoice_pipelines.intake.domain.formats.pdf_text import extract_text
from invoice_pipelines.intake.domain.formats.text import extract_fields
from invoice_pipelines.intake.domain.parse import ParseOutcome, parse_document
from invoice_pipelines_tests.conftest import samples_dir

SAMPLE_XML = (
    "ZUGFeRD-corpus/XML-Rechnung/CII/EN16931_Einfach.cii.xml",
    "ZUGFeRD-corpus/XML-Rechnung/UBL/EN16931_Einfach.ubl.xml",
    "eInvoicing-EN16931/ubl/examples/ubl-tc434-creditnote1.xml",
)
SAMPLE_PDF = (
    "ZUGFeRD-corpus/XML-Rechnung/FX/EN16931_Einfach.pdf",
    "ZUGFeRD-corpus/ZUGFeRDv1/correct/Intarsys/ZUGFeRD_1p0_COMFORT_Einfach.pdf",
)
READERS = {
    "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100": parse_cii,
    "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2": parse_ubl,
    "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2": parse_ubl,
    "urn:ferd:CrossIndustryDocument:invoice:1p0": parse_zugferd1,
}
CAMPAIGN = int(os.environ.get("INVOICE_PIPELINES_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=CAMPAIGN or 40,
    deadline=None,
    derandomize=not CAMPAIGN,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@functools.cache
def sample(relative: str) -> bytes:
    return (samples_dir() / relative).read_bytes()


def assert_clear_outcome(result: ParseOutcome) -> None:
    """What a user sees: a status, a reason when it failed, and never the catch-all."""
    assert result.status in ("VALIDATED", "FAILED", "NEEDS_OCR")
    if result.status == "FAILED":
        assert result.errors and all(e.message.strip() for e in result.errors)
    internal = [f.message for f in (*result.errors, *result.warnings) if f.stage == "internal"]
    assert internal == [], internal
    json.dumps(result.to_json_dict(), default=str)


# One edit: (kind, where as a fraction of the length in millionths, byte).
edits = st.lists(
    st.tuples(
        st.sampled_from(("flip", "insert", "delete", "set")),
        st.integers(0, 999_999),
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=12,
)


def mutate(data: bytes, changes: list[tuple[str, int, int]]) -> bytes:
    out = bytearray(data)
    for kind, where, value in changes:
        if not out:
            break
        at = where * len(out) // 1_000_000
        if kind == "flip":
            out[at] ^= 1 << (value % 8)
        elif kind == "insert":
            out.insert(at, value)
        elif kind == "delete":
            del out[at]
        else:
            out[at] = value
    return bytes(out)


def read_xml_directly(data: bytes) -> None:
    """The XML layer: parse_xml may refuse, the syntax readers must always report."""
    try:
        safe = parse_xml(data)
    except XmlRejected as exc:
        assert str(exc)
        return
    reader = READERS.get(safe.namespace)
    if reader is not None:
        invoice, findings = reader(safe.root)
        assert invoice is not None
        assert all(f.message for f in findings)


@pytest.fixture(scope="module", autouse=True)
def _samples_present() -> None:
    samples_dir()


# ------------------------------------------------------------------ XML readers


@FUZZ
@given(st.sampled_from(SAMPLE_XML), edits)
# Found by a campaign: a NUL byte inside encoding="UTF-8" made the encoding check raise ValueError.
@example(SAMPLE_XML[0], [("insert", 2281, 0)])
def test_mutated_sample_xml_is_reported_not_raised(name: str, changes: list) -> None:
    data = mutate(sample(name), changes)
    read_xml_directly(data)
    assert_clear_outcome(parse_document(data, name))


@FUZZ
@given(st.sampled_from(SAMPLE_XML), st.integers(0, 999_999))
def test_truncated_sample_xml_is_reported_not_raised(name: str, cut: int) -> None:
    data = sample(name)
    data = data[: cut * len(data) // 1_000_000]
    read_xml_directly(data)
    assert_clear_outcome(parse_document(data, name))


@FUZZ
@given(
    st.sampled_from(SAMPLE_XML),
    st.integers(0, 999_999),
    st.sampled_from((b"x", b"9", b"&amp;", b"\xc3\xa4", b"-1e9999", b" ")),
    st.integers(1, 2_000_000),
)
def test_huge_attribute_and_text_values_are_reported_not_raised(
    name: str, where: int, unit: bytes, repeat: int
) -> None:
    # Somewhere in a real invoice: the value of a new attribute on the element that starts at or
    # after `where`, or the text of that element, becomes up to 2 million units long.
    data = sample(name)
    start = data.find(b"<", where * len(data) // 1_000_000)
    start = data.find(b"<", 1) if start < 0 or data[start + 1 : start + 2] in b"/?!" else start
    end = data.find(b">", start)
    value = unit * repeat
    if repeat % 2:
        data = data[:end] + b' fuzz="' + value + b'"' + data[end:]
    else:
        data = data[: end + 1] + value + data[end + 1 :]
    read_xml_directly(data)
    assert_clear_outcome(parse_document(data, name))


@FUZZ
@given(
    st.sampled_from(tuple(READERS)),
    st.integers(1, 20_000),
    st.sampled_from(("ram:ID", "cbc:ID", "x")),
)
def test_deep_nesting_is_reported_not_raised(namespace: str, depth: int, tag: str) -> None:
    prefix = tag.split(":")[0] if ":" in tag else "x"
    open_tags = f"<{tag} xmlns:{prefix}='urn:x'>" * depth
    close_tags = f"</{tag}>" * depth
    data = f"<Root xmlns='{namespace}'>{open_tags}{close_tags}</Root>".encode()
    read_xml_directly(data)
    assert_clear_outcome(parse_document(data, "deep.xml"))


# ------------------------------------------------------------------ PDF reader


@settings(FUZZ, max_examples=CAMPAIGN or 30)
@given(st.sampled_from(SAMPLE_PDF), edits)
def test_mutated_sample_pdf_is_reported_not_raised(name: str, changes: list) -> None:
    data = mutate(sample(name), changes)
    try:
        document = open_pdf(data)
    except PdfUnreadable as exc:
        assert str(exc)
    else:
        assert all(a.data is not None or a.error for a in document.attachments)
        text, method = extract_text(data, document, prefer="pypdf")
        assert isinstance(text, str) and method == "pypdf"
    assert_clear_outcome(parse_document(data, name))


@settings(FUZZ, max_examples=CAMPAIGN or 30)
@given(st.sampled_from(SAMPLE_PDF), st.integers(0, 999_999))
def test_truncated_sample_pdf_is_reported_not_raised(name: str, cut: int) -> None:
    data = sample(name)
    data = data[: cut * len(data) // 1_000_000]
    assert_clear_outcome(parse_document(data, name))


# ------------------------------------------------------------------ text-layer field reader


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.text(max_size=80),
            st.sampled_from(
                (
                    "Rechnungsnummer:",
                    "Invoice No.",
                    "Datum",
                    "Fällig am",
                    "Summe netto",
                    "Gesamtbetrag",
                    "MwSt 19 %",
                    "EUR",
                    "€",
                    "1.234.567,89",
                    "9" * 400,
                    "31.02.2024",
                    "2024-13-45",
                    "\f",
                    "\u202e",
                    "-",
                )
            ),
        ),
        max_size=60,
    )
)
def test_text_field_reader_never_raises_on_any_text(parts: list[str]) -> None:
    text = " ".join(parts).replace("  ", "\n")
    fields = extract_fields(text)
    invoice = fields.to_invoice(origin="text", confidence_scale=1.0)
    assert invoice is not None
    json.dumps(fields.to_json_dict(), default=str)
