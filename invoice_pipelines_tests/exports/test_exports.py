"""Exports on SQLite and PostgreSQL: the files a tax advisor imports, the rows and statuses behind
them, versions, idempotency and what happens to invoices that cannot be booked."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from invoice_pipelines.core.datev import BOOKING_COLUMNS
from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.db.incoming_status import change_status, load_refs
from invoice_pipelines.db.tables import (
    export_items,
    exports,
    incoming_invoices,
    organizations,
    partner_accounts,
)
from invoice_pipelines.db.tenancy import find_organization, system_transaction, tenant_transaction
from invoice_pipelines.exports.domain.export_settings import ExportSettingsError
from invoice_pipelines.exports.domain.pipeline import run_export
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.exports.books import DATEV, customer, incoming, sales_invoice
from invoice_pipelines_tests.exports.datev_reader import read_extf

D = Decimal
COLUMN = {name: i for i, name in enumerate(BOOKING_COLUMNS)}


def _org(db, **exports_settings) -> dict:
    return db.new_organization(**DATEV, settings={"exports": exports_settings})


def _rows(path: str) -> list[list]:
    return read_extf(Path(path).read_bytes())


def _values(row) -> dict[str, str]:
    return {name: row[i].value for name, i in COLUMN.items()}


def _status(db, org_id: int, doc_id: int) -> str:
    with tenant_transaction(db.engine, org_id) as conn:
        return conn.execute(
            select(incoming_invoices.c.status).where(incoming_invoices.c.id == doc_id)
        ).scalar_one()


def test_golden_buchungsstapel_of_a_small_month(db, tmp_path):
    """Mixed rates, a credit note, a negative invoice, reverse charge, an intra-EU acquisition,
    a zero-amount breakdown, umlauts, quotes and a character outside Windows-1252."""
    org = _org(db)
    e = db.engine
    a = incoming(
        e,
        org["id"],
        "R 2026.001",
        day=date(2026, 11, 3),
        seller='Bäckerei "Zur Mühle" GmbH',
        vat_id="DE111111111",
        taxes=[
            ("S", "19", "100.00", "19.00"),
            ("S", "7", "50.00", "3.50"),
            ("S", "7", "0.00", "0.00"),
        ],
    )
    b = incoming(
        e,
        org["id"],
        "GS-7",
        day=date(2026, 11, 4),
        seller='Bäckerei "Zur Mühle" GmbH',
        vat_id="DE 111 111 111",
        type_code="381",
        taxes=[("S", "19", "10.00", "1.90")],
    )
    c = incoming(
        e,
        org["id"],
        "AT-13b",
        day=date(2026, 11, 5),
        seller="Wiener Bau GmbH",
        vat_id="ATU12345678",
        taxes=[("AE", "0", "1000.00", "0.00")],
    )
    f = incoming(
        e,
        org["id"],
        "FR-igE",
        day=date(2026, 11, 6),
        seller="Société Générale d'Outils",
        vat_id="FR12345678901",
        taxes=[("K", "0", "200.00", "0.00")],
    )
    n = incoming(
        e,
        org["id"],
        "NEG-1",
        day=date(2026, 11, 7),
        seller="Łukasz Żak Sp. z o.o.",
        vat_id="PL5260001246",
        taxes=[("S", "19", "-20.00", "-3.80")],
    )
    store = LocalFiles(str(tmp_path))
    result = run_export(e, store, find_organization(e, org["slug"]), "2026-11", "incoming")

    assert result.version == 1 and result.skipped == [] and result.invoice_count == 5
    lines = _rows(result.files["datev"])
    header, names, data = lines[0], lines[1], lines[2:]
    assert [f.value for f in header[:5]] == ["EXTF", "700", "21", "Buchungsstapel", "13"]
    assert [f.value for f in header[10:16]] == [
        "29098",
        "55003",
        "20260101",
        "4",
        "20261101",
        "20261130",
    ]
    assert [f.value for f in names] == list(COLUMN)
    assert all(len(row) == 125 for row in data)
    got = [
        {
            k: v[k]
            for k in (
                "Umsatz (ohne Soll/Haben-Kz)",
                "Soll/Haben-Kennzeichen",
                "Konto",
                "Gegenkonto (ohne BU-Schlüssel)",
                "BU-Schlüssel",
                "Belegdatum",
                "Belegfeld 1",
                "Belegfeld 2",
                "Buchungstext",
                "EU-Land u. UStID (Bestimmung)",
            )
        }
        for v in map(_values, data)
    ]
    vienna, bakery, paris, lodz = 70000, 70001, 70002, 70003  # numbered in order of partner key
    assert got == [
        # 19 % and 7 % of one invoice: two rows with their gross amounts; the 0.00 row is left out
        {
            "Umsatz (ohne Soll/Haben-Kz)": "119,00",
            "Soll/Haben-Kennzeichen": "H",
            "Konto": str(bakery),
            "Gegenkonto (ohne BU-Schlüssel)": "3400",
            "BU-Schlüssel": "",
            "Belegdatum": "0311",
            "Belegfeld 1": "R-2026-001",
            "Belegfeld 2": "191126",
            "Buchungstext": 'Bäckerei "Zur Mühle" GmbH R 2026.001',
            "EU-Land u. UStID (Bestimmung)": "",
        },
        {
            "Umsatz (ohne Soll/Haben-Kz)": "53,50",
            "Soll/Haben-Kennzeichen": "H",
            "Konto": str(bakery),
            "Gegenkonto (ohne BU-Schlüssel)": "3300",
            "BU-Schlüssel": "",
            "Belegdatum": "0311",
            "Belegfeld 1": "R-2026-001",
            "Belegfeld 2": "191126",
            "Buchungstext": 'Bäckerei "Zur Mühle" GmbH R 2026.001',
            "EU-Land u. UStID (Bestimmung)": "",
        },
        # the credit note takes the other side, with a positive amount; same supplier, same account
        {
            "Umsatz (ohne Soll/Haben-Kz)": "11,90",
            "Soll/Haben-Kennzeichen": "S",
            "Konto": str(bakery),
            "Gegenkonto (ohne BU-Schlüssel)": "3400",
            "BU-Schlüssel": "",
            "Belegdatum": "0411",
            "Belegfeld 1": "GS-7",
            "Belegfeld 2": "191126",
            "Buchungstext": 'Bäckerei "Zur Mühle" GmbH GS-7',
            "EU-Land u. UStID (Bestimmung)": "",
        },
        # reverse charge: non-automatic account, key 94, the partner's EU VAT id
        {
            "Umsatz (ohne Soll/Haben-Kz)": "1000,00",
            "Soll/Haben-Kennzeichen": "H",
            "Konto": str(vienna),
            "Gegenkonto (ohne BU-Schlüssel)": "3200",
            "BU-Schlüssel": "0094",
            "Belegdatum": "0511",
            "Belegfeld 1": "AT-13b",
            "Belegfeld 2": "191126",
            "Buchungstext": "Wiener Bau GmbH AT-13b",
            "EU-Land u. UStID (Bestimmung)": "ATU12345678",
        },
        # intra-EU acquisition: key 19
        {
            "Umsatz (ohne Soll/Haben-Kz)": "200,00",
            "Soll/Haben-Kennzeichen": "H",
            "Konto": str(paris),
            "Gegenkonto (ohne BU-Schlüssel)": "3200",
            "BU-Schlüssel": "0019",
            "Belegdatum": "0611",
            "Belegfeld 1": "FR-igE",
            "Belegfeld 2": "191126",
            "Buchungstext": "Société Générale d'Outils FR-igE",
            "EU-Land u. UStID (Bestimmung)": "FR12345678901",
        },
        # a negative invoice flips the side too; Ł and Ż are not in Windows-1252
        {
            "Umsatz (ohne Soll/Haben-Kz)": "23,80",
            "Soll/Haben-Kennzeichen": "S",
            "Konto": str(lodz),
            "Gegenkonto (ohne BU-Schlüssel)": "3400",
            "BU-Schlüssel": "",
            "Belegdatum": "0711",
            "Belegfeld 1": "NEG-1",
            "Belegfeld 2": "191126",
            "Buchungstext": "Lukasz Zak Sp. z o.o. NEG-1",
            "EU-Land u. UStID (Bestimmung)": "PL5260001246",
        },
    ]
    raw = Path(result.files["datev"]).read_bytes()
    assert 'Bäckerei ""Zur Mühle"" GmbH'.encode("cp1252") in raw  # inner quotes doubled, CP1252
    for doc_id in (a, b, c, f, n):
        assert _status(db, org["id"], doc_id) == Status.EXPORTED

    partners = _rows(result.files["datev_partners"])
    assert [f.value for f in partners[0][:5]] == ["EXTF", "700", "16", "Debitoren/Kreditoren", "5"]
    accounts = {row[0].value: (row[1].value, row[8].value, row[9].value) for row in partners[2:]}
    assert accounts == {
        str(bakery): ('Bäckerei "Zur Mühle" GmbH', "DE", "111111111"),
        str(paris): ("Société Générale d'Outils", "FR", "12345678901"),
        str(lodz): ("Lukasz Zak Sp. z o.o.", "PL", "5260001246"),
        str(vienna): ("Wiener Bau GmbH", "AT", "U12345678"),
    }


@pytest.mark.parametrize(
    ("start_month", "wj_beginn"), [(1, "20260101"), (7, "20260701"), (12, "20261201")]
)
def test_december_in_fiscal_years_starting_in_any_month(db, tmp_path, start_month, wj_beginn):
    org = _org(db, fiscal_year_start_month=start_month)
    incoming(db.engine, org["id"], "DEZ-31", day=date(2026, 12, 31), due=None)
    result = run_export(
        db.engine,
        LocalFiles(str(tmp_path)),
        find_organization(db.engine, org["slug"]),
        "2026-12",
        "incoming",
    )
    header, _, row = _rows(result.files["datev"])
    assert [f.value for f in header[12:16]] == [wj_beginn, "4", "20261201", "20261231"]
    assert _values(row)["Belegdatum"] == "3112"
    assert _values(row)["Belegfeld 2"] == "" and _values(row)["Fälligkeit"] == ""


def test_march_in_a_fiscal_year_that_started_the_july_before(db, tmp_path):
    org = _org(db, fiscal_year_start_month=7)
    incoming(db.engine, org["id"], "M-1", day=date(2027, 3, 15))
    result = run_export(
        db.engine,
        LocalFiles(str(tmp_path)),
        find_organization(db.engine, org["slug"]),
        "2027-03",
        "incoming",
    )
    assert _rows(result.files["datev"])[0][12].value == "20260701"


def test_csv_files_read_back_with_pandas_to_the_cent(db, tmp_path):
    org = _org(db)
    for i in range(7):
        incoming(
            db.engine,
            org["id"],
            f"P-{i}",
            taxes=[("S", "19", f"{100 + i}.01", "19.00"), ("S", "7", "0.10", "0.01")],
            lines=[
                ("Schraube, verzinkt", "3", "0.3333", "19"),
                ('Mutter "M6"\nStahl', "1", "1.50", "7"),
            ],
        )
    result = run_export(
        db.engine,
        LocalFiles(str(tmp_path)),
        find_organization(db.engine, org["slug"]),
        "2026-11",
        "incoming",
    )
    invoices = pd.read_csv(result.files["csv"], dtype=str, keep_default_na=False)
    lines = pd.read_csv(result.files["csv_lines"], dtype=str, keep_default_na=False)
    assert len(invoices) == 7 and len(lines) == 14
    assert sum(map(D, invoices["gross_total"])) == sum(
        (D(f"{100 + i}.01") + D("19.01") + D("0.10") for i in range(7)), D(0)
    )
    assert list(invoices["issue_date"].unique()) == ["2026-11-05"]
    # a line break inside a description becomes a space: every row is one line of the file
    assert set(lines["description"]) == {"Schraube, verzinkt", 'Mutter "M6" Stahl'}
    # stored net amounts are cents (3 x 0.3333 = 0.9999 -> 1.00), read back exactly
    assert sum(map(D, lines["net_amount"])) == D("17.50")
    assert set(lines["quantity"]) == {"3.0000", "1.0000"} and "0.3333" in set(lines["unit_price"])
    assert Path(result.files["csv"]).read_bytes().startswith(b"invoice_id,invoice_number,")


def test_a_version_written_with_the_earlier_fingerprint_stays_unchanged(db, tmp_path, monkeypatch):
    """Versions written before the fingerprint hashed the files' bytes carry the earlier one
    (the invoices CSV's rows as Python values): materializing such a month again, unchanged,
    writes no new version; a correction still does."""
    from invoice_pipelines.exports.domain import fingerprints

    org = _org(db)
    first = incoming(db.engine, org["id"], "F-1")
    incoming(db.engine, org["id"], "F-2", taxes=[("S", "7", "10.00", "0.70")])
    store = LocalFiles(str(tmp_path))
    monkeypatch.setattr(
        fingerprints,
        "version_fingerprint",
        lambda rendered, booked, result: fingerprints.legacy_fingerprint(rendered, booked, result),
    )
    v1 = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2026-11", "incoming"
    )
    monkeypatch.undo()
    with tenant_transaction(db.engine, org["id"]) as conn:
        written = conn.execute(
            select(exports.c.fingerprint).where(exports.c.id == v1.export_id)
        ).scalar_one()

    again = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2026-11", "incoming"
    )
    assert again.unchanged and again.version == 1 and again.files == v1.files

    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        ref = load_refs(conn, org["id"], [first])[first]
        change_status(conn, ref, Status.VALIDATED, fields={"gross_total": D("238.00")})
    v2 = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2026-11", "incoming"
    )
    assert v2.version == 2 and not v2.unchanged
    with tenant_transaction(db.engine, org["id"]) as conn:
        now = conn.execute(
            select(exports.c.fingerprint).where(exports.c.id == v2.export_id)
        ).scalar_one()
    assert len(now) == len(written) == 64 and now != written
    # and the new version, with the fingerprint of now, is unchanged when materialized again
    assert run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2026-11", "incoming"
    ).unchanged


def test_unchanged_month_is_idempotent_and_a_correction_is_a_new_version(db, tmp_path):
    org = _org(db)
    first = incoming(db.engine, org["id"], "V-1")
    incoming(db.engine, org["id"], "V-2", taxes=[("S", "7", "10.00", "0.70")])
    store = LocalFiles(str(tmp_path))
    v1 = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2026-11", "incoming"
    )
    v1_bytes = {k: Path(p).read_bytes() for k, p in v1.files.items()}

    again = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2026-11", "incoming"
    )
    assert again.unchanged and again.version == 1 and again.files == v1.files
    with tenant_transaction(db.engine, org["id"]) as conn:
        assert (
            conn.execute(
                select(func.count())
                .select_from(exports)
                .where(exports.c.organization_id == org["id"])
            ).scalar()
            == 1
        )
        assert (
            conn.execute(
                select(func.count())
                .select_from(export_items)
                .where(export_items.c.organization_id == org["id"])
            ).scalar()
            == 2
        )

    # a correction: EXPORTED -> VALIDATED, amounts fixed
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        ref = load_refs(conn, org["id"], [first])[first]
        change_status(conn, ref, Status.VALIDATED, fields={"gross_total": D("238.00")})
    v2 = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2026-11", "incoming"
    )
    assert v2.version == 2 and not v2.unchanged
    assert v2.notes["corrected"] == ["V-1"] and v2.notes["replaces_version"] == 1
    assert _status(db, org["id"], first) == Status.EXPORTED
    # the earlier version's files are untouched, the new ones are new files
    assert {k: Path(p).read_bytes() for k, p in v1.files.items()} == v1_bytes
    assert set(v2.files.values()).isdisjoint(v1.files.values())
    assert len(_rows(v2.files["datev"])) == 4  # the whole month again, both invoices
    with tenant_transaction(db.engine, org["id"]) as conn:
        versions = conn.execute(
            select(exports.c.version, exports.c.invoice_count)
            .where(exports.c.organization_id == org["id"])
            .order_by(exports.c.version)
        ).all()
    assert [tuple(v) for v in versions] == [(1, 2), (2, 2)]


def test_invoices_that_cannot_be_booked_stay_validated_with_their_reason(db, tmp_path):
    org = _org(db, known_vat_rates=["19", "7", "16"], exchange_rates={"CHF": "1.0500"})
    e = db.engine
    good = incoming(e, org["id"], "OK-1")
    odd_rate = incoming(e, org["id"], "R-13", taxes=[("S", "13", "100.00", "13.00")])
    unmapped = incoming(e, org["id"], "R-16", taxes=[("S", "16", "100.00", "16.00")])
    dollars = incoming(e, org["id"], "USD-1", currency="USD")
    francs = incoming(e, org["id"], "CHF-1", currency="CHF", vat_id="CHE-123.456.789")
    undated = incoming(e, org["id"], "NODATE", day=None)
    huge = incoming(e, org["id"], "HUGE", taxes=[("S", "19", "9000000000.00", "1710000000.00")])
    with tenant_transaction(e, org["id"], write=True) as conn:  # uploaded this month, no date read
        conn.execute(
            update(incoming_invoices)
            .where(incoming_invoices.c.id == undated)
            .values(created_at=datetime(2026, 11, 20, tzinfo=UTC))
        )
    result = run_export(
        e, LocalFiles(str(tmp_path)), find_organization(e, org["slug"]), "2026-11", "incoming"
    )
    reasons = {invoice_id: reason for invoice_id, _, reason in result.skipped}
    assert set(reasons) == {odd_rate, unmapped, dollars, undated, huge}
    assert "too large for DATEV" in reasons[huge]
    assert "unknown VAT rate 13 %" in reasons[odd_rate]
    assert "no account mapping for VAT S 16 %" in reasons[unmapped]
    assert "USD without an exchange rate" in reasons[dollars]
    assert "no invoice date" in reasons[undated]
    for doc_id in reasons:
        assert _status(db, org["id"], doc_id) == Status.VALIDATED
    assert _status(db, org["id"], good) == _status(db, org["id"], francs) == Status.EXPORTED
    with tenant_transaction(e, org["id"]) as conn:
        items = {
            r.incoming_invoice_id: (r.status, r.reason)
            for r in conn.execute(
                select(export_items).where(export_items.c.export_id == result.export_id)
            )
        }
    assert items[odd_rate][0] == "skipped" and items[odd_rate][1] == reasons[odd_rate]
    assert items[good] == ("exported", None)
    # foreign currency with a rate: amount in CHF, rate and base amount in EUR
    chf = [_values(r) for r in _rows(result.files["datev"])[2:] if r[10].value == "CHF-1"][0]
    assert (chf["WKZ Umsatz"], chf["Kurs"], chf["Basis-Umsatz"], chf["WKZ Basis-Umsatz"]) == (
        "CHF",
        "1,05",
        "113,33",  # 119.00 / 1.05
        "EUR",
    )
    # the same month again: the skipped ones are still skipped, nothing new is written
    assert run_export(
        e, LocalFiles(str(tmp_path)), find_organization(e, org["slug"]), "2026-11", "incoming"
    ).unchanged


@pytest.mark.parametrize(
    ("org_values", "settings", "message"),
    [
        ({}, {"adviser_number": "12ab"}, "Beraternummer must be a whole number"),
        ({}, {"account_length": 12}, "Sachkontenlänge 12 is outside 4..8"),
        ({"datev_berater_nr": None}, {}, "no DATEV Beraternummer"),
        # a bad setting beside the missing numbers fails the month: the numbers are checked last
        ({"datev_berater_nr": None}, {"encoding": "latin-9"}, "encoding"),
        ({"datev_berater_nr": 12}, {}, "Beraternummer 12 is outside"),
        ({}, {"encoding": "latin-9"}, "encoding"),
    ],
)
def test_bad_settings_stop_the_export_before_any_file(db, tmp_path, org_values, settings, message):
    org = db.new_organization(**{**DATEV, **org_values}, settings={"exports": settings})
    doc = incoming(db.engine, org["id"], "B-1")
    with pytest.raises(ExportSettingsError, match=message):
        run_export(
            db.engine,
            LocalFiles(str(tmp_path)),
            find_organization(db.engine, org["slug"]),
            "2026-11",
            "incoming",
        )
    assert list(tmp_path.iterdir()) == []
    assert _status(db, org["id"], doc) == Status.VALIDATED


def test_sales_invoices_book_on_debtor_accounts(db, tmp_path):
    org = _org(db)
    home = customer(db.engine, org["id"], "K-1001", "Kunde Süd AG")
    eu = customer(db.engine, org["id"], "K-1002", "Klant BV", country="NL", vat_id="NL123456789B01")
    sales_invoice(
        db.engine,
        org["id"],
        home,
        taxes=[("S", "19", "200.00", "38.00"), ("S", "7", "100.00", "7.00")],
    )
    sales_invoice(db.engine, org["id"], home, type_code="381", taxes=[("S", "19", "50.00", "9.50")])
    sales_invoice(db.engine, org["id"], eu, taxes=[("K", "0", "1000.00", "0.00")])
    result = run_export(
        db.engine,
        LocalFiles(str(tmp_path)),
        find_organization(db.engine, org["slug"]),
        "2026-11",
        "sales",
    )
    rows = [_values(r) for r in _rows(result.files["datev"])[2:]]
    assert [
        (
            r["Umsatz (ohne Soll/Haben-Kz)"],
            r["Soll/Haben-Kennzeichen"],
            r["Konto"],
            r["Gegenkonto (ohne BU-Schlüssel)"],
            r["BU-Schlüssel"],
            r["EU-Land u. UStID (Bestimmung)"],
        )
        for r in rows
    ] == [
        ("238,00", "S", "10000", "8400", "", ""),
        ("107,00", "S", "10000", "8300", "", ""),
        ("59,50", "H", "10000", "8400", "", ""),
        ("1000,00", "S", "10001", "8125", "", "NL123456789B01"),
    ]
    partners = _rows(result.files["datev_partners"])[2:]
    assert partners[0][0].value == "10000" and partners[0][15].value == "Hauptstraße 1"
    assert partners[0][18].value == "Berlin"


def test_partner_accounts_stay_the_same_in_later_months(db, tmp_path):
    org = _org(db)
    store = LocalFiles(str(tmp_path))
    incoming(
        db.engine, org["id"], "A-1", day=date(2026, 10, 2), seller="Zeta GmbH", vat_id="DE999999999"
    )
    run_export(db.engine, store, find_organization(db.engine, org["slug"]), "2026-10", "incoming")
    incoming(
        db.engine,
        org["id"],
        "A-2",
        day=date(2026, 11, 2),
        seller="Alpha GmbH",
        vat_id="DE100000000",
    )
    incoming(
        db.engine,
        org["id"],
        "A-3",
        day=date(2026, 11, 3),
        seller="Zeta GmbH (neu)",
        vat_id="DE 999 999 999",
    )
    result = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2026-11", "incoming"
    )
    accounts = {r[10].value: r[6].value for r in _rows(result.files["datev"])[2:]}
    assert accounts == {"A-3": "70000", "A-2": "70001"}
    with tenant_transaction(db.engine, org["id"]) as conn:
        assert (
            conn.execute(
                select(func.count())
                .select_from(partner_accounts)
                .where(partner_accounts.c.organization_id == org["id"])
            ).scalar()
            == 2
        )


def test_a_new_supplier_is_named_as_its_first_invoice_of_the_month_names_it(db, tmp_path):
    """A supplier new to the organization gets its account under the name its first invoice in
    the export's order (date, then id) gives, whatever order the documents were stored in and
    however the others write its name. (On PostgreSQL the suppliers are read on their own, before
    the invoices, so that the version is recorded while the invoices are read.)"""
    org = _org(db)
    e = db.engine
    incoming(e, org["id"], "Z-3", day=date(2026, 11, 20), seller="Zeta Spät GmbH",
             vat_id="DE999999999")  # fmt: skip
    incoming(e, org["id"], "Z-1", day=date(2026, 11, 3), seller="Zeta Früh GmbH",
             vat_id="DE 999 999 999")  # fmt: skip
    incoming(e, org["id"], "Z-2", day=date(2026, 11, 3), seller="Zeta Zweit GmbH",
             vat_id="DE999999999")  # fmt: skip
    incoming(e, org["id"], "Y-1", day=date(2026, 11, 4), seller="Ypsilon AG", vat_id=None)
    result = run_export(
        e, LocalFiles(str(tmp_path)), find_organization(e, org["slug"]), "2026-11", "incoming"
    )
    assert result.invoice_count == 4
    with tenant_transaction(e, org["id"]) as conn:
        named = conn.execute(
            select(partner_accounts.c.account_number, partner_accounts.c.name)
            .where(partner_accounts.c.organization_id == org["id"])
            .order_by(partner_accounts.c.account_number)
        ).all()
    # numbered in the order of their keys: "name:ypsilon ag" before "vat:DE999999999"
    assert [tuple(row) for row in named] == [(70000, "Ypsilon AG"), (70001, "Zeta Früh GmbH")]
    accounts = {r[10].value: r[6].value for r in _rows(result.files["datev"])[2:]}
    assert accounts == {"Z-1": "70001", "Z-2": "70001", "Y-1": "70000", "Z-3": "70001"}


def test_a_direction_the_organization_does_not_export(db, tmp_path):
    org = _org(db, directions=["sales"])
    doc = incoming(db.engine, org["id"], "N-1")
    result = run_export(
        db.engine,
        LocalFiles(str(tmp_path)),
        find_organization(db.engine, org["slug"]),
        "2026-11",
        "incoming",
    )
    assert result.disabled and result.files == {}
    assert _status(db, org["id"], doc) == Status.VALIDATED


def test_utf8_bom_export_for_organizations_that_ask(db, tmp_path):
    org = _org(db, encoding="utf-8-bom")
    incoming(db.engine, org["id"], "U-1", seller="Łukasz Żak")
    result = run_export(
        db.engine,
        LocalFiles(str(tmp_path)),
        find_organization(db.engine, org["slug"]),
        "2026-11",
        "incoming",
    )
    data = Path(result.files["datev"]).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert _values(read_extf(data)[2])["Buchungstext"] == "Łukasz Żak U-1"


def test_an_empty_month_writes_nothing(db, tmp_path):
    org = _org(db)
    result = run_export(
        db.engine,
        LocalFiles(str(tmp_path)),
        find_organization(db.engine, org["slug"]),
        "2026-11",
        "incoming",
    )
    assert result.empty and result.files == {} and list(tmp_path.iterdir()) == []
    with system_transaction(db.engine) as conn:
        assert conn.execute(
            select(organizations.c.id).where(organizations.c.id == org["id"])
        ).scalar()


def test_an_organization_without_datev_that_exports_nothing_is_not_an_error(db, tmp_path):
    org = db.new_organization(settings={"exports": {"directions": []}})  # no DATEV numbers
    for direction in ("incoming", "sales"):
        result = run_export(
            db.engine,
            LocalFiles(str(tmp_path)),
            find_organization(db.engine, org["slug"]),
            "2026-11",
            direction,
        )
        assert result.disabled


def test_what_is_recorded_and_written_before_the_plan_follows_the_plan(db, tmp_path):
    """The lines file and the version's items may start before the plan (PostgreSQL: a new
    version is likely while documents wait in VALIDATED). A skipped invoice then has no lines in
    the file and keeps its status and version; an unchanged month leaves no file behind."""
    org = _org(db)
    e = db.engine
    line = [("Schrauben", "2", "50.00", "19")]
    good = incoming(e, org["id"], "OK-1", lines=line)
    odd = incoming(e, org["id"], "R-13", taxes=[("S", "13", "100.00", "13.00")], lines=line)
    store = LocalFiles(str(tmp_path))
    result = run_export(e, store, find_organization(e, org["slug"]), "2026-11", "incoming")
    assert [invoice_id for invoice_id, _, _ in result.skipped] == [odd]
    lines = pd.read_csv(result.files["csv_lines"])
    assert list(lines["invoice_id"]) == [good]
    with tenant_transaction(e, org["id"]) as conn:
        versions = dict(
            conn.execute(
                select(incoming_invoices.c.id, incoming_invoices.c.processing_version).where(
                    incoming_invoices.c.id.in_([good, odd])
                )
            ).all()
        )
        items = conn.execute(
            select(export_items.c.status, func.count())
            .where(export_items.c.export_id == result.export_id)
            .group_by(export_items.c.status)
        ).all()
    assert versions == {good: 3, odd: 2}
    assert sorted(items) == [("exported", 1), ("skipped", 1)]
    assert _status(db, org["id"], good) == Status.EXPORTED
    assert _status(db, org["id"], odd) == Status.VALIDATED
    files = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    again = run_export(e, store, find_organization(e, org["slug"]), "2026-11", "incoming")
    assert again.unchanged and again.version == result.version
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == files


def _item_again(engine, org_id: int, export_id: int, **invoice) -> None:
    with tenant_transaction(engine, org_id, write=True) as conn:
        conn.execute(
            insert(export_items).values(
                organization_id=org_id, export_id=export_id, status="exported", **invoice
            )
        )


def test_an_export_holds_each_invoice_once_whatever_writes_the_item(db, tmp_path):
    """The database refuses a second item for an invoice in one export (migration 0018: the
    unique constraint before it refused nothing, one invoice column of each item being NULL),
    for incoming and sales invoices; the next version holds the same invoice again."""
    org = _org(db)
    doc = incoming(db.engine, org["id"], "ONCE-1")
    sold = sales_invoice(
        db.engine, org["id"], customer(db.engine, org["id"], "K-ONCE", "Kunde Once")
    )
    store = LocalFiles(str(tmp_path))
    bought = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2026-11", "incoming"
    )
    sales = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2026-11", "sales"
    )
    for export_id, invoice in (
        (bought.export_id, {"incoming_invoice_id": doc}),
        (sales.export_id, {"sales_invoice_id": sold}),
    ):
        with pytest.raises(IntegrityError):
            _item_again(db.engine, org["id"], export_id, **invoice)
    # a correction: the same invoice is an item of version 2 as well
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        change_status(conn, load_refs(conn, org["id"], [doc])[doc], Status.VALIDATED)
    corrected = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2026-11", "incoming"
    )
    assert corrected.version == 2
    with tenant_transaction(db.engine, org["id"]) as conn:
        holding = (
            conn.execute(
                select(export_items.c.export_id)
                .where(export_items.c.incoming_invoice_id == doc)
                .order_by(export_items.c.export_id)
            )
            .scalars()
            .all()
        )
    assert holding == [bought.export_id, corrected.export_id]


def test_a_supplier_books_on_the_creditor_account_the_register_gives_it(db, tmp_path):
    """Issue 54: the DATEV creditor account a person set in the supplier register is the
    supplier's in the export; the other suppliers are numbered around it; an account another
    partner holds already is a clear refusal, not a second partner on one account."""
    from invoice_pipelines.supplier_register import Change, add_supplier, change_supplier

    org = _org(db)
    store = LocalFiles(str(tmp_path))
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        add_supplier(conn, org["id"], name="Alpha GmbH", vat_id="DE100000000",
                     datev_creditor_account=70000, changed_by="Anna", reason="advisor's list")  # fmt: skip
        zeta = add_supplier(conn, org["id"], name="Zeta GmbH", vat_id="DE999999999",
                            datev_creditor_account=70005, changed_by="Anna", reason="list")  # fmt: skip
    for number, seller, vat_id in (
        ("A-1", "Alpha GmbH", "DE100000000"),
        ("B-1", "Beta GmbH", "DE200000000"),
        ("Z-1", "Zeta GmbH", "DE 999 999 999"),
    ):
        incoming(db.engine, org["id"], number, day=date(2026, 10, 2), seller=seller, vat_id=vat_id)
    result = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2026-10", "incoming"
    )
    accounts = {r[10].value: r[6].value for r in _rows(result.files["datev"])[2:]}
    # Beta, unregistered, takes the first number that is neither a partner's nor the register's
    assert accounts == {"A-1": "70000", "B-1": "70001", "Z-1": "70005"}

    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        gamma = add_supplier(conn, org["id"], name="Gamma GmbH", vat_id="DE300000000",
                             datev_creditor_account=70001, changed_by="Anna", reason="typo")  # fmt: skip
        assert zeta and gamma
    incoming(db.engine, org["id"], "G-1", day=date(2026, 11, 2), seller="Gamma GmbH",
             vat_id="DE300000000")  # fmt: skip
    with pytest.raises(Exception, match="70001.*another partner's already"):
        run_export(
            db.engine, store, find_organization(db.engine, org["slug"]), "2026-11", "incoming"
        )
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        change_supplier(conn, org["id"], gamma, Change(datev_creditor_account=70010),
                        changed_by="Anna", reason="the advisor's number")  # fmt: skip
    result = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2026-11", "incoming"
    )
    accounts = {r[10].value: r[6].value for r in _rows(result.files["datev"])[2:]}
    assert accounts == {"G-1": "70010"}
