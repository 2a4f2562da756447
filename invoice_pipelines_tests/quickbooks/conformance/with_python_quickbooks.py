"""The scenario groups through python-quickbooks 0.9.12 and intuit-oauth (PyPI), as their
documentation shows: `AuthClient` finds the token endpoint in the simulator's discovery document
(its `environment` is that document's URL) and a subclass of `QuickBooks` names the simulator's
API base (`api_url_v3` is a class attribute; there is no constructor argument for it)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
from intuitlib.client import AuthClient
from intuitlib.exceptions import AuthClientError
from quickbooks import QuickBooks
from quickbooks.batch import batch_create
from quickbooks.cdc import change_data_capture
from quickbooks.exceptions import QuickbooksException
from quickbooks.objects.account import Account
from quickbooks.objects.attachable import Attachable
from quickbooks.objects.base import AttachableRef, LinkedTxn, Ref
from quickbooks.objects.bill import Bill
from quickbooks.objects.billpayment import BillPayment, BillPaymentLine, CheckPayment
from quickbooks.objects.company_info import CompanyInfo
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import (
    AccountBasedExpenseLine,
    AccountBasedExpenseLineDetail,
    SalesItemLine,
    SalesItemLineDetail,
)
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item
from quickbooks.objects.payment import Payment, PaymentLine
from quickbooks.objects.vendor import Vendor
from quickbooks.objects.vendorcredit import VendorCredit

from invoice_pipelines_devtools.qbo_simulator import QboSimulator
from invoice_pipelines_devtools.qbo_simulator.api import CompanyHandle
from invoice_pipelines_tests.quickbooks.conformance.scenarios import DOCUMENT, Scenarios, outcome

PAGE = 1000


def _failure(exc: QuickbooksException) -> dict:
    """What a python-quickbooks user reads off the exception: QBO's code and message. On a 401 the
    library puts the HTTP status in error_code and QBO's (lower-case) fault body in detail."""
    if exc.error_code == 401:
        fault = json.loads(exc.detail)["fault"]["error"][0]
        return {"status": 401, "code": str(fault["code"]), "message": fault["message"]}
    return {"status": None, "code": str(exc.error_code), "message": exc.message}


def _outcome(call) -> str | dict:
    return outcome(call, QuickbooksException, _failure)


