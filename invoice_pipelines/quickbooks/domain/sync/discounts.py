"""Early-payment discounts (Skonto) settled here, pushed to QBO as the credit that closes the
invoice there (issue 49), one way.

The payment pull (payments.py) settles an invoice whose money payments reached a discount step's
amount in time, and books what they left open per VAT rate (`sales_invoice_discounts`,
db/sales_discounts.py). QBO still shows that rest as the invoice's Balance: QuickBooks Online has
no early-payment discount on a received payment (QuickBooks Desktop's "Discounts and Credits" has
no Online counterpart), and the invoice is a document already sent, not to be changed. So the
discount reaches QBO as a credit does, in the two steps of a credit note (credit_memos.py), through
the same queue (`qbo_push_queue`, outbox PUSHES) with deterministic requestids
('ip-<org>-si-<invoice id>-discount' / '-dapply'), each row claimed and committed before its
request:

1. `discount`: a CreditMemo for the invoice's customer; DocNumber = the invoice's number and '-SK'
   (cut from the left to QBO's 21 characters), TxnDate = the day the payments reached the step's
   amount; one line per VAT rate on the connection's `discount_item_id` (else its
   `default_item_id`), the rate's net share with the rate's tax code (`tax_codes`, as the invoice
   push maps them), and our VAT shares as TxnTaxDetail.TotalTax, so its TotalAmt is the gross
   discount. Mapped in `qbo_mappings` as a `credit_memo` whose local id is the invoice (a credit
   note's CreditMemo has the credit note's id). QBO's invoice is read first: with nothing open
   there (a person wrote the discount off in QBO, or a payment there closed it) nothing is pushed
   and the row says so; with less open than the discount it is a conflict for a person, never a
   credit left with the customer. A 6140 (the DocNumber exists) links the existing CreditMemo
   when it is the same credit (customer, total), else it is a conflict.
2. `dapply`: the application, a Payment of TotalAmt 0 with one line linked to the invoice and one
   to the CreditMemo, for what both still have.

The pull queues a discount in the transaction that settles it, so the push sensor sees a waiting
row; each push queues the ones settled before this existed. Rows a dead run left `sending` are
looked up first (the CreditMemo by DocNumber, same customer and total; the application among the
invoice's payments), found ones linked, the others sent again with the same requestid. A discount
taken back after its CreditMemo went to QBO (a payment voided, a credit note after it) is a
conflict for a person: the CreditMemo stays in QBO until someone changes or deletes it there.

The pull reads what such a CreditMemo applied as a credit, not as money: our push never comes
back as a payment, nor as a second discount.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import Connection, Engine, and_, exists, select, update

from invoice_pipelines import sales_ledger
from invoice_pipelines.db.inserts import insert_selected
from invoice_pipelines.db.tables import qbo_mappings, qbo_push_queue, sales_invoice_discounts
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.outbox import finish
from invoice_pipelines.quickbooks.domain.client import QboClient
from invoice_pipelines.quickbooks.domain.errors import DuplicateDocNumber, QboError
from invoice_pipelines.quickbooks.domain.sync.common import (
    SyncCounts,
    held_lease,
    hold_for_review,
    mappings_by_local_id,
    record_conflict,
)
from invoice_pipelines.quickbooks.domain.sync.credit_memos import (
    MemoPusher,
    MemoRow,
)
from invoice_pipelines.quickbooks.domain.sync.push_queue import (
    DOC_NUMBER_MAX,
    PUSHES,
    QUEUE_COLUMNS,
    enqueueable,
    rate_key,
    rows_with_memo_mappings,
)

DISCOUNT = "discount"
DAPPLY = "dapply"
DISCOUNT_ACTIONS = (DISCOUNT, DAPPLY)
DOC_SUFFIX = "-SK"
ZERO = Decimal("0")


def doc_number(invoice_number: str) -> str:
    """The DocNumber of an invoice's discount CreditMemo: its number and '-SK', the start cut off
    where QBO's 21 characters do not hold both."""
    return f"{invoice_number}{DOC_SUFFIX}"[-DOC_NUMBER_MAX:]


