"""The export's shortcuts write what the general writers write: the invoices CSV's cells made in
one pass (`invoice_cells` + `cells_file`) against `rows_file` of the rows as values, the text
cell's ASCII shortcut against `cell_text`, a breakdown's cached parts against the formula, and
Windows-1252 without the charmap codec against the codec. Hostile values included: a shortcut
that changed one byte of one month would change its files and its fingerprint."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoice_pipelines.core.datev import CP1252, cp1252_bytes
from invoice_pipelines.core.text import cell_text
from invoice_pipelines.exports.domain.accounts import PartnerAccount
from invoice_pipelines.exports.domain.bookings import InvoiceRecord, TaxRow
from invoice_pipelines.exports.domain.csv import INVOICE_COLUMNS, cells_file, rows_file, text_cell
from invoice_pipelines.exports.domain.formatting import breakdown_text, plain_decimal, rate_text
from invoice_pipelines.exports.domain.rendering import Rendered, invoice_cells
from invoice_pipelines.limits import MAX_TEXT_FIELD_CHARS
from invoice_pipelines_tests.exports.test_csv_hostile import HOSTILE_TEXT

D = Decimal

TEXT = st.one_of(
    st.none(),
    HOSTILE_TEXT,
    st.sampled_from(["Lieferant 001 GmbH", "LF-0001", "-LF", " LF", "=1", "", "A,B", 'x"y']),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12),
    st.just("x" * MAX_TEXT_FIELD_CHARS),
    st.just("x" * (MAX_TEXT_FIELD_CHARS + 1)),
)
AMOUNT = st.one_of(
    st.none(),
    st.decimals(
        allow_nan=False, allow_infinity=False, places=2, max_value=10**12, min_value=-(10**12)
    ),
    st.sampled_from([D("0"), D("-0.00"), D("1E+3"), D("1E-7"), D("12.5"), D("100")]),
)
RATE = st.one_of(
    st.none(), st.sampled_from([D("19.00"), D("19.0"), D("7"), D("0"), D("-0"), D("5.50"), D("-7")])
)
CATEGORY = st.one_of(st.none(), st.sampled_from(["S", "Z", "E", "AE", "", "=X", " S", "S\u200b"]))
DAY = st.one_of(st.none(), st.dates(date(2026, 1, 1), date(2026, 12, 31)))


@st.composite
def records(draw) -> InvoiceRecord:
    record = InvoiceRecord(
        draw(st.integers(1, 10**9)),
        draw(TEXT),
        draw(st.one_of(st.none(), st.sampled_from(["380", "381", " 381", "=1", ""]))),
        draw(DAY),
        draw(DAY),
        draw(st.sampled_from(["EUR", "USD", None, "=EU"])),
        draw(AMOUNT),
        draw(AMOUNT),
        draw(AMOUNT),
        draw(TEXT),
        draw(TEXT),
        corrects_number=draw(TEXT),
    )
    record.taxes.extend(
        TaxRow(*row)
        for row in draw(st.lists(st.tuples(CATEGORY, RATE, AMOUNT, AMOUNT), max_size=3))
    )
    return record


@settings(max_examples=300, deadline=None)
@given(invoices=st.lists(records(), max_size=8))
def test_invoice_cells_write_the_bytes_rows_file_writes(invoices):
    partners = {
        inv.partner_key: PartnerAccount(inv.partner_key or "", 70000 + i % 3, "", None, None)
        for i, inv in enumerate(invoices)
    }
    booked = [(inv, []) for inv in invoices]
    rendered = Rendered((), [], invoice_cells(booked, partners), booked, partners)
    assert b"".join(rendered.csv) == b"".join(rows_file(INVOICE_COLUMNS, rendered.invoices))


def test_cells_file_refuses_a_row_of_the_wrong_width():
    with pytest.raises(ValueError, match="14"):
        list(cells_file(INVOICE_COLUMNS, [(1, 2)]))


@settings(max_examples=500, deadline=None)
@given(value=TEXT)
def test_the_text_cell_shortcut_is_cell_text(value):
    assert text_cell(value) == ("" if value is None else cell_text(value))


def _breakdown_as_written_before(invoice: InvoiceRecord) -> str:
    """breakdown_text before its category and rate were formatted once per month (the formula)."""
    from invoice_pipelines.core.totals import implied_vat_category

    return "; ".join(
        f"{t.category or implied_vat_category(None, t.rate)} "
        f"{rate_text(t.rate)}: {plain_decimal(t.basis)} + {plain_decimal(t.amount)}"
        for t in invoice.taxes
    )


@settings(max_examples=300, deadline=None)
@given(invoices=st.lists(records(), max_size=6))
def test_breakdown_text_keeps_its_formula(invoices):
    for invoice in invoices:
        assert breakdown_text(invoice) == _breakdown_as_written_before(invoice)


CP1252_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(max_codepoint=0x17F),
        st.sampled_from(list("€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ\x81\x8d\x8f\x90\x9dŁ😀")),
    ),
    max_size=60,
)


@settings(max_examples=500, deadline=None)
@given(text=CP1252_TEXT)
def test_cp1252_bytes_are_the_codecs_error_for_error(text):
    try:
        expected = text.encode(CP1252)
    except UnicodeEncodeError as exc:
        with pytest.raises(UnicodeEncodeError) as raised:
            cp1252_bytes(text)
        assert (raised.value.start, raised.value.end) == (exc.start, exc.end)
        return
    assert cp1252_bytes(text) == expected
