"""DATEV field formats and lines, without a database: what an importer reads from each field."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoice_pipelines.core import datev
from invoice_pipelines.core.datev import Booking, DatevFieldError, Header, booking_line
from invoice_pipelines.exports.domain.datev import bookings_file
from invoice_pipelines_tests.exports.datev_reader import read_extf, split_fields

D = Decimal


def _header(**changes) -> Header:
    values = dict(
        adviser_number=29098,
        client_number=55003,
        fiscal_year_start=date(2026, 1, 1),
        account_length=4,
        period_start=date(2026, 11, 1),
        period_end=date(2026, 11, 30),
        description="Müller & Söhne: Nov/2026 – Einkauf",
        chart="03",
        created=datetime(2026, 11, 22, 14, 4, 40, 439000),
    )
    values.update(changes)
    return Header(**values)


def _booking(**changes) -> Booking:
    values = dict(
        amount=D("1234.5"),
        side="H",
        currency="EUR",
        account=70001,
        contra_account=3400,
        tax_key=None,
        document_date=date(2026, 11, 5),
        document_number="RE-2026/0017",
        text='Bäckerei "Zur Mühle" RE 2026/0017',
        due_date=date(2026, 12, 5),
    )
    values.update(changes)
    return Booking(**values)


def test_header_line_positions():
    fields = split_fields(
        ";".join(datev.header_fields(_header(), category=datev.BOOKINGS_CATEGORY))
    )
    values = [f.value for f in fields]
    assert len(fields) == 31
    assert values[:6] == ["EXTF", "700", "21", "Buchungsstapel", "13", "20261122140440439"]
    assert fields[0].quoted and fields[3].quoted and not fields[1].quoted
    assert values[10:16] == ["29098", "55003", "20260101", "4", "20261101", "20261130"]
    # Bezeichnung: at most 30 characters, umlauts spelled out, no characters DATEV refuses
    assert len(values[16]) <= 30 and values[16].startswith("Mueller   Soehne")
    assert values[18:22] == [
        "1",
        "0",
        "0",
        "EUR",
    ]  # Buchungstyp, Rechnungslegungszweck, Festschreibung, WKZ
    assert values[26] == "03" and fields[26].quoted  # SKR
    closed = split_fields(
        ";".join(datev.header_fields(_header(closed=True), category=datev.BOOKINGS_CATEGORY))
    )
    assert closed[20].value == "1"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"adviser_number": 999}, "Beraternummer"),
        ({"client_number": 100000}, "Mandantennummer"),
        ({"account_length": 9}, "Sachkontenlänge"),
        ({"period_end": date(2027, 1, 31)}, "one calendar year"),
    ],
)
def test_header_values_datev_refuses_are_errors(changes, message):
    with pytest.raises(DatevFieldError, match=message):
        datev.header_fields(_header(**changes), category=datev.BOOKINGS_CATEGORY)


def test_format_version_13_has_125_columns_in_order():
    assert len(datev.BOOKING_COLUMNS) == 125 == len(set(datev.BOOKING_COLUMNS))
    columns = datev.BOOKING_COLUMNS
    assert columns[:11] == (
        "Umsatz (ohne Soll/Haben-Kz)",
        "Soll/Haben-Kennzeichen",
        "WKZ Umsatz",
        "Kurs",
        "Basis-Umsatz",
        "WKZ Basis-Umsatz",
        "Konto",
        "Gegenkonto (ohne BU-Schlüssel)",
        "BU-Schlüssel",
        "Belegdatum",
        "Belegfeld 1",
    )
    assert columns[13] == "Buchungstext"
    assert columns[36:38] == ("KOST1 - Kostenstelle", "KOST2 - Kostenstelle")
    assert columns[39] == "EU-Land u. UStID (Bestimmung)"
    assert columns[113:117] == (
        "Festschreibung",
        "Leistungsdatum",
        "Datum Zuord. Steuerperiode",
        "Fälligkeit",
    )
    assert columns[-1] == "Abw. Skontokonto"


def test_booking_row_fields():
    row = split_fields(booking_line(_booking(tax_key="9", cost_center_1="100")).rstrip("\r\n"))
    assert len(row) == 125
    by_name = dict(zip(datev.BOOKING_COLUMNS, row, strict=True))
    assert by_name["Umsatz (ohne Soll/Haben-Kz)"] == split_fields("1234,50")[0]
    assert by_name["Soll/Haben-Kennzeichen"].value == "H"
    assert by_name["Konto"].value == "70001" and not by_name["Konto"].quoted
    assert by_name["BU-Schlüssel"].value == "0009" and by_name["BU-Schlüssel"].quoted
    assert by_name["Belegdatum"].value == "0511" and not by_name["Belegdatum"].quoted
    assert by_name["Belegfeld 1"].value == "RE-2026/0017"
    assert by_name["Belegfeld 2"].value == "051226"
    assert by_name["Buchungstext"].value == 'Bäckerei "Zur Mühle" RE 2026/0017'
    assert by_name["KOST1 - Kostenstelle"].value == "100"
    assert by_name["Fälligkeit"].value == "05122026"
    # empty text fields are "" and empty numbers are empty
    assert by_name["Beleglink"] == split_fields('""')[0]
    assert by_name["Skonto"].value == "" and not by_name["Skonto"].quoted


def test_amounts_have_a_decimal_comma_no_sign_no_thousands_separator():
    assert datev.amount(D("1234567.891")) == "1234567,89"
    assert datev.amount(D("-0.005")) == "0,01"  # half away from zero, sign dropped
    with pytest.raises(DatevFieldError):
        datev.amount(D("12345678901.00"))
    with pytest.raises(DatevFieldError):
        datev.booking_fields(_booking(amount=D("-5")))


def test_belegfeld_keeps_only_datev_characters():
    assert datev.belegfeld("RE-2026/0017") == "RE-2026/0017"
    assert datev.belegfeld("Rechnung Nr. 2026.17") == "Rechnung-Nr-2026-17"
    assert datev.belegfeld("Größe_ÄÖÜ 1") == "Groesse-AeOeUe-1"
    assert datev.belegfeld("  #42  ") == "42"
    assert datev.belegfeld("A" * 50) == "A" * 36


@given(st.text(max_size=60))
def test_belegfeld_output_is_always_allowed(number):
    cleaned = datev.belegfeld(number)
    assert len(cleaned) <= 36
    assert all(c.isascii() and (c.isalnum() or c in "$%&*+-/") for c in cleaned)


@given(st.text(max_size=80))
def test_any_text_can_be_written_in_cp1252(text):
    field = datev.text_field(text, 60)
    field.encode("cp1252")  # never raises
    assert "\n" not in field and "\r" not in field


def test_transliteration_keeps_cp1252_letters_and_replaces_the_rest():
    assert datev.transliterate("Müller Straße €") == "Müller Straße €"
    assert datev.transliterate("Łódź Żółć Ørsted") == "Lódz Zólc Ørsted"
    assert datev.transliterate("Zeile 1\nZeile 2\tEnde") == "Zeile 1 Zeile 2 Ende"
    assert datev.transliterate("漢字") == "??"


def test_whole_file_rules_crlf_quotes_and_encoding():
    rows = [booking_line(_booking()), booking_line(_booking(text="Łukasz Żak", side="S"))]
    data = b"".join(bookings_file(_header(), rows))
    lines = read_extf(data)
    assert len(lines) == 4
    assert [f.value for f in lines[1]] == list(datev.BOOKING_COLUMNS)
    assert lines[3][13].value == "Lukasz Zak"
    assert "Bäckerei".encode("cp1252") in data  # umlauts stay, as Windows-1252 bytes
    assert data.count(b"\r\n") == 4 and data.count(b"\n") == 4


def test_utf8_with_bom_when_asked():
    rows = [booking_line(_booking(text="Łukasz Żak"), datev.UTF8_BOM)]
    data = b"".join(bookings_file(_header(), rows, datev.UTF8_BOM))
    assert data.startswith(b"\xef\xbb\xbf")
    assert read_extf(data)[2][13].value == "Łukasz Żak"


def test_exchange_rate_field():
    assert datev.rate_field(D("1.085")) == "1,085"
    assert datev.rate_field(D("1.08")) == "1,08"
    with pytest.raises(DatevFieldError):
        datev.rate_field(D("0.85"))


_dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))
_texts = st.text(max_size=70)
# a month's few dates, so that rows share them (and any other date)
_month_dates = st.one_of(
    st.sampled_from([date(2026, 11, 5), date(2026, 12, 1), date(2027, 1, 31)]), _dates
)


@given(
    amount=st.decimals(min_value=D("0.01"), max_value=D("99999999.99"), places=2),
    side=st.sampled_from(["S", "H"]),
    key=st.one_of(st.none(), st.sampled_from(["9", "94", "19", "3"])),
    text=_texts,
    number=_texts,
    due=st.one_of(st.none(), _dates),
    service=st.one_of(st.none(), _dates),
    eu=st.one_of(st.none(), st.sampled_from(["ATU12345678", "FR12345678901"])),
    kost=st.one_of(st.none(), st.sampled_from(["100", "Vertrieb Süd"])),
    foreign=st.booleans(),
    link=st.one_of(st.none(), st.uuids().map(lambda u: str(u).upper())),
    discount=st.one_of(
        st.none(), st.decimals(min_value=D("0.01"), max_value=D("99999999.99"), places=2)
    ),
)
def test_the_fast_booking_line_equals_the_field_by_field_row(
    amount, side, key, text, number, due, service, eu, kost, foreign, link, discount
):
    booking = Booking(
        amount=amount,
        side=side,
        currency="USD" if foreign else "EUR",
        account=70001,
        contra_account=3400,
        tax_key=key,
        document_date=date(2026, 11, 5),
        document_number=number,
        text=text,
        due_date=due,
        service_date=service,
        eu_vat_id=eu,
        cost_center_1=kost,
        cost_center_2=kost,
        exchange_rate=D("1.085") if foreign else None,
        base_amount=(amount / D("1.085")).quantize(D("0.01")) if foreign else None,
        base_currency="EUR" if foreign else None,
        document_link=link,
        discount=discount,
        discount_account=None if discount is None else 8736,
    )
    assert booking_line(booking) == datev.join_line(datev.booking_fields(booking))


_booking_rows = st.lists(
    st.builds(
        dict,
        amount=st.one_of(
            st.decimals(min_value=D("0.01"), max_value=D("99999999.99"), places=2),
            st.decimals(min_value=D("0.001"), max_value=D("9999999999.999"), places=3),
            st.sampled_from(
                [
                    D("1234.5"),
                    D("1E+2"),
                    D("12345678901.00"),
                    D("0.1E-1"),
                    D("7"),
                    D("0"),
                    D("-1.00"),
                ]
            ),
        ),
        side=st.sampled_from(["S", "H", "X"]),
        currency=st.sampled_from(["EUR", "USD"]),
        account=st.sampled_from([70001, 70002]),
        contra=st.sampled_from([3400, 3300]),
        key=st.one_of(st.none(), st.sampled_from(["9", "94", "19", "3", "12345"])),
        same_invoice=st.booleans(),
        text=_texts,
        number=_texts,
        day=_month_dates,
        due=st.one_of(st.none(), _month_dates),
        service=st.one_of(st.none(), _month_dates),
        eu=st.one_of(st.none(), st.sampled_from(["ATU12345678", "FR12345678901"])),
        kost=st.one_of(st.none(), st.sampled_from(["100", "Vertrieb Süd"])),
        foreign=st.booleans(),
        link=st.one_of(st.none(), st.sampled_from(["0F8FAD5B-D9CB-469F-A165-70867728950E"])),
        discount=st.one_of(st.none(), st.sampled_from([D("23.80"), D("0.50"), D("0")])),
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(rows=_booking_rows, encoding=st.sampled_from([datev.CP1252, datev.UTF8_BOM]))
def test_booking_lines_equal_booking_line_row_by_row(rows, encoding):
    """BookingLines reuses what rows share (an invoice's fields, an account's, a BU key's, the
    dates, cost centres and VAT ids that repeat over a month): every line, and every refusal, is
    booking_line's."""
    lines = datev.BookingLines(encoding)
    before = None
    for row in rows:
        invoice = (
            dict(before)
            if row["same_invoice"] and before is not None
            else dict(
                document_date=row["day"],
                document_number=row["number"],
                text=row["text"],
                due_date=row["due"],
                service_date=row["service"],
                eu_vat_id=row["eu"],
                cost_center_1=row["kost"],
                cost_center_2=row["kost"],
                document_link=row["link"],
            )
        )
        before = invoice
        booking = Booking(
            amount=row["amount"],
            side=row["side"],
            currency=row["currency"],
            account=row["account"],
            contra_account=row["contra"],
            tax_key=row["key"],
            exchange_rate=D("1.085") if row["foreign"] else None,
            base_amount=(row["amount"] / D("1.085")).quantize(D("0.01"))
            if row["foreign"]
            else None,
            base_currency="EUR" if row["foreign"] else None,
            discount=row["discount"],
            discount_account=None if row["discount"] is None else 4736,
            **invoice,
        )
        try:
            expected = booking_line(booking, encoding)
        except DatevFieldError as exc:
            with pytest.raises(DatevFieldError, match=re.escape(str(exc))):
                lines.line(booking)
            continue
        assert lines.line(booking) == expected