def enqueue_discounts(
    conn: Connection, organization_id: int, invoice_ids: Sequence[int] | None = None
) -> int:
    """Queue (`discount`) each invoice (among `invoice_ids`, or all) with a discount settled here
    that is in QBO and not queued yet: one INSERT ... SELECT on the caller's connection."""
    d, m = sales_invoice_discounts.c, qbo_mappings.c
    invoice = sales_ledger.field
    queued = qbo_push_queue.alias("queued")
    conditions = [
        invoice("organization_id") == organization_id,
        invoice("id").in_(select(d.sales_invoice_id).where(d.organization_id == organization_id)),
        exists().where(
            m.organization_id == invoice("organization_id"),
            m.entity == "invoice",
            m.local_id == invoice("id"),
            m.qbo_state == "active",
        ),
        ~exists().where(queued.c.sales_invoice_id == invoice("id"), queued.c.action == DISCOUNT),
    ]
    if invoice_ids is not None:
        if not invoice_ids:
            return 0
        conditions.append(invoice("id").in_(list(invoice_ids)))
    rows = enqueueable(DISCOUNT).where(*conditions)
    return insert_selected(conn, qbo_push_queue, PUSHES.key, QUEUE_COLUMNS, rows)


@dataclass
class Discount(MemoRow):
    """One queue row of an invoice's discount, with what its step needs."""

    invoice: dict  # id, invoice_number, status, customer_id
    shares: list[dict]  # its sales_invoice_discounts rows, highest VAT rate first

    @property
    def number(self) -> str:
        return self.invoice["invoice_number"]

    @property
    def doc_number(self) -> str:
        return doc_number(self.number)

    @property
    def total(self) -> Decimal:
        return sum((Decimal(share["gross"]) for share in self.shares), ZERO)

    @property
    def paid_on(self) -> date:
        return self.shares[0]["paid_on"]


# what a discount's steps read of its invoice (sales_ledger.py)
DISCOUNT_FIELDS = ("id", "invoice_number", "status", "customer_id")


def _load(engine: Engine, organization_id: int, wanted) -> tuple[list[Discount], dict]:
    """The queue rows `wanted` selects with their invoices (DISCOUNT_FIELDS, from the sales
    ledger), mappings and discount shares, and the customers' mappings: three queries."""
    q = qbo_push_queue.c
    invoice_id = sales_ledger.field("id")
    rows_of = rows_with_memo_mappings(organization_id, DISCOUNT_FIELDS, invoice_id, invoice_id)
    with tenant_transaction(engine, organization_id) as conn:
        rows = conn.execute(
            rows_of.where(q.action.in_(DISCOUNT_ACTIONS), wanted).order_by(q.id)
        ).mappings()
        rows = [dict(r) for r in rows]
        shares = _shares(conn, organization_id, [r["id"] for r in rows])
        customers = mappings_by_local_id(conn, organization_id, "customer")
    discounts = [
        Discount(
            queue_id=r["queue_id"],
            action=r["action"],
            request_id=r["request_id"],
            invoice={k: r[k] for k in DISCOUNT_FIELDS},
            invoice_qbo_id=r["invoice_qbo_id"],
            invoice_state=r["invoice_state"],
            memo_qbo_id=r["memo_qbo_id"],
            shares=shares.get(r["id"], []),
        )
        for r in rows
    ]
    return discounts, customers


def _shares(conn: Connection, organization_id: int, invoice_ids: list[int]) -> dict:
    """Each invoice's discount rows (db/sales_discounts.py), highest VAT rate first."""
    d = sales_invoice_discounts.c
    shares: dict[int, list[dict]] = defaultdict(list)
    for start in range(0, len(invoice_ids), 5000):
        for row in conn.execute(
            select(sales_invoice_discounts)
            .where(
                d.organization_id == organization_id,
                d.sales_invoice_id.in_(invoice_ids[start : start + 5000]),
            )
            .order_by(d.sales_invoice_id, d.vat_rate.desc(), d.vat_category)
        ).mappings():
            shares[row["sales_invoice_id"]].append(dict(row))
    return shares


