"""Payments pulled from QBO, one way, onto our sales invoices.

QBO has no paid/partial status: it keeps each invoice's `Balance` and `TotalAmt`, and links the
payments applied to it (`LinkedTxn` of type Payment). So the pull reads the invoices changed since
the cursor (a payment, a voided or deleted payment all change the invoice's balance) and sets, on
each of our invoices mapped to one of them:

- amount_paid = TotalAmt - Balance - what QBO applied to it of our credit notes (money only)
- amount_due = our gross total - amount_paid - what all our credit notes of the invoice credited
  (billing/domain/credit_notes.py)
- status: paid (Balance 0 and money paid), partially_paid (money paid, Balance above 0), open
  otherwise, a credit alone pays nothing (overdue is open or partially paid with a due date in the
  past: the dunning reads due_date and amount_due)
- last payment date: the latest TxnDate of the payments with money (TotalAmt above 0) still linked
  (and their id, kept in the mapping's details); a credit application is not a payment

Our credit notes reach QBO as CreditMemos applied to their invoice by a Payment of TotalAmt 0
(credit_memos.py). Once applied, QBO's Balance includes the credit: it must not be taken off a
second time, and it is not money paid. What QBO applied is read from QBO itself, not from our
queue: of each payment linked to the invoice, the part of what it applied there that its lines
took from the CreditMemos of our credit notes of that invoice. A credit note not (yet) in QBO, or
not applied there, is in neither TotalAmt nor Balance and is subtracted from what QBO says.

Early-payment discount (Skonto, issue 40): an invoice whose document states discount steps (the
ones recorded on it with its first document, never the customer's or organization's current
terms) is settled when its money payments up to a step's last day (each payment's
TxnDate) add up to at least what the step asks to pay of what the invoice still bills after our
credit notes (`core.skonto.settlement`): amount_due 0, status paid, and the rest the payments left
open booked per VAT rate in `sales_invoice_discounts` (db/sales_discounts.py) in the same
transaction. A payment voided later, or a credit note that leaves the payments above what is
billed, removes the discount again on the next pull. A discount settled here is queued in the
same transaction and pushed to QBO as a CreditMemo applied to the invoice (discounts.py), which
closes its Balance there: what that CreditMemo applied is read like our credit notes' (a credit,
not money paid), so the push never comes back as a payment or a second discount. A settled
invoice whose QBO Balance a credit of QBO's own has closed already (a person wrote the discount
off there) owes nothing: the discount is taken off only as far as something is still due.

Each money payment applied to one of our invoices is kept as a row of `sales_invoice_payments`
(sales_payments.py: its QBO id, its TxnDate, the money it applied to the invoice less what it
took from our credit notes' CreditMemos), written in the same transaction; a payment no longer
linked to the invoice (voided or deleted in QBO) loses its row. The sales export books these
rows in the month of their day, with the discount of the payment that settled an invoice
(exports/domain/payments.py).

Cancelled invoices and invoices voided in QBO are left alone.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import Engine, bindparam, select, update

from invoice_pipelines import sales_ledger
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.sales_discounts import discount_bases, record_discounts, settle
from invoice_pipelines.db.tables import qbo_mappings, sales_invoices
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.quickbooks.domain.client import QboClient, quote
from invoice_pipelines.quickbooks.domain.sync.common import (
    CURSOR_OVERLAP,
    SyncCounts,
    clear_pull_request,
    mappings_by_qbo_id,
    newest,
    read_cursor,
    record_conflict,
    write_cursor,
)
from invoice_pipelines.quickbooks.domain.sync.credit_memos import applied_credit
from invoice_pipelines.quickbooks.domain.sync.discounts import enqueue_discounts
from invoice_pipelines.quickbooks.domain.sync.sales_payments import record_payments

CENT = Decimal("0.01")
ZERO = Decimal("0")
# what the pull reads of each invoice it settles (sales_ledger.py)
PULL_FIELDS = (
    "id",
    "invoice_number",
    "status",
    "gross_total",
    "amount_paid",
    "amount_due",
    "last_payment_date",
)


def payment_state(
    record: dict, gross_total: Decimal, credited_in_qbo: Decimal = ZERO
) -> tuple[Decimal, Decimal, str]:
    """(amount_paid, amount_due before our credit notes, status) of our invoice from its QBO
    invoice; `credited_in_qbo`: what QBO applied to it of our credit notes (in its Balance, and
    not money paid)."""
    total = Decimal(str(record.get("TotalAmt", "0")))
    balance = Decimal(str(record.get("Balance", "0")))
    paid = (total - balance - credited_in_qbo).quantize(CENT)
    due = (Decimal(gross_total) - paid).quantize(CENT)
    if paid > 0 and total > 0 and balance == 0:
        status = "paid"
    elif paid > 0 and balance > 0:
        status = "partially_paid"
    else:
        status = "open"
    return paid, due, status


def _payment_ids(record: dict) -> list[str]:
    return [
        str(link["TxnId"])
        for link in record.get("LinkedTxn") or []
        if link.get("TxnType") == "Payment" and link.get("TxnId") is not None
    ]


def _voided_in_qbo(record: dict, invoice: dict) -> bool:
    total = Decimal(str(record.get("TotalAmt", "0")))
    note = str(record.get("PrivateNote") or "")
    return total == 0 and Decimal(invoice["gross_total"]) != 0 and note.startswith("Voided")


def _flag(conn, organization_id, mapping, state, record, invoice, counts) -> None:
    """Our invoice was voided or deleted in QBO: mapped as such and held for a person."""
    conn.execute(
        update(qbo_mappings).where(qbo_mappings.c.id == mapping["id"]).values(qbo_state=state)
    )
    record_conflict(
        conn,
        organization_id,
        "invoice",
        local_id=invoice["id"],
        qbo_id=str(record["Id"]),
        reason=f"our invoice was {state} in QuickBooks; its payments are no longer read",
        decision="manual_review",
        local_version={
            k: invoice.get(k) for k in ("invoice_number", "gross_total", "amount_due", "status")
        },
        qbo_version=record,
    )
    counts.conflicts += 1


def _credits(
    conn, organization_id: int, local_ids: list[int]
) -> tuple[dict[int, Decimal], dict[int, set[str]]]:
    """Per invoice: what our credit notes of it credited (sales_ledger.py), and the QBO ids of
    their CreditMemos and of the CreditMemo of its discount (discounts.py)."""
    credited: dict[int, Decimal] = defaultdict(lambda: ZERO)
    corrects: dict[int, int] = {}  # credit note id -> the invoice it corrects
    for note in sales_ledger.read_credit_notes(
        conn, organization_id, local_ids, "id", "corrects_invoice_id", "gross_total"
    ):
        credited[note.corrects_invoice_id] += Decimal(note.gross_total)
        corrects[note.id] = note.corrects_invoice_id
    # the CreditMemos of our credit notes, per invoice they correct; an invoice's own CreditMemo
    # grants its discount: a credit, not money
    invoices = set(local_ids)
    memos: dict[int, set[str]] = defaultdict(set)
    ids = [*corrects, *invoices]
    m = qbo_mappings.c
    for start in range(0, len(ids), sales_ledger.CHUNK):
        for local_id, memo_qbo_id in conn.execute(
            select(m.local_id, m.qbo_id).where(
                m.organization_id == organization_id,
                m.entity == "credit_memo",
                m.local_id.in_(ids[start : start + sales_ledger.CHUNK]),
            )
        ):
            if local_id in corrects:
                memos[corrects[local_id]].add(str(memo_qbo_id))
            if local_id in invoices:
                memos[local_id].add(str(memo_qbo_id))
    return dict(credited), memos


def _money_to(payment: dict, invoice_qbo_id: str, memo_ids: set[str]) -> Decimal:
    """The money `payment` applied to the invoice: what its lines applied there less what they
    took from our credit notes' CreditMemos."""
    to_invoice = sum(
        (
            Decimal(str(line.get("Amount") or 0))
            for line in payment.get("Line") or []
            if any(
                str(x.get("TxnType")) == "Invoice" and str(x.get("TxnId")) == invoice_qbo_id
                for x in line.get("LinkedTxn") or []
            )
        ),
        ZERO,
    )
    return to_invoice - applied_credit(payment, invoice_qbo_id, memo_ids)


