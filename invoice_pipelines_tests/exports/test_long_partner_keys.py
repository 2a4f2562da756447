"""A supplier named with more than 250 characters: its partner key is stored cut to the column's
255 characters, and later exports find its account again by that cut (before, the month's second
export gave it a new account on the taken key and stopped with PartnerAccountTaken)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from invoice_pipelines.db.tables import partner_accounts
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.exports.domain.pipeline import run_export
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.exports.books import DATEV, incoming
from invoice_pipelines_tests.exports.datev_reader import read_extf

LONG_NAME = "Lieferant " + "x" * 245  # 255 characters: its key "name:..." has 260


def _accounts(path: str) -> dict[str, str]:
    """Belegfeld 1 -> Konto of a Buchungsstapel."""
    rows = read_extf(Path(path).read_bytes())[2:]
    return {row[10].value: row[6].value for row in rows}


def test_a_supplier_with_a_long_name_keeps_its_account_in_later_exports(db, tmp_path):
    org = db.new_organization(**DATEV)
    store = LocalFiles(str(tmp_path))
    incoming(db.engine, org["id"], "L-1", seller=LONG_NAME, vat_id=None)
    first = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2026-11", "incoming"
    )
    # a correction of the month and the next month: the same supplier, the same account
    incoming(db.engine, org["id"], "L-2", seller=LONG_NAME, vat_id=None)
    again = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2026-11", "incoming"
    )
    incoming(db.engine, org["id"], "L-3", day=date(2026, 12, 3), seller=LONG_NAME, vat_id=None)
    december = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2026-12", "incoming"
    )
    assert again.version == first.version + 1
    assert _accounts(first.files["datev"]) == {"L-1": "70000"}
    assert _accounts(again.files["datev"]) == {"L-1": "70000", "L-2": "70000"}
    assert _accounts(december.files["datev"]) == {"L-3": "70000"}
    with tenant_transaction(db.engine, org["id"]) as conn:
        count = conn.execute(
            select(func.count())
            .select_from(partner_accounts)
            .where(partner_accounts.c.organization_id == org["id"])
        ).scalar()
    assert count == 1
