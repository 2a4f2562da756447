"""Payments pulled from QBO, one way, onto our sales invoices.

QBO has no paid/partial status: it keeps each invoice's `Balance` and `TotalAmt`, and links the
payments applied to it (`LinkedTxn` of type Payment). So the pull reads the invoices changed since
the cursor (a payment, a voided or deleted payment all change the invoice's balance) and sets, on
each of our invoices mapped to one of them:

- amount_paid = TotalAmt - Balance, amount_due = our gross total - amount_paid - what our credit
  notes of the invoice credited (billing/credit_notes.py; QBO does not know them yet: no
  CreditMemo is pushed, so its Balance does not include them)
- status: paid (Balance 0, TotalAmt > 0), partially_paid (0 < Balance < TotalAmt), open otherwise
  (overdue is open or partially paid with a due date in the past: the dunning reads due_date)
- last payment date: the latest TxnDate of the payments still linked (and their id, kept in the
  mapping's details)

Cancelled invoices and invoices voided in QBO are left alone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import Engine, bindparam, func, select, update

from invoice_pipelines.db.tables import qbo_mappings, sales_invoices
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.quickbooks.client import QboClient, quote
from invoice_pipelines.quickbooks.sync.common import (
    CURSOR_OVERLAP,
    SyncCounts,
    clear_pull_request,
    mappings_by_qbo_id,
    newest,
    read_cursor,
    record_conflict,
    write_cursor,
)

CENT = Decimal("0.01")


def payment_state(record: dict, gross_total: Decimal) -> tuple[Decimal, Decimal, str]:
    """(amount_paid, amount_due, status) of our invoice from its QBO invoice."""
    total = Decimal(str(record.get("TotalAmt", "0")))
    balance = Decimal(str(record.get("Balance", "0")))
    paid = (total - balance).quantize(CENT)
    due = (Decimal(gross_total) - paid).quantize(CENT)
    if total > 0 and balance == 0:
        status = "paid"
    elif 0 < balance < total:
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


def pull_payments(engine: Engine, organization_id: int, client: QboClient) -> SyncCounts:
    counts = SyncCounts()
    started = datetime.now(UTC)
    cursor = read_cursor(engine, organization_id, "payment")["cursor"]
    since = cursor - CURSOR_OVERLAP if cursor else None
    changes = client.changes("Invoice", since)
    with tenant_transaction(engine, organization_id) as conn:
        mapped = mappings_by_qbo_id(conn, organization_id, "invoice")
    records = [r for r in changes.records if str(r["Id"]) in mapped]
    payment_ids = sorted({pid for r in records for pid in _payment_ids(r)}, key=int)
    payment_dates: dict[str, date] = {}
    for start in range(0, len(payment_ids), 100):
        chunk = payment_ids[start : start + 100]
        where = f"Id IN ({', '.join(quote(i) for i in chunk)})"
        for payment in client.query_all("Payment", where, order_by=""):
            payment_dates[str(payment["Id"])] = date.fromisoformat(str(payment["TxnDate"])[:10])
    local_ids = [mapped[str(r["Id"])]["local_id"] for r in records] + [
        mapped[str(i)]["local_id"] for i in changes.deleted_ids if str(i) in mapped
    ]
    with tenant_transaction(engine, organization_id, write=True) as conn:
        invoices = {
            row["id"]: dict(row)
            for row in conn.execute(
                select(sales_invoices).where(
                    sales_invoices.c.organization_id == organization_id,
                    sales_invoices.c.id.in_(local_ids or [-1]),
                )
            ).mappings()
        }
        credited = {
            invoice_id: Decimal(total)
            for invoice_id, total in conn.execute(
                select(sales_invoices.c.corrects_invoice_id, func.sum(sales_invoices.c.gross_total))
                .where(
                    sales_invoices.c.organization_id == organization_id,
                    sales_invoices.c.corrects_invoice_id.in_(local_ids or [-1]),
                )
                .group_by(sales_invoices.c.corrects_invoice_id)
            )
        }
        invoice_rows, mapping_rows = [], []
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
            paid, due, status = payment_state(record, invoice["gross_total"])
            due -= credited.get(invoice["id"], Decimal(0))
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
