"""Bill payments pulled from QBO, one way, onto our incoming invoices.

As with sales invoices (payments.py), QBO keeps no paid status: a bill has its TotalAmt, its
Balance and the bill payments linked to it (LinkedTxn of type BillPaymentCheck or
BillPaymentCreditCard). So the pull reads the bills (and vendor credits) changed since the cursor
(CDC: a payment made, voided or deleted changes its bills), and for each that is the bill of one
of our incoming invoices:

- each bill payment linked to it is read, and the money it paid on this bill kept as a row of
  `incoming_invoice_payments` (its QBO id, its TxnDate, the amount; a payment that also took
  vendor credits paid in money only its TotalAmt, spread over its bill lines by their amounts); a
  payment no longer linked (voided, deleted) loses its row;
- `incoming_invoice_settlements`: what was paid and when last; `paid` when QBO's Balance is 0, or
  when the payments up to a discount step's last day reached what the step asks to pay (the
  supplier's Skonto, incoming_discounts, `core.skonto.settlement`): then the rest is the discount
  taken, with the step's percentage and last day and the day it was earned; `partially_paid`
  with money paid and a balance left; `open` otherwise;
- the bill's total and balance as QBO has them now (`qbo_bills`), what the check
  `qbo_bills:bill_amounts_agree` compares with the document.

A bill a QBO user deleted (a CDC tombstone) is marked deleted and held as a conflict for a person.
Everything of one pull is written in one transaction with the cursor, with the intent to close in
QBO each bill whose supplier's discount was taken (bill_discounts.py), which the pull then does.
What changed (each invoice's status, money paid, day and discount) is in the counts' `paid`, for
the asset's metadata.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import Engine, delete, insert, select, update

from invoice_pipelines.core.money import CENT, ZERO, round_cents
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.skonto import DiscountTerm, SkontoError, settlement
from invoice_pipelines.db.inserts import insert_into
from invoice_pipelines.db.tables import (
    incoming_discounts,
    incoming_invoice_payments,
    incoming_invoice_settlements,
    incoming_invoices,
    qbo_bills,
)
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.quickbooks.domain.client import QboClient, quote
from invoice_pipelines.quickbooks.domain.payables import QboBill, QboBillPayment, QboVendorCredit
from invoice_pipelines.quickbooks.domain.sync.bill_discounts import (
    close_bill_discounts,
    enqueue_bill_discounts,
)
from invoice_pipelines.quickbooks.domain.sync.common import (
    CURSOR_OVERLAP,
    SyncCounts,
    clear_pull_request,
    newest,
    read_cursor,
    record_conflict,
    write_cursor,
)

SOURCE = "quickbooks"
ENTITY = "bill_payment"


def money_on(payment: QboBillPayment, bill_id: str) -> Decimal:
    """The money `payment` paid on the bill: its lines on the bill, less this bill's share (by
    line amount) of the vendor credits the payment took."""
    on_bills = sum((a.amount for a in payment.bills), ZERO)
    on_this = sum((a.amount for a in payment.bills if a.txn_id == bill_id), ZERO)
    if on_bills <= ZERO or on_this <= ZERO:
        return ZERO
    if payment.total >= on_bills:
        return on_this
    return round_cents(on_this * payment.total / on_bills)


def _terms(rows: list[dict]) -> list[DiscountTerm]:
    terms = []
    for row in rows:
        try:
            terms.append(
                DiscountTerm(
                    int(row["days"]),
                    Decimal(row["percent"]),
                    row["base_amount"],
                    row["start_date"],
                    row["source"],
                )
            )
        except SkontoError:
            continue  # a step that cannot be is not one a payment can earn
    return terms


def settle(document: dict, terms: list[DiscountTerm], bill: QboBill, money: dict) -> dict:
    """The settlement row's values for a document, its discount steps, its bill and the money
    each payment paid on it ({payment id: (day, amount)})."""
    invoiced = Decimal(document["amount_due"] or document["gross_total"] or ZERO).quantize(CENT)
    payments = [(day, amount) for day, amount in money.values()]
    paid = sum((amount for _, amount in payments), ZERO)
    last = max((day for day, _ in payments), default=None)
    earned = settlement(terms, document["issue_date"], invoiced, payments)
    values = dict(
        amount_paid=paid,
        last_paid_on=last,
        discount=None,
        discount_percent=None,
        discount_last_day=None,
        discount_paid_on=None,
    )
    if earned is not None:
        values.update(
            status="paid",
            amount_open=ZERO,
            discount=earned.discount,
            discount_percent=earned.offer.term.percent,
            discount_last_day=earned.offer.last_day,
            discount_paid_on=earned.paid_on,
        )
    elif paid > ZERO and bill.balance <= ZERO:
        values.update(status="paid", amount_open=ZERO)
    else:
        values.update(
            status="partially_paid" if paid > ZERO else "open",
            amount_open=max(invoiced - paid, ZERO),
        )
    return values


class BillPaymentPull:
    def __init__(self, engine: Engine, organization_id: int, client: QboClient) -> None:
        self.engine = engine
        self.organization_id = organization_id
        self.client = client
        self.counts = SyncCounts()

    def run(self) -> SyncCounts:
        started = datetime.now(UTC)
        cursor = read_cursor(self.engine, self.organization_id, ENTITY)["cursor"]
        since = cursor - CURSOR_OVERLAP if cursor else None
        bills = self.client.changes("Bill", since)
        credits = self.client.changes("VendorCredit", since)
        with tenant_transaction(self.engine, self.organization_id) as conn:
            mapped = {
                (r["entity"], r["qbo_id"]): dict(r)
                for r in conn.execute(
                    select(qbo_bills).where(qbo_bills.c.organization_id == self.organization_id)
                ).mappings()
            }
        ours = [QboBill.from_qbo(r) for r in bills.records if ("Bill", str(r["Id"])) in mapped]
        payments = self._payments({pid for bill in ours for pid in bill.payment_ids})
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            documents = self._documents(conn, [mapped[("Bill", b.id)] for b in ours])
            for bill in ours:
                self._apply(conn, mapped[("Bill", bill.id)], bill, payments, documents)
            for record in credits.records:
                mapping = mapped.get(("VendorCredit", str(record["Id"])))
                if mapping is not None:
                    self._refresh(conn, mapping, QboVendorCredit.from_qbo(record))
            for entity, changes in (("Bill", bills), ("VendorCredit", credits)):
                for qbo_id in changes.deleted_ids:
                    mapping = mapped.get((entity, str(qbo_id)))
                    if mapping is not None and mapping["state"] == "active":
                        self._deleted(conn, mapping)
            enqueue_bill_discounts(conn, self.organization_id)
            moment = newest(credits.records, newest(bills.records, cursor))
            write_cursor(conn, self.organization_id, ENTITY, cursor=moment)
            clear_pull_request(conn, self.organization_id, ENTITY, started)
        return self.counts

    def _payments(self, ids: set[str]) -> dict[str, QboBillPayment]:
        found: dict[str, QboBillPayment] = {}
        ordered = sorted(ids, key=lambda i: (len(i), i))
        for start in range(0, len(ordered), 100):
            where = f"Id IN ({', '.join(quote(i) for i in ordered[start : start + 100])})"
            for payment in self.client.find_bill_payments(where):
                found[payment.id] = payment
        return found

    def _documents(self, conn, mappings: list[dict]) -> dict[int, dict]:
        ids = [m["incoming_invoice_id"] for m in mappings] or [-1]
        t = incoming_invoices.c
        documents = {
            row["id"]: {**dict(row), "steps": []}
            for row in conn.execute(
                select(
                    t.id,
                    t.issue_date,
                    t.gross_total,
                    t.amount_due,
                    t.invoice_number,
                    t.seller_name,
                    t.currency,
                ).where(t.organization_id == self.organization_id, t.id.in_(ids))
            ).mappings()
        }
        for row in conn.execute(
            select(incoming_discounts)
            .where(incoming_discounts.c.incoming_invoice_id.in_(ids))
            .order_by(incoming_discounts.c.step)
        ).mappings():
            documents[row["incoming_invoice_id"]]["steps"].append(dict(row))
        return documents

    def _refresh(self, conn, mapping: dict, record) -> None:
        conn.execute(
            update(qbo_bills)
            .where(qbo_bills.c.id == mapping["id"])
            .values(sync_token=record.sync_token, total=record.total, balance=record.balance)
        )

    def _apply(self, conn, mapping: dict, bill: QboBill, payments: dict, documents: dict) -> None:
        self._refresh(conn, mapping, bill)
        document = documents.get(mapping["incoming_invoice_id"])
        if document is None or mapping["state"] != "active":
            return
        money: dict[str, tuple[date, Decimal]] = {}
        for pid in bill.payment_ids:
            payment = payments.get(pid)
            amount = money_on(payment, bill.id) if payment is not None else ZERO
            if payment is not None and payment.txn_date is not None and amount > ZERO:
                money[pid] = (payment.txn_date, amount)
        changed = self._record_payments(conn, document["id"], money)
        current = (
            conn.execute(
                select(incoming_invoice_settlements).where(
                    incoming_invoice_settlements.c.incoming_invoice_id == document["id"]
                )
            )
            .mappings()
            .first()
        )
        if current is None and not money:
            self.counts.unchanged += 1
            return
        values = settle(document, _terms(document["steps"]), bill, money)
        if current is not None and not changed and all(current[k] == v for k, v in values.items()):
            self.counts.unchanged += 1
            return
        if current is None:
            conn.execute(
                insert(incoming_invoice_settlements).values(
                    organization_id=self.organization_id,
                    incoming_invoice_id=document["id"],
                    source=SOURCE,
                    **values,
                )
            )
        else:
            conn.execute(
                update(incoming_invoice_settlements)
                .where(incoming_invoice_settlements.c.id == current["id"])
                .values(**values)
            )
        self.counts.pulled += 1
        self.counts.paid.append(paid_row(document, values))

    def _record_payments(self, conn, document_id: int, money: dict) -> bool:
        """The document's payment rows are `money`'s; whether any changed."""
        t = incoming_invoice_payments
        have = {
            r.qbo_payment_id: (r.paid_on, r.amount)
            for r in conn.execute(
                select(t.c.qbo_payment_id, t.c.paid_on, t.c.amount).where(
                    t.c.incoming_invoice_id == document_id
                )
            )
        }
        if have == money:
            return False
        gone = [pid for pid in have if pid not in money]
        if gone:
            conn.execute(
                delete(t).where(
                    t.c.incoming_invoice_id == document_id, t.c.qbo_payment_id.in_(gone)
                )
            )
        for pid, (day, amount) in money.items():
            conn.execute(
                insert_into(conn, t)
                .values(
                    organization_id=self.organization_id,
                    incoming_invoice_id=document_id,
                    qbo_payment_id=pid,
                    paid_on=day,
                    amount=amount,
                    source=SOURCE,
                )
                .on_conflict_do_update(
                    index_elements=["incoming_invoice_id", "qbo_payment_id"],
                    set_={"paid_on": day, "amount": amount, "updated_at": datetime.now(UTC)},
                )
            )
        return True

    def _deleted(self, conn, mapping: dict) -> None:
        conn.execute(
            update(qbo_bills).where(qbo_bills.c.id == mapping["id"]).values(state="deleted")
        )
        record_conflict(
            conn,
            self.organization_id,
            "bill",
            local_id=mapping["incoming_invoice_id"],
            qbo_id=mapping["qbo_id"],
            reason=f"the {mapping['entity']} {mapping['qbo_id']} of this incoming invoice was "
            "deleted in QuickBooks; its payments are no longer read",
            decision="manual_review",
        )
        self.counts.conflicts += 1


def paid_row(document: dict, values: dict) -> dict:
    """What the asset's metadata lists of one invoice whose payments changed."""
    return {
        "invoice": document["invoice_number"] or str(document["id"]),
        "supplier": document["seller_name"] or "",
        "status": values["status"],
        "paid": values["amount_paid"],
        "paid_on": values["last_paid_on"],
        "skonto": values["discount"],
        "open": values["amount_open"],
        "currency": document["currency"] or "",
    }


def pull_bill_payments(
    engine: Engine, organization: Organization, client: QboClient, **kwargs
) -> SyncCounts:
    """The pull, then the close in QBO of the bills whose supplier's discount was taken."""
    organization_id = organization.id
    counts = BillPaymentPull(engine, organization_id, client).run()
    closed = close_bill_discounts(engine, organization_id, client)
    for name in ("pushed", "linked", "conflicts", "failed"):
        setattr(counts, name, getattr(counts, name) + getattr(closed, name))
    counts.errors.extend(closed.errors)
    return counts
