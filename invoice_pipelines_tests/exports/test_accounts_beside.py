"""PostgreSQL: the export of a month of incoming invoices records its version from its snapshot
on, while the connection beside reads the month's invoices and the accounts given so far; the
suppliers new to the organization are numbered from those rows and their accounts written once
the recording is done. The accounts and the files are the ones the export gives when it reads
the month and gives the accounts on its one connection first (as on SQLite, for sales, and
on PostgreSQL when no second connection is to be had): the same number, name, VAT id and
country for every partner, the files byte for byte.

(SQLite has only the one connection's way: nothing to compare there.)"""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from invoice_pipelines.db.tables import partner_accounts
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.exports.domain import beside as connection_beside
from invoice_pipelines.exports.domain import lines_beside, pipeline
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines.supplier_register import add_supplier
from invoice_pipelines_tests.exports.books import DATEV, incoming

# (month, number, day, seller, VAT id, taxes or None for the usual 19 %)
DOCUMENTS = [
    ("2026-10", "ALT-1", date(2026, 10, 2), "Alt GmbH", "DE111111111", None),
    ("2026-10", "ALT-2", date(2026, 10, 9), "Alt GmbH (neu)", "DE 111 111 111", None),
    # November: a known supplier, one the register gives an account, and new ones whose first
    # invoice in date and id order names them (stored out of that order)
    ("2026-11", "Z-3", date(2026, 11, 20), "Zeta Spät GmbH", "DE999999999", None),
    ("2026-11", "ALT-3", date(2026, 11, 3), "Alt Umbenannt GmbH", "DE111111111", None),
    ("2026-11", "Z-1", date(2026, 11, 3), "Zeta Früh GmbH", "DE 999 999 999", None),
    ("2026-11", "R-1", date(2026, 11, 4), "Registriert KG", "DE555555555", None),
    ("2026-11", "Z-2", date(2026, 11, 3), "Zeta Zweit GmbH", "de999999999", None),
    ("2026-11", "Y-1", date(2026, 11, 4), "Ypsilon AG", None, None),
    ("2026-11", "Y-2", date(2026, 11, 1), "ypsilon ag", None, None),
    ("2026-11", "AT-1", date(2026, 11, 6), "Österreich GmbH", "ATU12345678", None),
    # December: a new supplier whose only invoice is skipped still gets its account
    ("2026-12", "Q-1", date(2026, 12, 1), "Quer GmbH", "DE777777777", None),
    (
        "2026-12",
        "ODD-13",
        date(2026, 12, 2),
        "Schief AG",
        "DE888888888",
        [("S", "13", "100.00", "13.00")],
    ),  # fmt: skip
    ("2026-12", "Z-4", date(2026, 12, 3), "Zeta Dezember GmbH", "DE999999999", None),
]


def _organization(db, slug: str) -> dict:
    org = db.new_organization(slug=slug, **DATEV)
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        add_supplier(conn, org["id"], name="Registriert KG", vat_id="DE555555555",
                     datev_creditor_account=70100, changed_by="Anna", reason="advisor's list")  # fmt: skip
    for _, number, day, seller, vat_id, taxes in DOCUMENTS:
        extra = {"taxes": taxes} if taxes else {}
        incoming(db.engine, org["id"], number, day=day, seller=seller, vat_id=vat_id,
                 lines=[(f"Posten {number}", "2", "50.00", "19")], **extra)  # fmt: skip
    return org


def _accounts(db, org_id: int) -> list[tuple]:
    a = partner_accounts.c
    with tenant_transaction(db.engine, org_id) as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(a.kind, a.partner_key, a.account_number, a.name, a.vat_id, a.country)
                .where(a.organization_id == org_id)
                .order_by(a.account_number)
            )
        ]


