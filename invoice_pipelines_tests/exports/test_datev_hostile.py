"""DATEV files with hostile supplier values: a VAT id with a zero-width space, names with
characters outside Windows-1252, control characters and formulas. The month is exported, the files
decode as Windows-1252 with the right number of fields on every row, and nothing acts as a
formula; a VAT id written otherwise than stated is listed in the export's notes."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from invoice_pipelines.core.datev import (
    BOOKING_COLUMNS,
    PARTNER_COLUMNS,
    Booking,
    Header,
    booking_fields,
    booking_line,
    quote,
    text_field,
    transliterate,
)
from invoice_pipelines.core.text import cut, defuse_formula, printable
from invoice_pipelines.db.tables import exports, incoming_invoices
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.exports.domain.datev import bookings_file, partners_file
from invoice_pipelines.exports.domain.pipeline import run_export
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.exports.books import DATEV, incoming
from invoice_pipelines_tests.exports.datev_reader import read_extf

D = Decimal
COLUMN = {name: i for i, name in enumerate(BOOKING_COLUMNS)}
FORMULA_STARTS = tuple("=+-@")

# (invoice number, supplier name, VAT id)
HOSTILE = [
    ("R-1", "Wiener Bau GmbH", "ATU1234567\u200b"),  # zero-width space: UnicodeEncodeError before
    ("=1+1", '=HYPERLINK("http://evil.example","x")', "ATU7654321"),
    ("+R\u202e2", "Acme\x00\x1b GmbH\u202e", "FR12\u00a0345\u00a0678\u00a090\u2066"),
    ("R\r\n3", "\u4e2d\u6587 \U0001f600 Sp\u00f3\u0142ka", "PL52600012\u200d46"),
    ("R-4", "Bolt \u2028 O\u00dc", "EE\u0410\u0411\u0412"),  # Cyrillic: nothing usable remains
]


def _storable(value: str, kind: str) -> str:
    return value.replace("\x00", "") if kind == "postgresql" else value


def _header() -> Header:
    return Header(
        adviser_number=29098,
        client_number=55003,
        fiscal_year_start=date(2026, 1, 1),
        account_length=4,
        period_start=date(2026, 11, 1),
        period_end=date(2026, 11, 30),
        description="test 2026-11",
        chart="03",
        created=datetime(2026, 12, 1, 8, 0),
    )


def _assert_fields(rows, width: int) -> None:
    for row in rows:
        assert len(row) == width
        for field in row:
            assert not field.value.startswith(FORMULA_STARTS), field.value
            assert not any(ord(c) < 32 for c in field.value), field.value


def test_a_month_with_hostile_supplier_values_is_exported(db, tmp_path):
    org = db.new_organization(**DATEV)
    ids = [
        incoming(
            db.engine,
            org["id"],
            _storable(number, db.kind),
            seller=_storable(name, db.kind),
            vat_id=_storable(vat_id, db.kind),
            taxes=[("S", "19", "100.00", "19.00")],
        )
        for number, name, vat_id in HOSTILE
    ]
    store = LocalFiles(str(tmp_path))
    result = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2026-11", "incoming"
    )

    assert result.skipped == [] and result.invoice_count == len(HOSTILE)
    bookings = read_extf(Path(result.files["datev"]).read_bytes(), "cp1252")
    partners = read_extf(Path(result.files["datev_partners"]).read_bytes(), "cp1252")
    assert len(bookings) == 2 + len(HOSTILE) and len(partners) == 2 + len(HOSTILE)
    _assert_fields(bookings[2:], len(BOOKING_COLUMNS))
    _assert_fields(partners[2:], len(PARTNER_COLUMNS))

    by_vat = {row[COLUMN["EU-Land u. UStID (Bestimmung)"]].value for row in bookings[2:]}
    assert by_vat == {"ATU1234567", "ATU7654321", "FR1234567890", "PL5260001246", ""}
    texts = [row[COLUMN["Buchungstext"]].value for row in bookings[2:]]
    assert texts[1].startswith("'=HYPERLINK(") and len(texts[1]) <= 60
    assert all("\u202e" not in t and "\u200b" not in t for t in texts)
    numbers = [row[COLUMN["Belegfeld 1"]].value for row in bookings[2:]]
    assert numbers[1:4] == ["1+1", "R2", "R-3"]

    with tenant_transaction(db.engine, org["id"]) as conn:
        statuses = conn.execute(
            select(incoming_invoices.c.status).where(incoming_invoices.c.id.in_(ids))
        ).scalars()
        assert set(statuses) == {"EXPORTED"}
        notes = conn.execute(
            select(exports.c.notes).where(exports.c.id == result.export_id)
        ).scalar_one()
    cleaned = "\n".join(notes["cleaned_vat_ids"])
    assert "read as ATU1234567" in cleaned and "not a VAT id, left out" in cleaned


_HOSTILE_CHAR = st.one_of(
    st.sampled_from(list("=+-@ \t\r\n\x00\x01\x1f\x7f\x81\x85\x9f\";'\u00a0")),
    st.sampled_from(["\u200b", "\u200d", "\u202e", "\u2066", "\ufeff", "\u2028", "\U0001f600"]),
    st.sampled_from(["\uff1d", "\u0141", "\u1e9e", "\u4e2d", "\U000e0041", "\u0410", "\u20ac"]),
    st.characters(codec="utf-8"),
)
HOSTILE_TEXT = st.text(alphabet=_HOSTILE_CHAR, max_size=80)


@settings(max_examples=200, deadline=None)
@given(
    name=HOSTILE_TEXT,
    number=HOSTILE_TEXT,
    vat_id=st.one_of(HOSTILE_TEXT, st.builds(lambda t: "ATU" + t, HOSTILE_TEXT)),
    kost=HOSTILE_TEXT,
    country=HOSTILE_TEXT,
    encoding=st.sampled_from(["cp1252", "utf-8-sig"]),
)
def test_fuzz_datev_files_stay_valid(name, number, vat_id, kost, country, encoding):
    booking = Booking(
        amount=D("119.00"),
        side="H",
        currency="EUR",
        account=70001,
        contra_account=3400,
        tax_key=None,
        document_date=date(2026, 11, 5),
        document_number=number,
        text=f"{name} {number}",
        eu_vat_id=vat_id or None,
        cost_center_1=kost or None,
    )
    line = booking_line(booking, encoding)
    assert line == ";".join(booking_fields(booking, encoding)) + "\r\n"
    data = b"".join(bookings_file(_header(), [line], encoding))
    rows = read_extf(data, "utf-8" if encoding == "utf-8-sig" else encoding)
    assert len(rows) == 3
    _assert_fields(rows[2:], len(BOOKING_COLUMNS))
    partner = {"account": 70001, "name": name, "vat_id": vat_id, "country": country}
    partner_data = b"".join(partners_file(_header(), [partner], encoding))
    partner_rows = read_extf(partner_data, "utf-8" if encoding == "utf-8-sig" else encoding)
    assert len(partner_rows) == 3
    _assert_fields(partner_rows[2:], len(PARTNER_COLUMNS))


def _text_field_by_the_rules(value, max_length: int, encoding: str) -> str:
    """`text_field` spelled out rule by rule (what it did before its fast path)."""
    text = transliterate(printable(value or ""), encoding).strip()
    return quote(cut(defuse_formula(text), max_length, marker=""))


@settings(max_examples=400, deadline=None)
@given(
    value=st.one_of(
        HOSTILE_TEXT, st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126))
    ),
    max_length=st.sampled_from([3, 15, 36, 60]),
    encoding=st.sampled_from(["cp1252", "utf-8-sig"]),
)
def test_text_field_takes_its_fast_path_only_where_the_rules_change_nothing(
    value, max_length, encoding
):
    assert text_field(value, max_length, encoding) == _text_field_by_the_rules(
        value, max_length, encoding
    )
