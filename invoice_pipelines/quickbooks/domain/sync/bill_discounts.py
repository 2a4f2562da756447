"""A supplier's early-payment discount (Skonto) taken on a bill, closed in QBO, exactly once.

The bill payment pull (bill_payments.py) settles an incoming invoice whose payments reached a
discount step's amount in time: `paid` here, with the rest as the discount taken. QBO still
shows that rest as the bill's Balance: QuickBooks Online has no early-payment discount on a bill
payment (its BillPayment lines link bills and vendor credits only). So the discount reaches QBO
as a supplier's credit does, in two writes, the payables twin of the sales side's discount
CreditMemo (discounts.py):

1. `credit`: a VendorCredit for the bill's vendor, DocNumber = the invoice's number and '-SK' (cut
   from the left to QBO's 21 characters), TxnDate = the day the payments earned the discount. Its
   lines are the bill's own expense lines (account and tax code), the discount's net share split
   over them by amount, and the discount's share of the bill's tax as TxnTaxDetail.TotalTax, so
   its TotalAmt is the discount and the costs and input tax shrink where the bill booked them.
   QBO's bill is read first: nothing open there (a person closed it) pushes nothing; less open
   than the discount is a conflict for a person, never a credit left with the vendor.
2. `apply`: a BillPayment of TotalAmt 0 from the account (and by the pay type) of a payment of the
   bill, one line on the bill and one on the VendorCredit, for what both still have open.

Each write is a row of `qbo_bill_discounts` (the outbox, outbox/machine.py) claimed `sending` and
committed before its request, with a requestid of its own ('ip-<org>-ii-<id>-skcredit' /
'-skapply'): the client's retries of a 429, 5xx or timeout replay it, and QBO answers a replay
with what it did the first time. A row a run left `sending` (its retries ran out, or it died) is
looked up in QBO before anything is sent again: the VendorCredit by DocNumber, vendor and total;
the application among the bill's payments. Found is linked; not found is sent again, with the
same requestid.

The pull reads the application as what it is: a payment of no money (money_on), so it never
comes back as a second payment or a second discount.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import Connection, Engine, String, and_, cast, exists, literal, select, update

from invoice_pipelines.core.money import ZERO, round_cents
from invoice_pipelines.db.inserts import insert_new, insert_selected
from invoice_pipelines.db.tables import (
    incoming_invoice_settlements,
    incoming_invoices,
    qbo_bill_discounts,
    qbo_bills,
)
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.outbox import Outbox, claim, finish, refuse
from invoice_pipelines.quickbooks.domain.client import QboClient, quote
from invoice_pipelines.quickbooks.domain.errors import DuplicateDocNumber, QboError
from invoice_pipelines.quickbooks.domain.payables import (
    Applied,
    BillPaymentDraft,
    ExpenseLine,
    VendorCreditDraft,
)
from invoice_pipelines.quickbooks.domain.sync.bill_queue import SENDING_STALE_AFTER
from invoice_pipelines.quickbooks.domain.sync.common import (
    SyncCounts,
    held_lease,
    hold_for_review,
    mark_dead_sending,
)

CREDIT, APPLY = "credit", "apply"
DOC_SUFFIX = "-SK"
DOC_NUMBER_MAX = 21
PAY_TYPES = {"BillPaymentCheck": "Check", "BillPaymentCreditCard": "CreditCard"}

DISCOUNTS = Outbox(
    qbo_bill_discounts,
    error="error_message",
    key=("incoming_invoice_id", "action"),
    sent="pushed",
    unknown=None,
)


def doc_number(invoice_number: str | None, document_id: int) -> str:
    """The DocNumber of a discount's VendorCredit: the invoice's number and '-SK', the start cut
    off where QBO's 21 characters do not hold both."""
    return f"{invoice_number or document_id}{DOC_SUFFIX}"[-DOC_NUMBER_MAX:]


def _request_id(action: str):
    """'ip-<org>-ii-<id>-sk<action>', built in SQL."""
    s = incoming_invoice_settlements.c
    return (
        literal("ip-")
        + cast(s.organization_id, String)
        + literal("-ii-")
        + cast(s.incoming_invoice_id, String)
        + literal(f"-sk{action}")
    )