def _comparable(path: str, slug: str, ids: dict[str, str]) -> bytes:
    """The file's bytes with what differs between two organizations of the same rows made the
    same: the DATEV header's creation time, the organization's slug (in the header's
    Bezeichnung), and our invoice ids (the CSV files' first column)."""
    data = Path(path).read_bytes()
    data = data.replace(slug.encode(), b"SLUG")
    if path.endswith(".csv") and not Path(path).name.startswith(("EXTF", "DTVF")):
        text = data.decode("utf-8")
        if text.startswith("invoice_id"):
            rows = list(csv.reader(io.StringIO(text, newline="")))
            for row in rows[1:]:
                row[0] = ids.get(row[0], f"unknown {row[0]}")
            out = io.StringIO(newline="")
            csv.writer(out, lineterminator="\r\n" if "\r\n" in text else "\n").writerows(rows)
            return out.getvalue().encode("utf-8")
    first, sep, rest = data.partition(b"\r\n")
    return re.sub(rb";\d{17};", b";STAMP;", first, count=1) + sep + rest


def _invoice_ids(db, org_id: int) -> dict[str, str]:
    """invoice id -> its number (the numbers are the same in both organizations)."""
    from invoice_pipelines.db.tables import incoming_invoices

    t = incoming_invoices.c
    with tenant_transaction(db.engine, org_id) as conn:
        return {
            str(doc_id): number
            for doc_id, number in conn.execute(
                select(t.id, t.invoice_number).where(t.organization_id == org_id)
            )
        }


def test_accounts_and_files_are_those_of_the_one_connection_export(
    pg_database, tmp_path, monkeypatch
):
    db = pg_database
    beside = _organization(db, "twin-beside")
    alone = _organization(db, "twin-alone-")  # the same length: the same header
    store = LocalFiles(str(tmp_path))
    numbered_beside = []
    real_number = connection_beside.number_accounts

    def number_accounts(*args, **kwargs):
        numbered_beside.append(args[0].slug)
        return real_number(*args, **kwargs)

    monkeypatch.setattr(connection_beside, "number_accounts", number_accounts)

    def no_connection(*args, **kwargs):
        raise OperationalError("connect", {}, Exception("too many clients already"))

    ids = {
        beside["slug"]: _invoice_ids(db, beside["id"]),
        alone["slug"]: _invoice_ids(db, alone["id"]),
    }
    for month in ("2026-10", "2026-11", "2026-12"):
        first = pipeline.run_export(
            db.engine, store, find_organization(db.engine, beside["slug"]), month, "incoming"
        )
        with monkeypatch.context() as patched:
            patched.setattr(lines_beside, "write_lines_beside", no_connection)
            second = pipeline.run_export(
                db.engine, store, find_organization(db.engine, alone["slug"]), month, "incoming"
            )
        assert numbered_beside.count(beside["slug"]) == 1 and alone["slug"] not in numbered_beside
        numbered_beside.clear()
        assert _accounts(db, beside["id"]) == _accounts(db, alone["id"])
        assert (first.invoice_count, first.skipped_count) == (
            second.invoice_count,
            second.skipped_count,
        )
        assert sorted(first.files) == sorted(second.files)
        for kind in first.files:
            assert _comparable(first.files[kind], beside["slug"], ids[beside["slug"]]) == (
                _comparable(second.files[kind], alone["slug"], ids[alone["slug"]])
            ), kind
    assert first.skipped_count == 1
    # what both gave: known suppliers keep their account and name, the register's account is
    # taken, new ones are named as their first invoice in date and id order names them
    assert [row[2:] for row in _accounts(db, beside["id"])] == [
        (70000, "Alt GmbH", "DE111111111", "DE"),
        (70001, "ypsilon ag", None, None),
        (70002, "Österreich GmbH", "ATU12345678", "AT"),
        (70003, "Zeta Früh GmbH", "DE 999 999 999", "DE"),
        (70100, "Registriert KG", "DE555555555", "DE"),
        # December's new suppliers after the highest account given (the register's)
        (70101, "Quer GmbH", "DE777777777", "DE"),
        (70102, "Schief AG", "DE888888888", "DE"),
    ]
