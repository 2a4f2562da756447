"""The scenario groups through our own client (quickbooks/domain/client.py) as the sync uses it: tokens
stored encrypted in a real (SQLite) database and refreshed by `TokenStore`, its rate limiter and
backoff on the simulator's clock (a wait moves QBO's time instead of sleeping)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx

from invoice_pipelines.quickbooks.domain.client import QboClient, batch_fault, quote, request_id
from invoice_pipelines.quickbooks.domain.errors import QboError, TokenError
from invoice_pipelines.quickbooks.domain.limits import Clock, RealmLimiter
from invoice_pipelines.quickbooks.domain.payables import (
    Applied,
    AttachmentLink,
    BillDraft,
    BillPaymentDraft,
    ExpenseLine,
    VendorCreditDraft,
    VendorDraft,
)
from invoice_pipelines.quickbooks.domain.tokens import TokenStore, save_connection, token_cipher
from invoice_pipelines_devtools.qbo_simulator import QboSimulator
from invoice_pipelines_tests.quickbooks.conformance.scenarios import DOCUMENT, Scenarios, outcome
from invoice_pipelines_tests.quickbooks.conftest import TOKEN_KEY, connect


class SimulatorClock(Clock):
    """Our client's clock is the simulator's: a wait advances QBO's time by as much."""

    def __init__(self, sim: QboSimulator) -> None:
        super().__init__(1.0)
        self.sim = sim

    def now(self) -> float:
        return self.sim.now()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.sim.advance(seconds)


def _failure(exc: QboError) -> dict:
    return {"status": exc.status, "code": exc.code, "message": exc.message}


def _outcome(call) -> str | dict:
    return outcome(call, QboError, _failure)


def _line(item_id: str, quantity: str, price: str) -> dict:
    return {
        "Amount": Decimal(quantity) * Decimal(price),
        "DetailType": "SalesItemLineDetail",
        "SalesItemLineDetail": {
            "ItemRef": {"value": item_id},
            "Qty": Decimal(quantity),
            "UnitPrice": Decimal(price),
        },
    }