def test_the_beleglink_names_the_document_in_belege_online():
    """Column 20 (Beleglink) of a booking with a document: BEDI "<GUID>", its inner quotes
    doubled as in every text field; without one the column stays an empty text field."""
    guid = "0F8FAD5B-D9CB-469F-A165-70867728950E"
    linked = split_fields(booking_line(_booking(document_link=guid)).rstrip("\r\n"))
    plain = split_fields(booking_line(_booking()).rstrip("\r\n"))
    assert datev.BOOKING_COLUMNS[19] == "Beleglink"
    assert linked[19].quoted and linked[19].value == f'BEDI "{guid}"'
    assert plain[19].quoted and plain[19].value == ""
    assert linked[:19] == plain[:19] and linked[20:] == plain[20:]


def test_a_payment_carries_its_discount_in_skonto_and_its_account_in_the_last_column():
    """Column 13 (Skonto) of a payment booking is the discount taken, written like an amount
    (never 0: DATEV refuses it); column 125 (Abw. Skontokonto) the account it goes to. Other
    bookings leave both empty, as before."""
    paid = split_fields(
        booking_line(_booking(discount=D("23.8"), discount_account=8736)).rstrip("\r\n")
    )
    plain = split_fields(booking_line(_booking()).rstrip("\r\n"))
    assert datev.BOOKING_COLUMNS[12] == "Skonto"
    assert datev.BOOKING_COLUMNS[124] == "Abw. Skontokonto"
    assert (paid[12].value, paid[12].quoted) == ("23,80", False)
    assert (paid[124].value, paid[124].quoted) == ("8736", False)
    assert (plain[12].value, plain[124].value) == ("", "")
    assert paid[:12] == plain[:12] and paid[13:124] == plain[13:124]
    for refused in (D("0"), D("-1.00"), D("100000000.00")):
        with pytest.raises(DatevFieldError):
            booking_line(_booking(discount=refused, discount_account=8736))