def enqueue_bill_discounts(conn: Connection, organization_id: int) -> int:
    """Queue (`credit`) each incoming invoice settled with the supplier's discount whose bill is
    in QBO and that is not queued yet: one INSERT ... SELECT on the caller's connection (the
    pull's, so the settlement and its intent commit together)."""
    s, b, d = incoming_invoice_settlements.c, qbo_bills.c, qbo_bill_discounts.c
    chosen = select(
        s.organization_id,
        s.incoming_invoice_id,
        literal(CREDIT),
        literal("pending"),
        _request_id(CREDIT),
        s.discount,
    ).where(
        s.organization_id == organization_id,
        s.status == "paid",
        s.discount > 0,
        exists().where(
            b.incoming_invoice_id == s.incoming_invoice_id,
            b.entity == "Bill",
            b.state == "active",
        ),
        ~exists().where(d.incoming_invoice_id == s.incoming_invoice_id, d.action == CREDIT),
    )
    columns = ["organization_id", "incoming_invoice_id", "action", "status", "request_id", "amount"]
    return insert_selected(conn, qbo_bill_discounts, DISCOUNTS.key, columns, chosen)


@dataclass
class Closing:
    """One row of the outbox with what its write needs."""

    row_id: int
    action: str
    request_id: str
    amount: Decimal
    document_id: int
    number: str | None
    bill_id: str
    bill_state: str
    vendor_id: str
    settled: Decimal | None  # the discount the settlement takes now
    percent: Decimal | None
    paid_on: date | None
    credit_id: str | None  # the VendorCredit, once QBO has it

    @property
    def label(self) -> str:
        return f"{self.number or self.document_id} (Skonto)"

    @property
    def doc_number(self) -> str:
        return doc_number(self.number, self.document_id)


def _load(engine: Engine, organization_id: int, wanted) -> list[Closing]:
    d, i, b, s = (
        qbo_bill_discounts.c,
        incoming_invoices.c,
        qbo_bills.c,
        incoming_invoice_settlements.c,
    )
    credit = qbo_bill_discounts.alias("credit")
    query = (
        select(
            d.id,
            d.action,
            d.request_id,
            d.amount,
            d.incoming_invoice_id,
            i.invoice_number,
            b.qbo_id.label("bill_id"),
            b.state.label("bill_state"),
            b.vendor_qbo_id,
            s.discount,
            s.discount_percent,
            s.discount_paid_on,
            credit.c.qbo_id.label("credit_id"),
        )
        .select_from(
            qbo_bill_discounts.join(incoming_invoices, i.id == d.incoming_invoice_id)
            .join(qbo_bills, b.incoming_invoice_id == d.incoming_invoice_id)
            .outerjoin(incoming_invoice_settlements, s.incoming_invoice_id == d.incoming_invoice_id)
            .outerjoin(
                credit,
                and_(
                    credit.c.incoming_invoice_id == d.incoming_invoice_id,
                    credit.c.action == CREDIT,
                ),
            )
        )
        .where(d.organization_id == organization_id, wanted)
        .order_by(d.id)
    )
    with tenant_transaction(engine, organization_id) as conn:
        return [
            Closing(
                row_id=r.id,
                action=r.action,
                request_id=r.request_id,
                amount=Decimal(r.amount),
                document_id=r.incoming_invoice_id,
                number=r.invoice_number,
                bill_id=r.bill_id,
                bill_state=r.bill_state,
                vendor_id=r.vendor_qbo_id,
                settled=r.discount,
                percent=r.discount_percent,
                paid_on=r.discount_paid_on,
                credit_id=r.credit_id,
            )
            for r in conn.execute(query)
        ]