def _discounts(conn, organization_id, records, mapped, payments, memos, payment_dates):
    """The invoices among `records` that their money payments settle with an early-payment
    discount (db/sales_discounts.py), by our invoice id; and a sentence per invoice whose
    recorded discount steps cannot be read. A payment's day is its TxnDate."""
    local_of = {str(r["Id"]): mapped[str(r["Id"])]["local_id"] for r in records}
    bases, problems = discount_bases(conn, organization_id, list(local_of.values()))
    money: dict[int, list[tuple[date, Decimal]]] = defaultdict(list)
    for record in records:
        qbo_id, local_id = str(record["Id"]), local_of[str(record["Id"])]
        if local_id not in bases:
            continue
        for pid in _payment_ids(record):
            if pid in payment_dates:
                amount = _money_to(payments[pid], qbo_id, memos.get(local_id, set()))
                money[local_id].append((payment_dates[pid], amount))
    return settle(bases, money), problems


def _money_of(record: dict, payments, payment_dates, memo_ids: set[str]) -> dict:
    """{payment id: (its day, the money it applied to the invoice)} of the money payments linked
    to the QBO invoice `record` (the rows of `sales_invoice_payments`, sales_payments.py)."""
    qbo_id = str(record["Id"])
    return {
        pid: (payment_dates[pid], _money_to(payments[pid], qbo_id, memo_ids).quantize(CENT))
        for pid in _payment_ids(record)
        if pid in payment_dates
    }