def build_discount_memo(
    discount: Discount, customers: dict, settings: dict
) -> tuple[dict | None, str | None]:
    """The QBO CreditMemo body of an invoice's discount, or the one sentence that says why it
    cannot be pushed."""
    number = discount.number
    customer = customers.get(discount.invoice["customer_id"])
    if customer is None or customer["qbo_state"] != "active":
        return None, f"customer {discount.invoice['customer_id']} is not synced to QuickBooks"
    item = settings.get("discount_item_id") or settings.get("default_item_id")
    if not item:
        return None, (
            "no QuickBooks item to book discounts on: set the connection's discount_item_id "
            "(or default_item_id)"
        )
    tax_codes = {str(k): str(v) for k, v in (settings.get("tax_codes") or {}).items()}
    percent = _plain(discount.shares[0]["percent"])
    lines, tax = [], ZERO
    for share in discount.shares:
        if Decimal(share["gross"]) == 0:
            continue  # a rate whose share rounded to nothing
        rate = rate_key(share["vat_rate"])
        code = tax_codes.get(rate)
        if code is None:
            return None, (
                f"no QuickBooks tax code is mapped for VAT {rate} % (the discount on invoice "
                f"{number})"
            )
        net = Decimal(share["net"])
        tax += Decimal(share["vat"])
        lines.append(
            {
                "LineNum": len(lines) + 1,
                "Amount": net,
                "Description": f"Skonto {percent} % on invoice {number}, "
                f"VAT {_plain(share['vat_rate'])} %",
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": str(item)},
                    "Qty": Decimal(1),
                    "UnitPrice": net,
                    "TaxCodeRef": {"value": code},
                },
            }
        )
    paid_on = discount.paid_on.isoformat()
    body = {
        "DocNumber": doc_number(number),
        "TxnDate": paid_on,
        "CustomerRef": {"value": customer["qbo_id"]},
        "Line": lines,
        # our VAT shares, as the invoice push sends our VAT: TotalAmt is the gross discount
        "TxnTaxDetail": {"TotalTax": tax},
        "PrivateNote": f"invoice-pipelines early-payment discount (Skonto) on sales invoice "
        f"{discount.invoice['id']} ({number})",
        "CustomerMemo": {
            "value": f"Early-payment discount (Skonto) of {percent} % on invoice {number}, "
            f"paid {paid_on}"
        },
    }
    return body, None


def _plain(value) -> str:
    """2.00 as 2, 7.50 as 7.5: a percentage as a person writes it."""
    return format(Decimal(value).normalize(), "f")


def same_credit(record: dict, customer_qbo_id: str, total: Decimal) -> bool:
    """An existing CreditMemo with the discount's DocNumber is ours when customer and total agree."""
    customer = str((record.get("CustomerRef") or {}).get("value"))
    return customer == str(customer_qbo_id) and Decimal(str(record.get("TotalAmt", 0))) == total


