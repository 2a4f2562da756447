"""Supplier invoices of a connected organization, read by the real intake, for the payables tests:
documents written as a supplier writes them (XRechnung CII, or a text PDF), dropped into the
upload store, registered and read (VALIDATED), then pushed through the production client."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select, update

from invoice_pipelines.core.skonto import DiscountTerm
from invoice_pipelines.db.tables import (
    incoming_invoice_payments,
    incoming_invoice_settlements,
    incoming_invoices,
    qbo_bill_queue,
    qbo_bills,
    qbo_vendors,
    supplier_changes,
    suppliers,
)
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.documents.domain.letters import PdfaLetters
from invoice_pipelines.einvoice.cii import XRECHNUNG_GUIDELINE, write_cii
from invoice_pipelines.einvoice.layout import render_invoice_text
from invoice_pipelines.intake.domain.parse import parse_document
from invoice_pipelines.intake.domain.pipeline import process_documents
from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
from invoice_pipelines.quickbooks.domain.client import quote
from invoice_pipelines.quickbooks.domain.payables_settings import (
    change_connection_settings,
    set_expense_account,
)
from invoice_pipelines.quickbooks.domain.sync.bill_payments import pull_bill_payments
from invoice_pipelines.quickbooks.domain.sync.bills import letter_pdf, push_bills
from invoice_pipelines.quickbooks.domain.sync.vendors import sync_vendors
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines.supplier_register import Change, add_supplier, change_supplier
from invoice_pipelines_devtools.demo.invoices import (
    DEMO_BUYER,
    LOGISTICS_SUPPLIER,
    OFFICE_SUPPLIER,
    SOFTWARE_SUPPLIER,
    Company,
    LineItem,
    document_extras,
    invoice_from_lines,
)
from invoice_pipelines_devtools.demo.writers.textpdf import write_text_pdf

D = Decimal
ISSUED = date(2026, 11, 2)
PAPER = [
    LineItem("Kopierpapier A4, Karton", D("8"), D("21.90")),
    LineItem("Fachbuch Büroorganisation", D("1"), D("34.90"), D("7")),
]


def supplier_invoice(
    number: str,
    *,
    seller: Company = OFFICE_SUPPLIER,
    lines: list[LineItem] = PAPER,
    issued: date = ISSUED,
    due_days: int = 30,
    type_code: str = "380",
    currency: str = "EUR",
    skonto: tuple[tuple[int, str], ...] = (),
):
    invoice = invoice_from_lines(
        number=number,
        issue_date=issued,
        due_date=None if type_code == "381" else issued + timedelta(days=due_days),
        seller=seller,
        buyer=DEMO_BUYER,
        lines=lines,
        currency=currency,
        type_code=type_code,
        guideline_id=XRECHNUNG_GUIDELINE,
    )
    terms = tuple(DiscountTerm(days, D(percent)) for days, percent in skonto)
    return dataclasses.replace(invoice, discount_terms=terms)


SUPPLIERS = {c.name: c for c in (OFFICE_SUPPLIER, LOGISTICS_SUPPLIER, SOFTWARE_SUPPLIER)}


def xml_of(invoice, seller: Company | None = None) -> bytes:
    """The invoice as its seller writes it (`seller`: one not among the demo's suppliers)."""
    extras = document_extras(
        seller or SUPPLIERS[invoice.seller_name],
        DEMO_BUYER,
        buyer_reference="MWB-0815",
        payment_terms="Zahlbar innerhalb von 30 Tagen.",
    )
    return write_cii(invoice, guideline_id=XRECHNUNG_GUIDELINE, extra=extras)


def pdf_of(invoice) -> bytes:
    return write_text_pdf(render_invoice_text(invoice))


class InProcess:
    def parse_many(self, items):
        return [parse_document(data, name) for data, name in items]


@dataclass
class Books:
    """One connected organization's supplier invoices and their way into its QBO company."""

    qbo: object  # conftest.Connected
    root: Path

    @property
    def store(self) -> LocalUploads:
        return LocalUploads(str(self.root))

    def receive(self, files: dict[str, bytes], *, confirm: bool = True) -> dict[str, dict]:
        """The files dropped, registered and read by the intake; each document by file name.
        `confirm`: a person confirms the suppliers their first invoices registered (without it
        their bills wait for that person: tests of that say so)."""
        slug = self.qbo.org["slug"]
        for name, data in files.items():
            self.store.put(slug, name, data)
            past = time.time() - 120  # the scan leaves files younger than a minute alone
            os.utime(self.root / slug / name, (past, past))
        scan = scan_uploads(
            self.qbo.engine,
            self.store,
            ScanState(),
            system=self.qbo.engine,
            max_files_per_tick=len(files) + 1,
            only_organizations={slug},
        )
        ids = [i for batch in scan.batches for i in batch.document_ids]
        process_documents(
            self.qbo.engine,
            self.store,
            find_organization(self.qbo.engine, slug),
            ids,
            parser=InProcess(),
            ocr=None,
        )
        if confirm:
            self.confirm_suppliers()
        return {
            (doc["raw_json"] or {}).get("filename"): doc
            for doc in self.documents()
            if doc["id"] in ids
        }

    def documents(self) -> list[dict]:
        with tenant_transaction(self.qbo.engine, self.qbo.org_id) as conn:
            return [
                dict(r)
                for r in conn.execute(
                    select(incoming_invoices)
                    .where(incoming_invoices.c.organization_id == self.qbo.org_id)
                    .order_by(incoming_invoices.c.id)
                ).mappings()
            ]

    def document(self, document_id: int) -> dict:
        return next(d for d in self.documents() if d["id"] == document_id)

    def allow(self, *, create_vendors: bool = True, account: str | None = "Office Expenses"):
        change_connection_settings(self.qbo.engine, self.qbo.org_id, create_vendors=create_vendors)
        if account is not None:
            set_expense_account(self.qbo.engine, self.qbo.org_id, self.account_id(account))

    def account_id(self, name: str) -> str:
        with self.qbo.client() as client:
            (account,) = client.find_accounts(f"Name = {quote(name)}")
        return account.id

    def push(self, **options):
        with self.qbo.client() as client:
            return push_bills(
                self.qbo.engine,
                self.qbo.organization,
                client,
                read_upload=self.store.read,
                write_letter=letter_pdf(PdfaLetters()),
                **options,
            )

    def pay(self, bill: dict, amount, day: date | None = None) -> dict:
        """A bill payment "as a QBO user": `amount` by check from Checking on `day`."""
        fields = {
            "VendorRef": {"value": bill["VendorRef"]["value"]},
            "PayType": "Check",
            "CheckPayment": {"BankAccountRef": {"value": self.account_id("Checking")}},
            "TotalAmt": str(amount),
            "Line": [
                {"Amount": str(amount), "LinkedTxn": [{"TxnId": bill["Id"], "TxnType": "Bill"}]}
            ],
        }
        if day is not None:
            fields["TxnDate"] = day.isoformat()
        return self.qbo.sim.create_as_user(self.qbo.realm, "BillPayment", fields)

    def pull_vendors(self):
        with self.qbo.client() as client:
            return sync_vendors(self.qbo.engine, self.qbo.organization, client)

    def register(self, company: Company, **values) -> int:
        """`company` registered as a supplier by a person (as `invoice-pipelines suppliers`
        does), its name, VAT id and IBAN; its id."""
        with tenant_transaction(self.qbo.engine, self.qbo.org_id, write=True) as conn:
            return add_supplier(
                conn,
                self.qbo.org_id,
                name=company.name,
                vat_id=company.vat_id,
                ibans=[(company.iban, None)] if company.iban else [],
                changed_by="anna",
                reason="a supplier we buy from",
                **values,
            )

    def confirm_suppliers(self, *ids: int) -> None:
        """A person confirms the suppliers `ids` (default: every unconfirmed one), as
        `invoice-pipelines suppliers confirm` does (set here directly)."""
        s = suppliers.c
        with tenant_transaction(self.qbo.engine, self.qbo.org_id, write=True) as conn:
            conn.execute(
                update(suppliers)
                .where(
                    s.organization_id == self.qbo.org_id,
                    s.confirmed_at.is_(None),
                    *([s.id.in_(ids)] if ids else []),
                )
                .values(confirmed_at=datetime.now(UTC), confirmed_by="anna")
            )

    def supplier_id(self, name: str) -> int:
        (found,) = [s["id"] for s in self.suppliers() if s["name"] == name]
        return found

    def link_vendor(self, supplier_id: int, vendor_qbo_id: str) -> None:
        """A person links a supplier of the register to its QuickBooks vendor."""
        with tenant_transaction(self.qbo.engine, self.qbo.org_id, write=True) as conn:
            change_supplier(
                conn,
                self.qbo.org_id,
                supplier_id,
                Change(qbo_vendor_id=vendor_qbo_id),
                changed_by="anna",
                reason="checked the vendor in QuickBooks",
            )

    def pull_payments(self):
        with self.qbo.client() as client:
            return pull_bill_payments(self.qbo.engine, self.qbo.organization, client)

    # -- what QBO and our database hold ---------------------------------------------------

    def qbo_records(self, entity: str) -> list[dict]:
        return self.qbo.sim.records(self.qbo.realm, entity)

    def _rows(self, table, order) -> list[dict]:
        with tenant_transaction(self.qbo.engine, self.qbo.org_id) as conn:
            return [
                dict(r)
                for r in conn.execute(
                    select(table).where(table.c.organization_id == self.qbo.org_id).order_by(order)
                ).mappings()
            ]

    def bills(self) -> dict[int, dict]:
        return {r["incoming_invoice_id"]: r for r in self._rows(qbo_bills, qbo_bills.c.id)}

    def queue(self) -> list[dict]:
        return self._rows(qbo_bill_queue, qbo_bill_queue.c.id)

    def vendors(self) -> list[dict]:
        return self._rows(qbo_vendors, qbo_vendors.c.id)

    def suppliers(self) -> list[dict]:
        return self._rows(suppliers, suppliers.c.id)

    def supplier_changes(self) -> list[dict]:
        return self._rows(supplier_changes, supplier_changes.c.id)

    def payments(self) -> list[dict]:
        return self._rows(incoming_invoice_payments, incoming_invoice_payments.c.id)

    def settlements(self) -> dict[int, dict]:
        rows = self._rows(incoming_invoice_settlements, incoming_invoice_settlements.c.id)
        return {r["incoming_invoice_id"]: r for r in rows}
