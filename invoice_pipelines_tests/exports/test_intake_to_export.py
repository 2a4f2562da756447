"""A real e-invoice from upload to a DATEV booking: the intake stores its VAT breakdown and lines,
the export books them; and migration 0006 gives older documents the same rows."""

from __future__ import annotations

import os
import time
from decimal import Decimal
from pathlib import Path

import pandas as pd
from sqlalchemy import insert, select

from invoice_pipelines.core.datev import BOOKING_COLUMNS
from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.migrate import upgrade
from invoice_pipelines.db.tables import (
    incoming_invoice_lines,
    incoming_invoice_taxes,
    incoming_invoices,
    organizations,
)
from invoice_pipelines.db.tenancy import find_organization, system_transaction, tenant_transaction
from invoice_pipelines.exports.domain.pipeline import run_export
from invoice_pipelines.intake.domain.parse import ParseOutcome, parse_document
from invoice_pipelines.intake.domain.pipeline import process_documents
from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines_tests.conftest import samples_dir
from invoice_pipelines_tests.exports.books import DATEV
from invoice_pipelines_tests.exports.datev_reader import read_extf

EINFACH = "ZUGFeRD-corpus/XML-Rechnung/CII/EN16931_Einfach.cii.xml"  # 473.00 + 56.87 = 529.87


class InProcessParser:
    def parse_many(self, items: list[tuple[bytes, str]]) -> list[ParseOutcome]:
        return [parse_document(data, filename) for data, filename in items]


def test_a_validated_sample_invoice_is_booked_and_becomes_exported(db, tmp_path):
    org = db.new_organization(**DATEV)
    uploads = LocalUploads(str(tmp_path / "uploads"))
    uploads.put(org["slug"], "einfach.xml", (samples_dir() / EINFACH).read_bytes())
    past = time.time() - 120
    os.utime(tmp_path / "uploads" / org["slug"] / "einfach.xml", (past, past))
    scan = scan_uploads(db.engine, uploads, ScanState(), system=db.system_engine)
    ids = [i for b in scan.batches if b.organization_slug == org["slug"] for i in b.document_ids]
    organization = find_organization(db.engine, org["slug"])
    process_documents(db.engine, uploads, organization, ids, parser=InProcessParser(), ocr=None)
    mine = incoming_invoices.c.organization_id == org["id"]
    with tenant_transaction(db.engine, org["id"]) as conn:
        taxes = conn.execute(
            select(incoming_invoice_taxes.c.vat_category, incoming_invoice_taxes.c.vat_rate).where(
                incoming_invoice_taxes.c.organization_id == org["id"]
            )
        ).all()
        lines = (
            conn.execute(
                select(incoming_invoice_lines.c.description).where(
                    incoming_invoice_lines.c.organization_id == org["id"]
                )
            )
            .scalars()
            .all()
        )
        status = conn.execute(select(incoming_invoices.c.status).where(mine)).scalar_one()
    assert status == "VALIDATED"
    assert sorted((c, str(r)) for c, r in taxes) == [("S", "19.00"), ("S", "7.00")]
    assert len(lines) == 2

    result = run_export(
        db.engine,
        LocalFiles(str(tmp_path / "exports")),
        find_organization(db.engine, org["slug"]),
        "2018-03",
        "incoming",
    )
    assert result.skipped == [] and result.invoice_count == 1
    rows = read_extf(Path(result.files["datev"]).read_bytes())[2:]
    amounts = sorted(Decimal(r[0].value.replace(",", ".")) for r in rows)
    assert sum(amounts) == Decimal("529.87")
    assert {r[10].value for r in rows} == {"471102"} and {r[9].value for r in rows} == {"0503"}
    # Leistungsdatum: the document's actual delivery date (BT-72)
    assert {r[BOOKING_COLUMNS.index("Leistungsdatum")].value for r in rows} == {"05032018"}
    lines_csv = pd.read_csv(result.files["csv_lines"], dtype=str)
    assert len(lines_csv) == 2 and set(lines_csv["invoice_number"]) == {"471102"}
    with tenant_transaction(db.engine, org["id"]) as conn:
        assert (
            conn.execute(select(incoming_invoices.c.status).where(mine)).scalar_one() == "EXPORTED"
        )


