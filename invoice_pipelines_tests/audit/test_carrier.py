"""The tax-audit data carrier of a year of history, on SQLite and PostgreSQL: index.xml is valid
against the description standard's DTD, and every table read back by its own description (an
independent reader, not our writer) has the database's rows and sums; the originals and
documents it names are in it with the SHA-256 the manifest states."""

from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from lxml import etree
from sqlalchemy import func, select

from invoice_pipelines.audit.domain.carrier import write_carrier
from invoice_pipelines.db.tables import (
    audit_log,
    customers,
    dunning_notices,
    exports,
    incoming_invoice_lines,
    incoming_invoice_taxes,
    incoming_invoices,
    sales_invoice_lines,
    sales_invoice_taxes,
    sales_invoices,
    supplier_changes,
)
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines_tests.audit.dtd_validation import java_errors, lxml_errors
from invoice_pipelines_tests.audit.gdpdu_reader import dangling_foreign_keys, read_carrier
from invoice_pipelines_tests.audit.year_of_history import YEAR, seed_year
from invoice_pipelines_tests.conftest import SHARED_DIR

DTD = SHARED_DIR / "reference" / "gdpdu" / "gdpdu-01-09-2004.dtd"
FIRST, AFTER = date(YEAR, 1, 1), date(YEAR + 1, 1, 1)


@pytest.fixture(autouse=True)
def _dtd(monkeypatch):
    if not DTD.is_file():
        pytest.skip(f"the GDPdU DTD is not at {DTD} (../shared must sit beside the repo)")
    monkeypatch.setenv("INVOICE_PIPELINES_GDPDU_DTD", str(DTD))


def _database(db, org_id: int) -> dict:
    """What the database holds for the year, read with plain queries of the tables."""
    ii, si = incoming_invoices, sales_invoices
    in_year_ii = (
        (ii.c.organization_id == org_id) & (ii.c.issue_date >= FIRST) & (ii.c.issue_date < AFTER)
    )
    in_year_si = (
        (si.c.organization_id == org_id) & (si.c.issue_date >= FIRST) & (si.c.issue_date < AFTER)
    )
    with tenant_transaction(db.engine, org_id) as conn:
        one = lambda q: conn.execute(q).one()  # noqa: E731
        return {
            "incoming_invoices": one(select(func.count(), func.sum(ii.c.gross_total), func.sum(ii.c.tax_total)).where(in_year_ii)),
            "incoming_invoice_lines": one(select(func.count(), func.sum(incoming_invoice_lines.c.net_amount)).join_from(incoming_invoice_lines, ii, ii.c.id == incoming_invoice_lines.c.incoming_invoice_id).where(in_year_ii)),
            "incoming_invoice_vat": one(select(func.count(), func.sum(incoming_invoice_taxes.c.amount)).join_from(incoming_invoice_taxes, ii, ii.c.id == incoming_invoice_taxes.c.incoming_invoice_id).where(in_year_ii)),
            "sales_invoices": one(select(func.count(), func.sum(si.c.gross_total), func.sum(si.c.tax_total)).where(in_year_si)),
            "sales_invoice_lines": one(select(func.count(), func.sum(sales_invoice_lines.c.net_amount)).join_from(sales_invoice_lines, si, si.c.id == sales_invoice_lines.c.sales_invoice_id).where(in_year_si)),
            "sales_invoice_vat": one(select(func.count(), func.sum(sales_invoice_taxes.c.amount)).join_from(sales_invoice_taxes, si, si.c.id == sales_invoice_taxes.c.sales_invoice_id).where(in_year_si)),
            "customers": one(select(func.count()).where(customers.c.organization_id == org_id)),
            "datev_exports": one(select(func.count(), func.sum(exports.c.booking_count), func.sum(exports.c.gross_total)).where(exports.c.organization_id == org_id)),
            "dunning_notices": one(select(func.count(), func.sum(dunning_notices.c.total_claimed)).where(dunning_notices.c.organization_id == org_id)),
            "supplier_changes": one(select(func.count()).where(supplier_changes.c.organization_id == org_id, supplier_changes.c.changed_at < datetime(YEAR + 1, 1, 1, tzinfo=UTC))),
            "audit_trail": one(select(func.count()).where(audit_log.c.organization_id == org_id, audit_log.c.created_at >= datetime(YEAR, 1, 1, tzinfo=UTC), audit_log.c.created_at < datetime(YEAR + 1, 1, 1, tzinfo=UTC))),
        }  # fmt: skip


