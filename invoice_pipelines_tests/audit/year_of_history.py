"""A year of an organization's history (2025) for the tax-audit tests, written by the project's
own code where it has a writer (uploads, the supplier register, the exports) and as the intake and
billing write them otherwise (invoices, lines, VAT, payments, a dunning notice, a letter and a
document in their stores), plus one invoice of 2024 that the 2025 carrier must leave out."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert, update

from invoice_pipelines.db.tables import (
    audit_log,
    dunning_notices,
    incoming_invoice_payments,
    sales_invoice_documents,
    sales_invoice_payments,
    sales_invoices,
    supplier_changes,
)
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.exports.domain.pipeline import run_export
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.file_stores import LocalFileStore
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines.resources.files.upload_stores import LocalUploadStore
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines.supplier_register import add_supplier
from invoice_pipelines_tests.exports.books import DATEV, customer, incoming, sales_invoice
from invoice_pipelines_tests.housekeeping.helpers import at, old_upload

D = Decimal
YEAR = 2025
ZERO = D("0.00")


@dataclass
class History:
    org: dict
    stores: dict
    root: Path
    original: dict = field(default_factory=dict)
    document_path: Path | None = None
    letter_path: Path | None = None


def stores_in(root: Path) -> dict:
    return {
        "upload_store": LocalUploads(str(root / "uploads")),
        "document_store": LocalFiles(str(root / "documents"), area="documents"),
        "export_store": LocalFiles(str(root / "exports")),
    }


def configure_commands(monkeypatch, db, root: Path) -> None:
    """The console script's database and local stores: the ones `stores_in(root)` names."""
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    monkeypatch.setenv("INVOICE_PIPELINES_STORAGE", "local")
    monkeypatch.setenv("INVOICE_PIPELINES_UPLOAD_DIR", str(root / "uploads"))
    monkeypatch.setenv("INVOICE_PIPELINES_DOCUMENT_DIR", str(root / "documents"))
    monkeypatch.setenv("INVOICE_PIPELINES_EXPORT_DIR", str(root / "exports"))


def run_resources(db, root: Path) -> dict:
    """The Dagster resources of a run over the same database and stores."""
    return {
        "database": Database(url=db.url),
        "system_database": SystemDatabase(url=db.url),
        "export_store": LocalFileStore(root=str(root / "exports")),
        "upload_store": LocalUploadStore(root=str(root / "uploads")),
        "document_store": LocalFileStore(root=str(root / "documents")),
    }


def seed_year(db, root: Path) -> History:
    org = db.new_organization(**DATEV)
    stores = stores_in(root)
    e, oid = db.engine, org["id"]
    history = History(org, stores, root)
    # an original as the upload sensor registers it, dated in March
    history.original = old_upload(
        db, stores["upload_store"], org, uploaded=at(YEAR, 3, 2), status="VALIDATED",
        issued=date(YEAR, 3, 1),
    )  # fmt: skip
    for month in range(1, 13):
        incoming(
            e, oid, f"ER-{month:02d}", day=date(YEAR, month, 10), due=date(YEAR, month, 24),
            seller='Müller; "Werkzeugbau" GmbH' if month == 3 else "Schmidt Papier KG",
            taxes=[("S", "19", f"{100 * month}.00", f"{19 * month}.00"), ("S", "7", "10.00", "0.70")],
            lines=[(f"Papier\nSorte {month}", "2", f"{50 * month}.00", "19"), ("Tinte", "1", "10.00", "7")],
        )  # fmt: skip
    incoming(e, oid, "ER-OLD", day=date(YEAR - 1, 12, 1))  # 2024: not in the 2025 carrier
    buyer = customer(e, oid, "K-1", "Kunde Eins GmbH", vat_id="DE999999999")
    other = customer(e, oid, "K-2", "Zwei & Söhne")
    sales = [
        sales_invoice(e, oid, buyer if month % 2 else other, day=date(YEAR, month, 15),
                      taxes=[("S", "19", f"{200 + month}.00", f"{(D(200 + month) * D('0.19')).quantize(D('0.01'))}")])
        for month in range(1, 13)
    ]  # fmt: skip
    credit = sales_invoice(e, oid, buyer, day=date(YEAR, 3, 20), type_code="381",
                           taxes=[("S", "19", "50.00", "9.50")])  # fmt: skip
    with tenant_transaction(e, oid, write=True) as conn:
        conn.execute(
            update(sales_invoices)
            .where(sales_invoices.c.id == credit)
            .values(corrects_invoice_id=sales[2], credit_reason="Preisnachlass")
        )
        conn.execute(
            insert(sales_invoice_payments).values(
                organization_id=oid, sales_invoice_id=sales[0], qbo_payment_id="P1",
                paid_on=date(YEAR, 2, 1), amount=D("239.19"), source="qbo",
            )
        )  # fmt: skip
        conn.execute(
            insert(incoming_invoice_payments).values(
                organization_id=oid, incoming_invoice_id=history.original["document_id"],
                qbo_payment_id="BP1", paid_on=date(YEAR, 3, 20), amount=D("50.00"), source="qbo",
            )
        )  # fmt: skip
        data = b"%PDF-1.7 invoice RE-2025-000001"
        stores["document_store"].write(f"{org['slug']}/2025-01/RE-1.pdf", [data])
        history.document_path = root / "documents" / org["slug"] / "2025-01" / "RE-1.pdf"
        conn.execute(
            insert(sales_invoice_documents).values(
                organization_id=oid, sales_invoice_id=sales[0], kind="facturx", status="generated",
                storage_key=f"{org['slug']}/2025-01/RE-1.pdf", size_bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(), format="facturx",
            )
        )  # fmt: skip
        letter = b"%PDF-1.7 reminder"
        stores["document_store"].write(f"{org['slug']}/letters/dn-1.pdf", [letter])
        history.letter_path = root / "documents" / org["slug"] / "letters" / "dn-1.pdf"
        conn.execute(
            insert(dunning_notices).values(
                organization_id=oid, sales_invoice_id=sales[1], customer_id=other, level=1,
                level_name="Zahlungserinnerung", as_of=date(YEAR, 3, 5), days_overdue=5,
                currency="EUR", amount_open=D("241.38"), fee=D("5.00"), interest=ZERO,
                interest_rate_percent=ZERO, fees_total=D("5.00"), interest_total=ZERO,
                total_claimed=D("246.38"), template="reminder", channel="letter", language="de",
                letter_status="written", letter_key=f"{org['slug']}/letters/dn-1.pdf",
                letter_sha256=hashlib.sha256(letter).hexdigest(),
            )
        )  # fmt: skip
        add_supplier(conn, oid, name="Schmidt Papier KG", changed_by="anna", reason="new supplier",
                     vat_id="DE123456789")  # fmt: skip
        conn.execute(
            insert(audit_log).values(
                organization_id=oid, created_by="anna", action="batch_invoice",
                entity_type="batch_job", entity_id="7", details={"orders": 12, "note": 'a "b"; c'},
                created_at=datetime(YEAR, 5, 5, 9, 0, tzinfo=UTC),
            )
        )  # fmt: skip
    with db.owner_engine.begin() as conn:  # the register's change was made in the year
        conn.execute(
            update(supplier_changes)
            .where(supplier_changes.c.organization_id == oid)
            .values(changed_at=datetime(YEAR, 2, 3, 10, 0, tzinfo=UTC))
        )
    organization = find_organization(e, oid)
    for period in (f"{YEAR}-03", f"{YEAR}-06"):
        for direction in ("incoming", "sales"):
            run_export(e, stores["export_store"], organization, period, direction)
    return history