def test_migration_0006_gives_older_documents_their_breakdown_and_lines(
    tmp_path, pg_scratch_factory
):
    invoice = {
        "number": "ALT-1",
        "vat_breakdown": [
            {"category": "S", "rate": "19.00", "basis": "100.00", "amount": "19.00"},
            {"category": "ZZZ", "rate": "1234567", "basis": "x", "amount": None},
        ],
        "lines": [
            {"description": "Alt", "quantity": "2", "unit_price": "50", "net_amount": "100.00"}
        ],
    }
    for url in (f"sqlite:///{tmp_path / 'old.sqlite3'}", pg_scratch_factory()):
        owner = make_engine(url, owner=True)
        upgrade(owner, "0005")
        with system_transaction(owner, write=True) as conn:
            org_id = conn.execute(
                insert(organizations).values(slug="old", name="Old").returning(organizations.c.id)
            ).scalar_one()
            conn.execute(
                insert(incoming_invoices).values(
                    organization_id=org_id,
                    status="VALIDATED",
                    content_hash="h1",
                    raw_json={"filename": "a.xml", "invoice": invoice},
                )
            )
            conn.execute(
                insert(incoming_invoices).values(
                    organization_id=org_id, status="FAILED", content_hash="h2", raw_json={"x": 1}
                )
            )
        upgrade(owner)
        with system_transaction(owner) as conn:
            taxes = conn.execute(
                select(
                    incoming_invoice_taxes.c.vat_category,
                    incoming_invoice_taxes.c.vat_rate,
                    incoming_invoice_taxes.c.basis,
                )
            ).all()
            lines = conn.execute(select(incoming_invoice_lines.c.description)).scalars().all()
        # the unusable entry is kept with what fits (no category, rate or basis), not dropped
        assert sorted(taxes, key=str) == sorted(
            [("S", Decimal("19.00"), Decimal("100.00")), (None, None, None)], key=str
        )
        assert lines == ["Alt"]
        owner.dispose()


def test_the_service_date_is_read_from_cii_and_ubl():
    from datetime import date

    for path in (EINFACH, EINFACH.replace("CII/", "UBL/").replace(".cii.", ".ubl.")):
        outcome = parse_document((samples_dir() / path).read_bytes(), Path(path).name)
        assert outcome.invoice.service_date == date(2018, 3, 5), path


def _text_pdf_organization(db, tmp_path, today):
    """An organization with the demo's text PDF invoice read in (VALIDATED)."""
    from invoice_pipelines_devtools.demo.invoices import demo_supplier_invoices

    [(name, pdf)] = [(n, d) for n, d in demo_supplier_invoices(today) if n.endswith(".pdf")]
    org = db.new_organization(**DATEV)
    root = tmp_path / org["slug"]
    uploads = LocalUploads(str(root))
    uploads.put(org["slug"], name, pdf)
    past = time.time() - 120
    os.utime(root / org["slug"] / name, (past, past))
    scan = scan_uploads(db.engine, uploads, ScanState(), system=db.system_engine)
    ids = [i for b in scan.batches if b.organization_slug == org["slug"] for i in b.document_ids]
    organization = find_organization(db.engine, org["slug"])
    process_documents(db.engine, uploads, organization, ids, parser=InProcessParser(), ocr=None)
    return org


def test_a_text_pdf_invoice_gets_its_vat_category_in_the_invoices_csv(db, tmp_path, monkeypatch):
    """A text PDF (or a scan) states rates, not UNTDID 5305 codes: its VAT rows have no category.
    The invoices CSV printed "? 19: ..." for them; a rate above 0 is category S, as it is booked.
    A month exported with "?" is not written again as a new version for that alone."""
    from datetime import date, timedelta

    from invoice_pipelines.exports.domain import fingerprints, formatting

    today = date(2026, 11, 23)
    month = f"{today - timedelta(days=1):%Y-%m}"
    store = LocalFiles(str(tmp_path / "exports"))
    org = _text_pdf_organization(db, tmp_path, today)
    with tenant_transaction(db.engine, org["id"]) as conn:
        categories = (
            conn.execute(
                select(incoming_invoice_taxes.c.vat_category).where(
                    incoming_invoice_taxes.c.organization_id == org["id"]
                )
            )
            .scalars()
            .all()
        )
    assert categories == [None]  # what the document says: a rate, no category code

    result = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), month, "incoming"
    )

    assert result.invoice_count == 1 and result.skipped == []
    [breakdown] = pd.read_csv(result.files["csv"], dtype=str)["vat_breakdown"]
    assert breakdown.startswith("S 19: ") and "?" not in breakdown

    # a month exported by the code before, with "?" in the column and the fingerprint of then
    before = _text_pdf_organization(db, tmp_path, today)
    printed_before = formatting.breakdown_text
    monkeypatch.setattr(
        formatting, "breakdown_text", lambda inv, **_: printed_before(inv, as_printed_before=True)
    )
    monkeypatch.setattr(
        fingerprints,
        "version_fingerprint",
        lambda rendered, booked, result: fingerprints.legacy_fingerprint(rendered, booked, result),
    )
    first = run_export(
        db.engine, store, find_organization(db.engine, before["slug"]), month, "incoming"
    )
    [breakdown] = pd.read_csv(first.files["csv"], dtype=str)["vat_breakdown"]
    assert breakdown.startswith("? 19: ")
    monkeypatch.undo()
    # materialized again: nothing was corrected, so no new version only for that column
    again = run_export(
        db.engine, store, find_organization(db.engine, before["slug"]), month, "incoming"
    )
    assert again.unchanged and again.version == first.version == 1