def test_a_year_reads_back_by_its_own_description(db, tmp_path):
    history = seed_year(db, tmp_path / "stores")
    org = find_organization(db.engine, history.org["id"])
    folder = tmp_path / "carrier"

    result = write_carrier(db.engine, history.stores, org, YEAR, folder)

    assert result.missing == [] and result.changed == []
    index = etree.parse(str(folder / "index.xml"))
    assert index.docinfo.doctype == '<!DOCTYPE DataSet SYSTEM "gdpdu-01-09-2004.dtd">'
    assert (folder / DTD.name).read_bytes() == DTD.read_bytes()
    assert lxml_errors(folder / "index.xml", folder / DTD.name) is None
    if shutil.which("java"):
        assert java_errors(folder / "index.xml") is None

    tables = read_carrier(folder)
    expected = _database(db, org.id)
    count, gross, tax = expected["incoming_invoices"]
    assert (len(tables["incoming_invoices"].rows), tables["incoming_invoices"].sum("gross_total"),
            tables["incoming_invoices"].sum("tax_total")) == (count, gross, tax) == (13, gross, tax)  # fmt: skip
    assert "ER-OLD" not in {r["invoice_number"] for r in tables["incoming_invoices"].rows}
    for name, column in (
        ("incoming_invoice_lines", "net_amount"),
        ("incoming_invoice_vat", "amount"),
        ("sales_invoice_lines", "net_amount"),
        ("sales_invoice_vat", "amount"),
        ("dunning_notices", "total_claimed"),
    ):
        assert (len(tables[name].rows), tables[name].sum(column)) == tuple(expected[name]), name
    count, gross, tax = expected["sales_invoices"]
    assert (len(tables["sales_invoices"].rows), tables["sales_invoices"].sum("gross_total"),
            tables["sales_invoices"].sum("tax_total")) == (count, gross, tax) == (13, gross, tax)  # fmt: skip
    exports_count, bookings, booked_gross = expected["datev_exports"]
    assert len(tables["datev_exports"].rows) == exports_count == 4
    assert tables["datev_exports"].sum("gross_total") == booked_gross
    assert len(tables["datev_bookings"].rows) == bookings > 0
    assert {r["version"] for r in tables["datev_bookings"].rows} == {Decimal(1)}
    for name in ("customers", "supplier_changes", "audit_trail"):
        assert len(tables[name].rows) == expected[name][0] > 0, name
    assert len(tables["payments"].rows) == 2
    assert tables["payments"].sum("amount") == Decimal("289.19")
    assert dangling_foreign_keys(tables) == []

    # what a text holds comes back as it was, its delimiter and encapsulator included
    assert 'Müller; "Werkzeugbau" GmbH' in {
        r["seller_name"] for r in tables["incoming_invoices"].rows
    }
    # ... and MaxLength declares its UTF-8 bytes, not its characters (issue 85): 26 characters,
    # 27 bytes ("ü" is two)
    [seller] = [c for c in tables["incoming_invoices"].columns if c.name == "seller_name"]
    assert seller.max_length == len('Müller; "Werkzeugbau" GmbH'.encode()) == 27
    assert "Papier Sorte 3" in {r["description"] for r in tables["incoming_invoice_lines"].rows}

    # the originals and documents by relative path, with the SHA-256 recorded when stored
    original = tables["originals"].rows[0]
    assert (folder / original["file"]).read_bytes() == history.original["data"]
    assert original["sha256"] == history.original["hash"]
    document = tables["sales_invoice_documents"].rows[0]
    assert (
        hashlib.sha256((folder / document["file"]).read_bytes()).hexdigest() == document["sha256"]
    )
    assert (folder / tables["dunning_notices"].rows[0]["letter"]).is_file()
    assert all((folder / r["datev_file"]).is_file() for r in tables["datev_exports"].rows)

    # the manifest names every file of the carrier with its SHA-256
    manifest = dict(
        reversed(line.split("  ", 1))
        for line in (folder / "manifest-sha256.txt").read_text().splitlines()
    )
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert set(manifest) == files - {"manifest-sha256.txt"}
    assert all(
        hashlib.sha256((folder / p).read_bytes()).hexdigest() == h for p, h in manifest.items()
    )