class PythonQuickBooks(Scenarios):
    name = "python-quickbooks"

    def __init__(self, sim: QboSimulator, company: CompanyHandle) -> None:
        super().__init__(sim, company)
        self.api = type("SimulatorQuickBooks", (QuickBooks,), {"api_url_v3": sim.api_url})
        self.qb = self.connect(company.access_token, company.refresh_token)

    def auth_client(self, access_token: str | None, refresh_token: str | None) -> AuthClient:
        return AuthClient(
            client_id=self.company.client_id,
            client_secret=self.company.client_secret,
            redirect_uri="http://127.0.0.1:9/callback",
            environment=self.sim.discovery_url,
            access_token=access_token,
            refresh_token=refresh_token,
        )

    def connect(self, access_token: str, refresh_token: str) -> QuickBooks:
        return self.api(
            auth_client=self.auth_client(access_token, refresh_token),
            refresh_token=refresh_token,
            company_id=self.realm,
            minorversion=75,
            use_decimal=True,
        )

    # -- groups ------------------------------------------------------------------------------

    def queries(self) -> dict:
        qb = self.qb
        found = Customer.query("select * from customer where DisplayName = 'Kunde 0007'", qb=qb)
        quoted = Customer.filter(DisplayName="O'Brien & Söhne", qb=qb)
        count = qb.query("select count(*) from customer")["QueryResponse"]["totalCount"]
        with_inactive = Customer.count("Active IN (true, false)", qb=qb)
        everything: list = []
        while True:
            page = Customer.query(
                f"select * from customer startposition {len(everything) + 1} maxresults {PAGE}",
                qb=qb,
            )
            everything += page
            if len(page) < PAGE:
                break
        ordered = Customer.query(
            "select * from customer where DisplayName like 'Kunde 00%' "
            "orderby DisplayName desc maxresults 3",
            qb=qb,
        )
        second_page = Customer.all(start_position=1001, max_results=PAGE, qb=qb)
        return {
            "found": sorted(c.DisplayName for c in found),
            "quoted": sorted(c.DisplayName for c in quoted),
            "count": count,
            "count_with_inactive": with_inactive,
            "all": len(everything),
            "all_distinct": len({c.Id for c in everything}),
            "second_page": len(second_page),
            "ordered": [c.DisplayName for c in ordered],
        }

    def crud(self) -> dict:
        qb = self.qb

        def conformance() -> Customer:
            customer = Customer()
            customer.DisplayName, customer.CompanyName = "Conformance GmbH", "Conformance"
            return customer

        created = conformance().save(qb=qb, request_id="crud-create-1")
        replayed = conformance().save(qb=qb, request_id="crud-create-1")
        current = Customer.get(created.Id, qb=qb)
        current.sparse, current.Notes = True, "synced"
        updated = current.save(qb=qb)
        stale = Customer.get(created.Id, qb=qb)
        stale.sparse, stale.SyncToken, stale.Notes = True, created.SyncToken, "too late"
        duplicate = Customer()
        duplicate.DisplayName = "Conformance GmbH"
        stored = Customer.get(created.Id, qb=qb)
        return {
            "created": {"SyncToken": created.SyncToken},
            "replayed_same_id": replayed.Id == created.Id,
            "updated": {
                "SyncToken": updated.SyncToken,
                "Notes": updated.Notes,
                "CompanyName": updated.CompanyName,
            },
            "stale": _outcome(lambda: stale.save(qb=qb)),
            "duplicate": _outcome(lambda: duplicate.save(qb=qb)),
            "unknown": _outcome(lambda: Customer.get("999999", qb=qb)),
            "stored": {"SyncToken": stored.SyncToken, "Notes": stored.Notes},
        }

    def batch(self) -> dict:
        existing = Customer()
        existing.DisplayName = "Batch Existing"
        existing.save(qb=self.qb)
        customers = []
        for name in ("Batch A", "Batch Existing", "Batch B"):
            customer = Customer()
            customer.DisplayName = name
            customers.append(customer)
        result = batch_create(customers, qb=self.qb)
        items = {c.DisplayName: "created" for c in result.successes}
        for fault in result.faults:
            items[fault.original_object.DisplayName] = str(fault.Error[0].code)
        return {"items": items}

    def _item(self, name: str, price: str) -> Item:
        item = Item()
        item.Name, item.Type, item.UnitPrice = name, "Service", Decimal(price)
        item.IncomeAccountRef = Ref()
        item.IncomeAccountRef.value = "1"
        return item.save(qb=self.qb)

    def _invoice(self, customer: Customer, item: Item, doc_number: str, *lines) -> Invoice:
        invoice = Invoice()
        invoice.CustomerRef = customer.to_ref()
        invoice.DocNumber = doc_number
        invoice.Line = []
        for quantity, price in lines:
            line = SalesItemLine()
            line.Amount = Decimal(quantity) * Decimal(price)
            line.SalesItemLineDetail = SalesItemLineDetail()
            line.SalesItemLineDetail.ItemRef = item.to_ref()
            line.SalesItemLineDetail.Qty = quantity
            line.SalesItemLineDetail.UnitPrice = Decimal(price)
            invoice.Line.append(line)
        return invoice.save(qb=self.qb)

    def cdc(self) -> dict:
        since = datetime.fromtimestamp(self.sim.now() - 60, timezone(timedelta(hours=-7)))
        customer = Customer()
        customer.DisplayName = "CDC Kunde"
        customer = customer.save(qb=self.qb)
        item = self._item("CDC Item", "10")
        self._invoice(customer, item, "CDC-1", (1, "10"))
        doomed = self._invoice(customer, item, "CDC-2", (1, "10"))
        deleted = doomed.delete(qb=self.qb)
        # the library writes changedSince without an offset: company-local time, as QBO reads it
        changes = change_data_capture([Customer, Invoice], since, qb=self.qb)
        invoices = list(changes.Invoice) if hasattr(changes, "Invoice") else []
        gone = [i for i in invoices if getattr(i, "status", None) == "Deleted"]
        return {
            "delete_status": deleted["Invoice"].get("status"),
            "customers": sorted(c.DisplayName for c in changes.Customer),
            "invoices": sorted(i.DocNumber for i in invoices if i not in gone),
            "deleted": ["CDC-2" if i.Id == doomed.Id else i.Id for i in gone],
        }

    def payments(self) -> dict:
        customer = Customer()
        customer.DisplayName = "Zahler AG"
        customer = customer.save(qb=self.qb)
        item = self._item("Beratung", "100")
        invoice = self._invoice(customer, item, "PAY-1", (3, "100"), (1, "50.50"))

        def pay(amount: str) -> Payment:
            payment = Payment()
            payment.CustomerRef = customer.to_ref()
            payment.TotalAmt = Decimal(amount)
            line = PaymentLine()
            line.Amount = Decimal(amount)
            linked = LinkedTxn()
            linked.TxnId, linked.TxnType = invoice.Id, "Invoice"
            line.LinkedTxn = [linked]
            payment.Line = [line]
            return payment.save(qb=self.qb)

        pay("100")
        after_first = Invoice.get(invoice.Id, qb=self.qb)
        second = pay("250.50")
        after_second = Invoice.get(invoice.Id, qb=self.qb)
        other = self._invoice(customer, item, "PAY-2", (1, "120"))
        other.void(qb=self.qb)
        voided = Invoice.get(other.Id, qb=self.qb)
        return {
            "total": invoice.TotalAmt,
            "balance": invoice.Balance,
            "balance_after_first": after_first.Balance,
            "balance_after_second": after_second.Balance,
            "second_unapplied": second.UnappliedAmt,
            "linked_payments": sum(1 for t in after_second.LinkedTxn if t.TxnType == "Payment"),
            "voided": {
                "TotalAmt": voided.TotalAmt,
                "Balance": voided.Balance,
                "PrivateNote": voided.PrivateNote or "",
            },
        }

    def payables(self) -> dict:
        qb = self.qb
        vendor = Vendor()
        vendor.DisplayName = "Lieferant Schulz"
        vendor = vendor.save(qb=qb)
        customer = Customer()
        customer.DisplayName = "Kunde und Lieferant"
        customer.save(qb=qb)
        duplicate = Vendor()
        duplicate.DisplayName = "Kunde und Lieferant"
        [office] = Account.filter(AccountType="Expense", Name="Office Expenses", qb=qb)
        bank = Account.filter(AccountType="Bank", qb=qb)[0]

        def lines(*amounts: str) -> list:
            out = []
            for amount in amounts:
                line = AccountBasedExpenseLine()
                line.Amount = Decimal(amount)
                line.AccountBasedExpenseLineDetail = AccountBasedExpenseLineDetail()
                line.AccountBasedExpenseLineDetail.AccountRef = office.to_ref()
                out.append(line)
            return out

        bill = Bill()
        bill.VendorRef, bill.DocNumber, bill.TxnDate = vendor.to_ref(), "RE-1", "2026-11-02"
        bill.Line = lines("300.00", "50.50")
        bill = bill.save(qb=qb)
        no_vendor = Bill()
        no_vendor.Line = lines("1.00")
        # README: an Attachable with an AttachableRef to the object, FileName, ContentType and the
        # file (_FilePath, or _FileBytes), saved: the library uploads it to /upload
        attachment = Attachable()
        ref = AttachableRef()
        ref.EntityRef = bill.to_ref()
        attachment.AttachableRef.append(ref)
        attachment.FileName, attachment.ContentType = "RE-1.pdf", "application/pdf"
        attachment._FileBytes = DOCUMENT
        attachment = attachment.save(qb=qb)
        note = Attachable()
        note_ref = AttachableRef()
        note_ref.EntityRef = bill.to_ref()
        note.AttachableRef.append(note_ref)
        note.Note = "Skonto 2 % bis 12.11."
        note = note.save(qb=qb)
        linked = Attachable.get(attachment.Id, qb=qb)
        credit = VendorCredit()
        credit.VendorRef, credit.Line = vendor.to_ref(), lines("20.00")
        credit = credit.save(qb=qb)
        payment = BillPayment()
        payment.VendorRef, payment.PayType = vendor.to_ref(), "Check"
        payment.CheckPayment = CheckPayment()
        payment.CheckPayment.BankAccountRef = bank.to_ref()
        payment.TotalAmt = Decimal("330.50")
        for txn, amount in ((bill, "350.50"), (credit, "20.00")):
            line = BillPaymentLine()
            line.Amount = Decimal(amount)
            line.LinkedTxn.append(txn.to_linked_txn())
            payment.Line.append(line)
        payment.save(qb=qb)
        paid = Bill.get(bill.Id, qb=qb)
        return {
            "vendor": {"DisplayName": vendor.DisplayName, "SyncToken": vendor.SyncToken},
            "duplicate_vendor": _outcome(lambda: duplicate.save(qb=qb)),
            "bill": {
                "TotalAmt": bill.TotalAmt,
                "Balance": bill.Balance,
                "DocNumber": bill.DocNumber,
            },
            "no_vendor": _outcome(lambda: no_vendor.save(qb=qb)),
            "attachable": {
                "FileName": linked.FileName,
                "ContentType": linked.ContentType,
                "Size": linked.Size,
                "linked_to_bill": any(
                    r.EntityRef.type == "Bill" and r.EntityRef.value == bill.Id
                    for r in linked.AttachableRef
                ),
            },
            "downloaded_same": httpx.get(linked.TempDownloadUri).content == DOCUMENT,
            "note": note.Note,
            "credit": {
                "TotalAmt": credit.TotalAmt,
                "Balance": VendorCredit.get(credit.Id, qb=qb).to_dict().get("Balance"),
            },
            "balance_after_payment": paid.Balance,
            "bill_payments": sum(1 for t in paid.LinkedTxn if t.TxnType.startswith("BillPayment")),
            "found_bills": len(Bill.filter(DocNumber="RE-1", qb=qb)),
        }

    def _company_info(self, qb: QuickBooks):
        return lambda: CompanyInfo.get(self.realm, qb=qb)

    def _refresh(self, refresh_token: str) -> tuple[AuthClient | None, str]:
        auth = self.auth_client(None, refresh_token)
        try:
            auth.refresh()
        except AuthClientError as exc:
            return None, json.loads(exc.content).get("error", str(exc.status_code))
        return auth, "ok"

    def tokens(self) -> dict:
        first = _outcome(self._company_info(self.qb))
        self.sim.advance(3601)  # the access token's hour is over
        expired = _outcome(self._company_info(self.qb))
        auth, refreshed = self._refresh(self.company.refresh_token)
        if auth is None:
            return {"first": first, "expired": expired, "refresh": refreshed}
        qb = self.connect(auth.access_token, auth.refresh_token)
        after_refresh = _outcome(self._company_info(qb))
        self.sim.advance(25 * 3600)  # past the superseded refresh token's grace
        _, old = self._refresh(self.company.refresh_token)
        current, current_outcome = self._refresh(auth.refresh_token)
        return {
            "first": first,
            "expired": expired,
            "rotated": auth.refresh_token != self.company.refresh_token,
            "after_refresh": after_refresh,
            "old_refresh_token": old,
            "current_refresh_token": current_outcome,
            "rotated_again": current is not None and current.refresh_token != auth.refresh_token,
        }

    def throttling(self) -> dict:
        info = self._company_info(self.qb)
        return self.throttle(lambda: _outcome(info))