class OurClient(Scenarios):
    name = "ours"

    def __init__(self, sim: QboSimulator, db) -> None:
        self.connected = connect(db, sim)
        super().__init__(sim, self.connected.company)
        self.clock = SimulatorClock(sim)
        self.http = httpx.Client(timeout=30)
        self.client = self.open()

    def open(self) -> QboClient:
        """A client as open_client builds one, with its clock and limiter on the simulator's time."""
        tokens = TokenStore(
            self.connected.engine,
            self.connected.org_id,
            cipher=token_cipher(TOKEN_KEY),
            token_url=self.sim.token_url,
            http=self.http,
        )
        return QboClient(
            base_url=self.sim.base_url,
            realm_id=self.realm,
            tokens=tokens,
            clock=self.clock,
            limiter=RealmLimiter(clock=self.clock),
            http=self.http,
        )

    def close(self) -> None:
        self.http.close()

    def _create(self, entity: str, body: dict, key: str) -> dict:
        return self.client.create(entity, body, requestid=request_id("conformance", key))

    # -- groups ------------------------------------------------------------------------------

    def queries(self) -> dict:
        client = self.client
        count_all = "select count(*) from customer where Active in (true, false)"
        quoted = quote("O'Brien & Söhne")
        everything = client.query_all("Customer", include_inactive=False)
        return {
            "found": [
                c["DisplayName"]
                for c in client.query(
                    "select * from customer where DisplayName = 'Kunde 0007'"
                ).get("Customer", [])
            ],
            "quoted": [
                c["DisplayName"]
                for c in client.query(f"select * from customer where DisplayName = {quoted}").get(
                    "Customer", []
                )
            ],
            "count": client.query("select count(*) from customer")["totalCount"],
            "count_with_inactive": client.query(count_all)["totalCount"],
            "all": len(everything),
            "all_distinct": len({c["Id"] for c in everything}),
            "second_page": len(
                client.query("select * from customer startposition 1001 maxresults 1000").get(
                    "Customer", []
                )
            ),
            "ordered": [
                c["DisplayName"]
                for c in client.query(
                    "select * from customer where DisplayName like 'Kunde 00%' "
                    "orderby DisplayName desc maxresults 3"
                )["Customer"]
            ],
        }

    def crud(self) -> dict:
        client = self.client
        body = {"DisplayName": "Conformance GmbH", "CompanyName": "Conformance"}
        created = client.create("Customer", body, requestid="crud-create-1")
        replayed = client.create("Customer", body, requestid="crud-create-1")
        updated = client.sparse_update(
            "Customer", created["Id"], created["SyncToken"], {"Notes": "synced"}, requestid="u1"
        )
        stored = client.get("Customer", created["Id"])
        return {
            "created": {"SyncToken": created["SyncToken"]},
            "replayed_same_id": replayed["Id"] == created["Id"],
            "updated": {k: updated.get(k) for k in ("SyncToken", "Notes", "CompanyName")},
            "stale": _outcome(
                lambda: client.sparse_update(
                    "Customer",
                    created["Id"],
                    created["SyncToken"],
                    {"Notes": "too late"},
                    requestid="u2",
                )
            ),
            "duplicate": _outcome(
                lambda: client.create(
                    "Customer", {"DisplayName": "Conformance GmbH"}, requestid="c2"
                )
            ),
            "unknown": _outcome(lambda: client.get("Customer", "999999")),
            "stored": {"SyncToken": stored["SyncToken"], "Notes": stored.get("Notes")},
        }

    def batch(self) -> dict:
        self._create("Customer", {"DisplayName": "Batch Existing"}, "existing")
        names = {"1": "Batch A", "2": "Batch Existing", "3": "Batch B"}
        answers = self.client.batch(
            [
                {"bId": bid, "operation": "create", "Customer": {"DisplayName": name}}
                for bid, name in names.items()
            ],
            requestid=request_id("conformance", "batch"),
        )
        items = {}
        for bid, answer in answers.items():
            fault = batch_fault(answer)
            items[names[bid]] = fault.code if fault is not None else "created"
        return {"items": items}

    def _customer_and_item(self, prefix: str, name: str, item: str, price: str):
        customer = self._create("Customer", {"DisplayName": name}, f"{prefix}-c")
        item_body = {
            "Name": item,
            "Type": "Service",
            "UnitPrice": Decimal(price),
            "IncomeAccountRef": {"value": "1"},
        }
        created_item = self._create("Item", item_body, f"{prefix}-i")
        return customer, created_item

    def _invoice(self, customer: dict, doc_number: str, lines: list[dict]) -> dict:
        body = {"CustomerRef": {"value": customer["Id"]}, "DocNumber": doc_number, "Line": lines}
        return self._create("Invoice", body, doc_number)

    def cdc(self) -> dict:
        since = datetime.fromtimestamp(self.sim.now() - 60, UTC)
        customer, item = self._customer_and_item("cdc", "CDC Kunde", "CDC Item", "10")
        self._invoice(customer, "CDC-1", [_line(item["Id"], "1", "10")])
        doomed = self._invoice(customer, "CDC-2", [_line(item["Id"], "1", "10")])
        deleted = self.client.request(
            "POST",
            "invoice",
            params={"operation": "delete", "requestid": request_id("conformance", "delete")},
            body={"Id": doomed["Id"], "SyncToken": doomed["SyncToken"]},
        )
        changes = self.client.cdc(["Customer", "Invoice"], since)
        invoices = [i for i in changes["Invoice"] if i.get("status") != "Deleted"]
        gone = [i for i in changes["Invoice"] if i.get("status") == "Deleted"]
        return {
            "delete_status": deleted["Invoice"].get("status"),
            "customers": sorted(c["DisplayName"] for c in changes["Customer"]),
            "invoices": sorted(i["DocNumber"] for i in invoices),
            "deleted": ["CDC-2" if i["Id"] == doomed["Id"] else i["Id"] for i in gone],
        }

    def payments(self) -> dict:
        client = self.client
        customer, item = self._customer_and_item("pay", "Zahler AG", "Beratung", "100")
        invoice = self._invoice(
            customer, "PAY-1", [_line(item["Id"], "3", "100"), _line(item["Id"], "1", "50.50")]
        )

        def pay(amount: str) -> dict:
            body = {
                "CustomerRef": {"value": customer["Id"]},
                "TotalAmt": Decimal(amount),
                "Line": [
                    {
                        "Amount": Decimal(amount),
                        "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}],
                    }
                ],
            }
            return self._create("Payment", body, f"pay-{amount}")

        pay("100")
        after_first = client.get("Invoice", invoice["Id"])
        second = pay("250.50")
        after_second = client.get("Invoice", invoice["Id"])
        other = self._invoice(customer, "PAY-2", [_line(item["Id"], "1", "120")])
        client.void_invoice(
            other["Id"], other["SyncToken"], requestid=request_id("conformance", "void")
        )
        voided = client.get("Invoice", other["Id"])
        return {
            "total": invoice["TotalAmt"],
            "balance": invoice["Balance"],
            "balance_after_first": after_first["Balance"],
            "balance_after_second": after_second["Balance"],
            "second_unapplied": second["UnappliedAmt"],
            "linked_payments": sum(
                1 for t in after_second.get("LinkedTxn", []) if t["TxnType"] == "Payment"
            ),
            "voided": {
                "TotalAmt": voided["TotalAmt"],
                "Balance": voided["Balance"],
                "PrivateNote": voided.get("PrivateNote", ""),
            },
        }

    def payables(self) -> dict:
        client = self.client

        def rid(key: str) -> str:
            return request_id("conformance", "payables", key)

        vendor = client.create_vendor(VendorDraft("Lieferant Schulz"), requestid=rid("v"))
        self._create("Customer", {"DisplayName": "Kunde und Lieferant"}, "payables-c")
        [office] = client.find_accounts("AccountType = 'Expense' AND Name = 'Office Expenses'")
        bank = client.find_accounts("AccountType = 'Bank'")[0]

        def lines(*amounts: str) -> tuple[ExpenseLine, ...]:
            return tuple(ExpenseLine(Decimal(a), account_id=office.id) for a in amounts)

        draft = BillDraft(
            vendor_id=vendor.id,
            lines=lines("300.00", "50.50"),
            doc_number="RE-1",
            txn_date=datetime(2026, 11, 2).date(),
        )
        bill = client.create_bill(draft, requestid=rid("b"))
        attachable = client.upload_attachment(
            DOCUMENT,
            file_name="RE-1.pdf",
            content_type="application/pdf",
            links=[AttachmentLink("Bill", bill.id)],
            requestid=rid("a"),
        )
        note = client.create_note(
            "Skonto 2 % bis 12.11.", links=[AttachmentLink("Bill", bill.id)], requestid=rid("n")
        )
        linked = client.get_attachable(attachable.id)
        credit = client.create_vendor_credit(
            VendorCreditDraft(vendor_id=vendor.id, lines=lines("20.00")), requestid=rid("vc")
        )
        client.create_bill_payment(
            BillPaymentDraft(
                vendor_id=vendor.id,
                total=Decimal("330.50"),
                account_id=bank.id,
                bills=(Applied(bill.id, Decimal("350.50")),),
                credits=(Applied(credit.id, Decimal("20.00")),),
            ),
            requestid=rid("p"),
        )
        paid = client.get_bill(bill.id)
        return {
            "vendor": {"DisplayName": vendor.display_name, "SyncToken": vendor.sync_token},
            "duplicate_vendor": _outcome(
                lambda: client.create_vendor(
                    VendorDraft("Kunde und Lieferant"), requestid=rid("dup")
                )
            ),
            "bill": {"TotalAmt": bill.total, "Balance": bill.balance, "DocNumber": bill.doc_number},
            "no_vendor": _outcome(
                lambda: client.create_bill(BillDraft(lines=lines("1.00")), requestid=rid("nv"))
            ),
            "attachable": {
                "FileName": linked.file_name,
                "ContentType": linked.content_type,
                "Size": linked.size,
                "linked_to_bill": AttachmentLink("Bill", bill.id) in linked.links,
            },
            "downloaded_same": client.download_attachment(attachable.id) == DOCUMENT,
            "note": note.note,
            "credit": {
                "TotalAmt": credit.total,
                "Balance": client.get_vendor_credit(credit.id).balance,
            },
            "balance_after_payment": paid.balance,
            "bill_payments": len(paid.payment_ids),
            "found_bills": len(client.find_bills(f"DocNumber = {quote('RE-1')}")),
        }

    def _refresh_token(self) -> str:
        return self.client.tokens.connection().refresh_token

    def _restore(self, refresh_token: str) -> None:
        """The connection as a backup from before would have it: this refresh token, no access."""
        save_connection(
            self.connected.engine,
            self.connected.org_id,
            system=self.connected.db.system_engine,
            realm_id=self.realm,
            client_id=self.company.client_id,
            client_secret=self.company.client_secret,
            refresh_token=refresh_token,
            cipher=token_cipher(TOKEN_KEY),
        )

    def tokens(self) -> dict:
        def info(client: QboClient) -> str | dict:
            return _outcome(lambda: client.get("CompanyInfo", self.realm))

        first = info(self.client)  # no access token stored yet: refreshes first
        before = self._refresh_token()
        self.sim.advance(3601)  # the access token's hour is over (on QBO's clock only)
        expired = info(self.client)  # 401, refreshed, repeated
        after = self._refresh_token()
        after_refresh = info(self.client)
        self.sim.advance(25 * 3600)  # past the superseded refresh token's grace
        self._restore(before)
        try:
            self.open().get("CompanyInfo", self.realm)
            old = "ok"
        except TokenError as exc:
            old = exc.code
        self._restore(after)
        current_client = self.open()
        current = info(current_client)
        return {
            "first": first,
            "expired": expired,
            "rotated": after != before,
            "after_refresh": after_refresh,
            "old_refresh_token": old,
            "current_refresh_token": current,
            "rotated_again": current_client.tokens.connection().refresh_token != after,
        }

    def throttling(self) -> dict:
        report = self.throttle(lambda: _outcome(lambda: self.client.get("CompanyInfo", self.realm)))
        return {**report, "retries": self.client.stats["retries"]}