def credit_draft(closing: Closing, bill: dict) -> VendorCreditDraft | str:
    """The VendorCredit of the discount on `bill` (QBO's record), or the sentence that says why
    there is none: the bill's expense lines, the discount's net share split over them by
    amount, its share of the bill's tax as the credit's tax."""
    lines = []
    for line in bill.get("Line") or []:
        detail = line.get("AccountBasedExpenseLineDetail")
        if line.get("DetailType") == "AccountBasedExpenseLineDetail" and detail:
            code = (detail.get("TaxCodeRef") or {}).get("value")
            lines.append((Decimal(str(line["Amount"])), str(detail["AccountRef"]["value"]), code))
    base = sum((amount for amount, _, _ in lines), ZERO)
    if not lines or base <= 0:
        return f"bill {closing.bill_id} in QuickBooks has no expense account line to credit"
    total = Decimal(str(bill.get("TotalAmt") or 0))
    tax = Decimal(str((bill.get("TxnTaxDetail") or {}).get("TotalTax") or 0))
    tax_share = round_cents(closing.amount * tax / total) if tax and total > 0 else ZERO
    net = closing.amount - tax_share
    shares = [round_cents(net * amount / base) for amount, _, _ in lines]
    shares[-1] += net - sum(shares, ZERO)  # the cents the rounding left go to the last line
    percent = format(Decimal(closing.percent or 0).normalize(), "f")
    what = f"Skonto {percent} % on invoice {closing.number or closing.document_id}"
    currency = (bill.get("CurrencyRef") or {}).get("value")
    rate = bill.get("ExchangeRate")
    return VendorCreditDraft(
        vendor_id=closing.vendor_id,
        lines=tuple(
            ExpenseLine(amount=share, account_id=account, tax_code_id=code, description=what)
            for share, (_, account, code) in zip(shares, lines, strict=True)
            if share != 0
        ),
        doc_number=closing.doc_number,
        txn_date=closing.paid_on,
        currency=currency if rate is not None else None,
        exchange_rate=Decimal(str(rate)) if rate is not None else None,
        total_tax=tax_share if tax else None,
        private_note=f"invoice-pipelines early-payment discount (Skonto) on incoming invoice "
        f"{closing.document_id} ({closing.number or '-'})",
    )