def pull_payments(engine: Engine, organization: Organization, client: QboClient) -> SyncCounts:
    organization_id = organization.id
    counts = SyncCounts()
    started = datetime.now(UTC)
    cursor = read_cursor(engine, organization_id, "payment")["cursor"]
    since = cursor - CURSOR_OVERLAP if cursor else None
    changes = client.changes("Invoice", since)
    with tenant_transaction(engine, organization_id) as conn:
        mapped = mappings_by_qbo_id(conn, organization_id, "invoice")
    records = [r for r in changes.records if str(r["Id"]) in mapped]
    payment_ids = sorted({pid for r in records for pid in _payment_ids(r)}, key=int)
    payments: dict[str, dict] = {}
    for start in range(0, len(payment_ids), 100):
        chunk = payment_ids[start : start + 100]
        where = f"Id IN ({', '.join(quote(i) for i in chunk)})"
        for payment in client.query_all("Payment", where, order_by=""):
            payments[str(payment["Id"])] = payment
    # a payment of money, not a credit memo applied by a payment of nothing
    payment_dates = {
        pid: date.fromisoformat(str(p["TxnDate"])[:10])
        for pid, p in payments.items()
        if Decimal(str(p.get("TotalAmt") or 0)) > 0
    }
    local_ids = [mapped[str(r["Id"])]["local_id"] for r in records] + [
        mapped[str(i)]["local_id"] for i in changes.deleted_ids if str(i) in mapped
    ]
    with tenant_transaction(engine, organization_id, write=True) as conn:
        invoices = {
            row.id: dict(row._mapping)
            for row in sales_ledger.read_invoices(conn, organization_id, local_ids, *PULL_FIELDS)
        }
        credited, memos = _credits(conn, organization_id, local_ids)
        settled, problems = _discounts(
            conn, organization_id, records, mapped, payments, memos, payment_dates
        )
        counts.errors.extend(problems)
        invoice_rows, mapping_rows, settled_ids, money = [], [], [], {}
        for record in records:
            mapping = mapped[str(record["Id"])]
            invoice = invoices.get(mapping["local_id"])
            if invoice is None or invoice["status"] == "cancelled":
                continue
            if mapping["qbo_state"] in ("voided", "deleted"):
                continue
            if _voided_in_qbo(record, invoice):
                # someone voided our invoice in QBO: that is not a payment; a person decides
                _flag(conn, organization_id, mapping, "voided", record, invoice, counts)
                continue
            in_qbo = ZERO
            if memos.get(invoice["id"]):
                in_qbo = sum(
                    (
                        applied_credit(payments[p], str(record["Id"]), memos[invoice["id"]])
                        for p in _payment_ids(record)
                        if p in payments
                    ),
                    ZERO,
                )
            paid, due, status = payment_state(record, invoice["gross_total"], in_qbo)
            due -= credited.get(invoice["id"], ZERO)
            settled_ids.append(invoice["id"])
            money[invoice["id"]] = _money_of(
                record, payments, payment_dates, memos.get(invoice["id"], set())
            )
            if invoice["id"] in settled:
                # paid within a discount period: the rest is the discount taken, not a debt (as
                # far as QBO has not closed it with a credit of its own already)
                due -= min(settled[invoice["id"]].discount, max(due, ZERO))
                status = "paid"
            linked = [(payment_dates[p], p) for p in _payment_ids(record) if p in payment_dates]
            last_date, last_id = max(linked) if linked else (None, None)
            unchanged = (
                invoice["amount_paid"] == paid
                and invoice["amount_due"] == due
                and invoice["status"] == status
                and invoice.get("last_payment_date", last_date) == last_date
            )
            details = dict(mapping["details"] or {})
            details.update(
                last_payment_date=last_date.isoformat() if last_date else None,
                last_payment_id=last_id,
                balance=str(record.get("Balance")),
            )
            mapping_rows.append(
                {
                    "m_id": mapping["id"],
                    "m_token": str(record.get("SyncToken", "")),
                    "m_details": details,
                }
            )
            if unchanged:
                counts.unchanged += 1
                continue
            row = {"si_id": invoice["id"], "paid": paid, "due": due, "new_status": status}
            if "last_payment_date" in sales_invoices.c:
                row["last_date"] = last_date
            invoice_rows.append(row)
        if invoice_rows:
            values = dict(
                amount_paid=bindparam("paid"),
                amount_due=bindparam("due"),
                status=bindparam("new_status"),
            )
            if "last_payment_date" in sales_invoices.c:
                values["last_payment_date"] = bindparam("last_date")
            conn.execute(
                update(sales_invoices)
                .where(
                    sales_invoices.c.organization_id == organization_id,
                    sales_invoices.c.id == bindparam("si_id"),
                )
                .values(**values),
                invoice_rows,
            )
        # the discount per VAT rate is booked in the transaction that settles (or reopens) it
        record_discounts(conn, organization_id, settled_ids, settled, "quickbooks")
        # and queued for QBO, which still has it open (discounts.py)
        enqueue_discounts(conn, organization_id, list(settled))
        # and each money payment, for the books (the sales export books it in its day's month)
        record_payments(conn, organization_id, settled_ids, money, "quickbooks")
        if mapping_rows:
            conn.execute(
                update(qbo_mappings)
                .where(qbo_mappings.c.id == bindparam("m_id"))
                .values(sync_token=bindparam("m_token"), details=bindparam("m_details")),
                mapping_rows,
            )
        for qbo_id in changes.deleted_ids:
            mapping = mapped.get(str(qbo_id))
            if mapping is not None and mapping["qbo_state"] not in ("voided", "deleted"):
                invoice = invoices.get(mapping["local_id"]) or {"id": mapping["local_id"]}
                _flag(conn, organization_id, mapping, "deleted", {"Id": qbo_id}, invoice, counts)
        write_cursor(conn, organization_id, "payment", cursor=newest(changes.records, cursor))
        clear_pull_request(conn, organization_id, "payment", started)
    counts.pulled = len(invoice_rows)
    return counts