class DiscountPusher(MemoPusher):
    """Pushes one organization's settled discounts through one client."""

    ACTIONS = DISCOUNT_ACTIONS

    def run(self) -> SyncCounts:
        self.lease = held_lease(self.organization_id)
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            enqueue_discounts(conn, self.organization_id)
        self.reconcile_unknown()
        self.flag_taken_back()
        self.push_credits()
        self.push_applications()
        return self.counts

    # -- bookkeeping --------------------------------------------------------------------------

    def _label(self, row) -> str:
        return f"{row.number} (discount)"

    def _finish(self, discount: Discount, status: str, note: str | None = None, **values):
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            finish(conn, PUSHES, self._where(discount), status, error=note, **values)

    def _application_failed(self, discount: Discount, exc: QboError) -> None:
        self._failed(discount, exc, " (application)")

    def _failed(self, discount: Discount, exc: QboError, what: str = "") -> None:
        """QBO refused for good (`failed`); a refusal for now leaves the row `sending` (an unknown
        outcome: the next run looks it up first)."""
        self.counts.errors.append(f"{self._label(discount)}{what}: {exc}")
        if exc.temporary:
            return
        self._finish(discount, "failed", str(exc), error_code=(exc.code or "error")[:16])
        self.counts.failed += 1

    def _blocked(self, discount: Discount) -> tuple[str, str] | None:
        """Why the discount stays out of QBO now: (sentence, code)."""
        number = discount.number
        if discount.invoice["status"] == "cancelled":
            return f"invoice {number} was cancelled; its discount is not pushed", "cancelled"
        if discount.invoice_qbo_id is None:
            return f"waits for invoice {number} to reach QuickBooks", "validation"
        if discount.invoice_state != "active":
            state = discount.invoice_state
            return (
                f"invoice {number} was {state} in QuickBooks; its discount is not pushed",
                f"invoice_{state}"[:16],
            )
        if not discount.shares:
            # taken back before it went out (a payment voided): nothing to push unless earned again
            return f"no early-payment discount is settled on invoice {number}", "validation"
        if discount.action == DAPPLY and discount.memo_qbo_id is None:
            return f"the discount's credit memo of invoice {number} is not mapped", "validation"
        return None

    def _link(self, conn, discount: Discount, record: dict, *, linked: bool) -> None:
        """The CreditMemo is the discount's: mapped, the row pushed, its application queued."""
        details = {
            "discount_of": discount.number,
            "doc_number": str(record.get("DocNumber") or ""),
            "invoice_qbo_id": discount.invoice_qbo_id,
            "gross": str(Decimal(str(record.get("TotalAmt", 0)))),
            "linked": linked,
        }
        self._link_memo(conn, discount, discount.invoice["id"], record, details, (DISCOUNT, DAPPLY))

    def _applied(self, conn, discount: Discount, payment: dict | None, amount: Decimal) -> None:
        """The application is done (or there was nothing to apply): the row pushed, the amount
        in the CreditMemo's mapping; less than the whole credit is a conflict for a person."""
        details = self._note_application(conn, discount.invoice["id"], payment, amount)
        note = None
        credit = Decimal(details.get("gross") or discount.total)
        if amount < credit:
            note = (
                f"applied {amount} of {credit}: invoice {discount.number} had no more open in "
                "QuickBooks; the rest stays with the customer there"
            )
            record_conflict(
                conn,
                self.organization_id,
                "credit_memo",
                local_id=discount.invoice["id"],
                qbo_id=discount.memo_qbo_id,
                reason=f"the discount credit memo of invoice {discount.number} was applied to "
                f"it for {amount} of {credit} only; QuickBooks keeps the rest as the customer's "
                "credit",
                decision="manual_review",
                local_version={"invoice": discount.number, "discount": str(discount.total)},
            )
            self.counts.conflicts += 1
        self._application_pushed(conn, discount, payment, note)

    # -- step 1: the CreditMemo ----------------------------------------------------------------

    def _waiting(self, action: str) -> Iterator[tuple[Discount, dict]]:
        """The claimable rows of `action` with the customers' mappings; a row that must wait is
        refused on the way, and none is handed out once another run has the organization."""
        discounts, customers = _load(
            self.engine,
            self.organization_id,
            and_(qbo_push_queue.c.action == action, PUSHES.claimable()),
        )
        for discount in discounts:
            if self._lost():
                return
            blocked = self._blocked(discount)
            if blocked is not None:
                self._refuse(discount, *blocked, held=blocked[1] == "validation")
                continue
            yield discount, customers

    def push_credits(self) -> None:
        for discount, customers in self._waiting(DISCOUNT):
            body, problem = build_discount_memo(discount, customers, self.settings)
            if body is None:
                self._refuse(discount, problem or "cannot be pushed", "validation", held=True)
                continue
            if not self._claim(discount):
                continue
            try:
                invoice = self.client.get("Invoice", str(discount.invoice_qbo_id))
                still_open = Decimal(str(invoice.get("Balance", 0)))
                if still_open < discount.total:
                    self._closed_in_qbo(discount, invoice, still_open)
                    continue
                record = self.client.create("CreditMemo", body, requestid=discount.request_id)
            except DuplicateDocNumber:
                self._resolve_doc_number(discount, customers)
                continue
            except QboError as exc:
                self._failed(discount, exc)
                continue
            with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
                self._link(conn, discount, record, linked=False)
            self.counts.pushed += 1

    def _held(
        self, conn, discount: Discount, entity: str, qbo: dict | None, reason: str, code: str
    ) -> None:
        """A conflict for a person (`reason`, with QBO's record `qbo`), and the row `conflict`."""
        hold_for_review(
            conn,
            self.organization_id,
            PUSHES,
            self._where(discount),
            entity,
            local_id=discount.invoice["id"],
            qbo_id=str(qbo["Id"]) if qbo else None,
            reason=reason,
            local_version={"invoice": discount.number, "discount": str(discount.total)},
            qbo_version=qbo,
            error_code=code,
        )
        self.counts.conflicts += 1

    def _closed_in_qbo(self, discount: Discount, invoice: dict, still_open: Decimal) -> None:
        """QBO's invoice has less open than the discount: closed there already (nothing to push),
        or partly (a person decides; a credit pushed now would stay with the customer)."""
        if still_open <= 0:
            self._finish(
                discount,
                "pushed",
                f"nothing pushed: invoice {discount.number} has nothing open in QuickBooks",
                error_code=None,
            )
            self.counts.unchanged += 1
            return
        reason = (
            f"invoice {discount.number} has {still_open} open in QuickBooks, less than its "
            f"early-payment discount {discount.total}: not pushed"
        )
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            self._held(conn, discount, "invoice", invoice, reason, "open_balance")

    def _match(self, records: list[dict], discount: Discount, customers: dict) -> dict | None:
        customer = customers.get(discount.invoice["customer_id"]) or {}
        return next(
            (r for r in records if same_credit(r, customer.get("qbo_id"), discount.total)), None
        )

    def _doc_number_taken(self, conn, discount: Discount, existing: list[dict]) -> None:
        reason = (
            f"DocNumber {discount.doc_number} already exists in QuickBooks as a credit memo for "
            "another customer or amount"
        )
        self._held(conn, discount, "credit_memo", existing[0] if existing else None, reason, "6140")

    # -- step 2: the application -----------------------------------------------------------

    def push_applications(self) -> None:
        for discount, _customers in self._waiting(DAPPLY):
            note = (
                "invoice-pipelines: early-payment discount (Skonto) applied to invoice "
                f"{discount.number}"
            )
            self._apply(discount, discount.paid_on, note)

    # -- rows a dead run left `sending` (`reconcile_unknown`), discounts taken back -------------

    def _rows(self, wanted) -> tuple[list[Discount], dict]:
        return _load(self.engine, self.organization_id, wanted)

    def flag_taken_back(self) -> None:
        """A discount whose CreditMemo is in QBO but which is no longer what it grants (a payment
        voided, a credit note after it): one conflict for a person per change."""
        m = qbo_mappings.c
        invoice = sales_ledger.field
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            memos = conn.execute(
                select(
                    m.id, m.local_id, m.qbo_id, m.details, *sales_ledger.fields("invoice_number")
                )
                .select_from(sales_ledger.joined_to(qbo_mappings, m.local_id, "invoice_number"))
                .where(
                    m.organization_id == self.organization_id,
                    m.entity == "credit_memo",
                    invoice("organization_id") == self.organization_id,
                    # an invoice's own CreditMemo is its discount's (a credit note's is its own)
                    invoice("corrects_invoice_id").is_(None),
                )
            ).all()
            if not memos:
                return
            totals = _totals(conn, self.organization_id, [row.local_id for row in memos])
            for row in memos:
                details = dict(row.details or {})
                granted = Decimal(details.get("gross") or 0)
                now = totals.get(row.local_id, ZERO)
                if now == granted or details.get("taken_back") == str(now):
                    continue
                record_conflict(
                    conn,
                    self.organization_id,
                    "credit_memo",
                    local_id=row.local_id,
                    qbo_id=row.qbo_id,
                    reason=f"the early-payment discount on invoice {row.invoice_number} is {now} "
                    f"now, but its credit memo {row.qbo_id} in QuickBooks grants {granted} (a "
                    "payment voided or a credit note issued since): change or delete it there",
                    decision="manual_review",
                    local_version={"invoice": row.invoice_number, "discount": str(now)},
                )
                details["taken_back"] = str(now)
                conn.execute(update(qbo_mappings).where(m.id == row.id).values(details=details))
                self.counts.conflicts += 1


def _totals(conn: Connection, organization_id: int, invoice_ids: list[int]) -> dict:
    """Each invoice's discount settled here now (the sum of its rates' gross)."""
    d = sales_invoice_discounts.c
    totals: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for start in range(0, len(invoice_ids), 5000):
        for invoice_id, gross in conn.execute(
            select(d.sales_invoice_id, d.gross).where(
                d.organization_id == organization_id,
                d.sales_invoice_id.in_(invoice_ids[start : start + 5000]),
            )
        ):
            totals[invoice_id] += Decimal(gross)
    return totals


def push_discounts(
    engine: Engine, organization_id: int, client: QboClient, *, settings: dict | None = None
) -> SyncCounts:
    return DiscountPusher(engine, organization_id, client, settings=settings).run()