class DiscountCloser:
    """Closes one organization's discounted bills in QBO through one client."""

    def __init__(self, engine: Engine, organization_id: int, client: QboClient) -> None:
        self.engine = engine
        self.organization_id = organization_id
        self.client = client
        self.counts = SyncCounts()
        self.lease = None

    def run(self) -> SyncCounts:
        self.lease = held_lease(self.organization_id)
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            enqueue_bill_discounts(conn, self.organization_id)
        self.reconcile_dead()
        for closing in self._waiting(CREDIT):
            self._push_credit(closing)
        for closing in self._waiting(APPLY):
            self._push_apply(closing)
        return self.counts

    # -- bookkeeping --------------------------------------------------------------------------

    def _where(self, closing: Closing):
        return qbo_bill_discounts.c.id == closing.row_id

    def _claim(self, closing: Closing) -> bool:
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            # only a row still claimable becomes ours: another run's claim wins
            return bool(
                claim(
                    conn,
                    DISCOUNTS,
                    self._where(closing),
                    attempts=qbo_bill_discounts.c.attempts + 1,
                )
            )

    def _finish(self, closing: Closing, status: str, note: str | None = None, **values) -> None:
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            finish(conn, DISCOUNTS, self._where(closing), status, error=note, **values)

    def _failed(self, closing: Closing, exc: QboError) -> None:
        """QBO refused for good: `failed`; a refusal for now (retries ran out) leaves the row
        `sending`, looked up in QBO by the next run before anything is sent again."""
        self.counts.errors.append(f"{closing.label}: {exc}")
        if exc.temporary:
            return
        self._finish(closing, "failed", str(exc), error_code=(exc.code or "error")[:16])
        self.counts.failed += 1

    def _invalid(self, closing: Closing, problem: str) -> None:
        """Our own check refused what would go (`problem`): `failed`, nothing sent."""
        self._finish(closing, "failed", problem, error_code="validation")
        self.counts.failed += 1
        self.counts.errors.append(f"{closing.label}: {problem}")

    def _waiting(self, action: str) -> list[Closing]:
        """The claimable rows of `action`; one that must not go is refused on the way."""
        d = qbo_bill_discounts.c
        ready = []
        for closing in _load(
            self.engine, self.organization_id, and_(d.action == action, DISCOUNTS.claimable())
        ):
            if self.lease is not None and self.lease.lost.is_set():
                break  # another run has the organization now: the rows stay for it
            why = self._blocked(closing)
            if why is None:
                ready.append(closing)
                continue
            with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
                if refuse(conn, DISCOUNTS, self._where(closing), why[0], error_code=why[1]):
                    self.counts.failed += 1
                    self.counts.errors.append(f"{closing.label}: {why[0]}")
        return ready

    def _blocked(self, closing: Closing) -> tuple[str, str] | None:
        name = closing.number or closing.document_id
        if closing.bill_state != "active":
            return f"the bill of invoice {name} was deleted in QuickBooks", "bill_deleted"
        if closing.action == CREDIT and closing.settled != closing.amount:
            return (
                f"the early-payment discount on invoice {name} is no longer "
                f"{closing.amount} (a payment voided since): nothing pushed",
                "taken_back",
            )
        if closing.action == APPLY and closing.credit_id is None:
            return f"the discount's vendor credit of invoice {name} is not known", "validation"
        return None

    # -- step 1: the VendorCredit -------------------------------------------------------------

    def _push_credit(self, closing: Closing) -> None:
        if not self._claim(closing):
            return
        try:
            bill = self.client.get("Bill", closing.bill_id)
            still_open = Decimal(str(bill.get("Balance", 0)))
            if still_open < closing.amount:
                self._closed_in_qbo(closing, bill, still_open)
                return
            draft = credit_draft(closing, bill)
            if isinstance(draft, str):
                self._invalid(closing, draft)
                return
            credit_id = self.client.create_vendor_credit(draft, requestid=closing.request_id).id
        except DuplicateDocNumber:
            self._resolve_doc_number(closing)
            return
        except QboError as exc:
            self._failed(closing, exc)
            return
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            self._credited(conn, closing, credit_id)

    def _credited(self, conn, closing: Closing, credit_id: str) -> None:
        """The VendorCredit is the discount's: the row pushed, its application queued."""
        finish(conn, DISCOUNTS, self._where(closing), "pushed", qbo_id=credit_id, error_code=None)
        conn.execute(
            insert_new(conn, qbo_bill_discounts, DISCOUNTS.key).values(
                organization_id=self.organization_id,
                incoming_invoice_id=closing.document_id,
                action=APPLY,
                status="pending",
                request_id=closing.request_id.removesuffix(CREDIT) + APPLY,
                amount=closing.amount,
            )
        )

    def _closed_in_qbo(self, closing: Closing, bill: dict, still_open: Decimal) -> None:
        """QBO's bill has less open than the discount: closed there already (nothing to push),
        or partly (a person decides: a credit pushed now would stay with the vendor)."""
        if still_open <= 0:
            note = f"nothing pushed: bill {closing.bill_id} has nothing open in QuickBooks"
            self._finish(closing, "pushed", note, error_code=None)
            self.counts.unchanged += 1
            return
        reason = (
            f"the bill of invoice {closing.number or closing.document_id} has {still_open} open "
            f"in QuickBooks, less than the supplier's early-payment discount {closing.amount}: "
            "not closed"
        )
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            self._conflict(conn, closing, bill, reason, "open_balance")

    def _conflict(self, conn, closing: Closing, qbo: dict | None, reason: str, code: str) -> None:
        hold_for_review(
            conn,
            self.organization_id,
            DISCOUNTS,
            self._where(closing),
            "bill",
            local_id=closing.document_id,
            qbo_id=str(qbo["Id"]) if qbo else closing.bill_id,
            reason=reason,
            local_version={"invoice": closing.number, "discount": str(closing.amount)},
            qbo_version=qbo,
            error_code=code,
        )
        self.counts.conflicts += 1

    def _resolve_doc_number(self, closing: Closing) -> None:
        """QBO refuses the DocNumber (6140): ours when it is the same credit, else a person's."""
        found, existing = self._find_credit(closing)
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            if found is not None:
                self._credited(conn, closing, found)
                self.counts.linked += 1
                return
            reason = (
                f"DocNumber {closing.doc_number} already exists in QuickBooks as a vendor credit "
                "of another vendor or amount"
            )
            self._conflict(conn, closing, existing, reason, "6140")

    def _find_credit(self, closing: Closing) -> tuple[str | None, dict | None]:
        """The discount's VendorCredit in QBO (its DocNumber, vendor and total), if there; and
        any record with that DocNumber."""
        records = self.client.query_all(
            "VendorCredit", f"DocNumber = {quote(closing.doc_number)}", order_by=""
        )
        for record in records:
            vendor = str((record.get("VendorRef") or {}).get("value"))
            total = Decimal(str(record.get("TotalAmt", 0)))
            if vendor == str(closing.vendor_id) and total == closing.amount:
                return str(record["Id"]), record
        return None, (records[0] if records else None)

    # -- step 2: the application ------------------------------------------------------------

    def _push_apply(self, closing: Closing) -> None:
        if not self._claim(closing):
            return
        try:
            bill = self.client.get("Bill", closing.bill_id)
            credit = self.client.get("VendorCredit", str(closing.credit_id))
            amount = min(
                Decimal(str(bill.get("Balance", 0))), Decimal(str(credit.get("Balance", 0)))
            )
            if amount <= 0:
                note = f"nothing applied: bill {closing.bill_id} or its credit has nothing open"
                self._finish(closing, "pushed", note, error_code=None)
                self.counts.unchanged += 1
                return
            draft = self._application(closing, bill, amount)
            if isinstance(draft, str):
                self._invalid(closing, draft)
                return
            payment = self.client.create_bill_payment(draft, requestid=closing.request_id)
        except QboError as exc:
            self._failed(closing, exc)
            return
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            self._applied(conn, closing, payment.id, Decimal(str(bill.get("Balance", 0))) - amount)

    def _application(self, closing: Closing, bill: dict, amount: Decimal):
        """A BillPayment of 0 that takes `amount` of the credit against the bill, from the
        account of a payment of the bill (a payment of no money moves none)."""
        account, pay_type = None, "Check"
        for link in bill.get("LinkedTxn") or []:
            if link.get("TxnType") in PAY_TYPES:
                account = self.client.get_bill_payment(str(link["TxnId"])).account_id
                pay_type = PAY_TYPES[link["TxnType"]]
            if account:
                break
        if not account:
            return f"bill {closing.bill_id} has no payment in QuickBooks to take the account from"
        currency = (bill.get("CurrencyRef") or {}).get("value")
        return BillPaymentDraft(
            vendor_id=closing.vendor_id,
            total=ZERO,
            account_id=account,
            pay_type=pay_type,  # type: ignore[arg-type]
            bills=(Applied(closing.bill_id, amount),),
            credits=(Applied(str(closing.credit_id), amount),),
            txn_date=closing.paid_on,
            currency=currency if bill.get("ExchangeRate") is not None else None,
            private_note=f"invoice-pipelines: early-payment discount (Skonto) taken on invoice "
            f"{closing.number or closing.document_id}",
        )

    def _applied(self, conn, closing: Closing, payment_id: str, balance: Decimal | None) -> None:
        """The bill is closed: the row pushed, our record of the bill's balance with it."""
        finish(conn, DISCOUNTS, self._where(closing), "pushed", qbo_id=payment_id, error_code=None)
        if balance is not None:
            conn.execute(
                update(qbo_bills)
                .where(
                    qbo_bills.c.organization_id == self.organization_id,
                    qbo_bills.c.incoming_invoice_id == closing.document_id,
                )
                .values(balance=max(balance, ZERO))
            )
        self.counts.pushed += 1

    def _find_application(self, closing: Closing) -> str | None:
        """A bill payment in QBO that takes the discount's credit against the bill."""
        bill = self.client.get("Bill", closing.bill_id)
        for link in bill.get("LinkedTxn") or []:
            if link.get("TxnType") not in PAY_TYPES:
                continue
            payment = self.client.get_bill_payment(str(link["TxnId"]))
            takes = any(a.txn_id == str(closing.credit_id) for a in payment.credits)
            if takes and any(a.txn_id == closing.bill_id for a in payment.bills):
                return payment.id
        return None

    # -- rows a run left `sending` ------------------------------------------------------------

    def reconcile_dead(self) -> None:
        """Rows a run left `sending` (every one under the organization's lease, else those older
        than SENDING_STALE_AFTER): what QBO has is linked, the others are pending again and sent
        with the same requestid."""
        dead = mark_dead_sending(
            self.engine, DISCOUNTS, self.organization_id, self.lease, SENDING_STALE_AFTER
        )
        if not dead:
            return
        ids = [row[0] for row in dead]
        for closing in _load(self.engine, self.organization_id, qbo_bill_discounts.c.id.in_(ids)):
            try:
                if closing.action == CREDIT:
                    found = self._find_credit(closing)[0]
                else:
                    found = self._find_application(closing) if closing.credit_id else None
            except QboError as exc:
                self.counts.errors.append(f"{closing.label}: {exc}")
                continue  # still `sending`: looked up again by the next run
            with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
                if found is None:
                    finish(conn, DISCOUNTS, self._where(closing), "pending", error_code=None)
                    continue
                self.counts.linked += 1
                if closing.action == CREDIT:
                    self._credited(conn, closing, found)
                else:
                    finish(
                        conn,
                        DISCOUNTS,
                        self._where(closing),
                        "pushed",
                        qbo_id=found,
                        error_code=None,
                    )


def close_bill_discounts(engine: Engine, organization_id: int, client: QboClient) -> SyncCounts:
    return DiscountCloser(engine, organization_id, client).run()
