"""Credit notes pushed to QBO as CreditMemos and applied to the invoices they correct, one way.

A credit note (billing/domain/credit_notes.py: a `sales_invoices` row of type 381 whose
`corrects_invoice_id` names the invoice) reaches QBO in two steps. Each is a row of the invoice
push's queue (`qbo_push_queue`, outbox PUSHES) with its own deterministic requestid
('ip-<org>-si-<credit note id>-credit' / '-apply'), claimed (`pending` -> `sending`) and committed
before its request, so a retry after a dropped connection replays QBO's answer and two runs never
both send it:

1. `credit`: the CreditMemo, mapped like the invoice it corrects (customer, items, tax codes:
   `build_invoice`), DocNumber = the credit note's number, TxnDate its issue date, our VAT as
   TxnTaxDetail.TotalTax (TotalAmt = our gross), a private note and a customer memo naming the
   corrected invoice. Its mapping is a `qbo_mappings` row of entity `credit_memo`. A 6140 (the
   DocNumber exists) links it when the existing CreditMemo is the same credit (customer, total),
   otherwise it is a conflict for a person.
2. `apply`: QBO's way of applying a credit memo to an invoice, a Payment of TotalAmt 0 with one
   line linked to the invoice and one to the CreditMemo. It applies what both still have (the
   invoice's Balance, the CreditMemo's RemainingCredit, as QBO reports them now): a credit note
   of an invoice already paid in QBO stays with the customer as credit there, and the row says so.

A credit note whose invoice is not in QBO yet waits (`failed` with error_code 'validation', taken
again each run, as an invoice whose customer is not synced; counted as held) and follows its
invoice in the run that pushes it. A credit note of an invoice voided or deleted in QBO is not
pushed. Rows a dead run left `sending` are looked up first: the CreditMemo by DocNumber, the
application among the payments linked to the invoice; found ones are linked, others sent again
with the same requestid. Each credit note fails on its own; the others go on.

The payment pull (payments.py) reads from QBO's payments how much of our credit notes QBO has
applied, and subtracts only the rest from what is due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import Engine, and_, exists, select, update

from invoice_pipelines import sales_ledger
from invoice_pipelines.db.inserts import insert_new, insert_selected
from invoice_pipelines.db.tables import qbo_mappings, qbo_push_queue
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.outbox import claim, finish, refuse
from invoice_pipelines.quickbooks.domain.client import QboClient, quote
from invoice_pipelines.quickbooks.domain.errors import DuplicateDocNumber, QboError
from invoice_pipelines.quickbooks.domain.sync.common import (
    SyncCounts,
    held_lease,
    hold_for_review,
    mappings_by_local_id,
    mark_dead_sending,
    save_mapping,
)
from invoice_pipelines.quickbooks.domain.sync.push_queue import (
    PUSH_FIELDS,
    PUSHES,
    QUEUE_COLUMNS,
    SENDING_STALE_AFTER,
    Candidate,
    build_invoice,
    enqueueable,
    rows_with_memo_mappings,
    same_invoice,
)

CREDIT = "credit"
APPLY = "apply"
CREDIT_ACTIONS = (CREDIT, APPLY)
ZERO = Decimal("0")
PRIVATE_NOTE_MAX = 4000  # QBO's limits on the two memo fields
CUSTOMER_MEMO_MAX = 1000


@dataclass
class MemoRow:
    """What `MemoPusher` reads of a queue row of a CreditMemo's two steps (a credit note's, a
    discount's); `doc_number` is the CreditMemo's DocNumber."""

    queue_id: int
    action: str
    request_id: str
    invoice_qbo_id: str | None  # the invoice in QBO it credits (None: not pushed yet)
    invoice_state: str | None  # that mapping's qbo_state (active | voided | deleted)
    memo_qbo_id: str | None  # the CreditMemo, once pushed


@dataclass
class CreditNote(MemoRow):
    """One queue row of a credit note, with what its step needs; the invoice is the one it
    corrects."""

    note: dict  # the credit note's NOTE_FIELDS
    corrects_number: str  # the corrected invoice's number
    lines: list  # its sales_invoice_lines rows, in line order

    @property
    def number(self) -> str:
        return self.note["invoice_number"]

    @property
    def doc_number(self) -> str:
        return self.number


def enqueue_credit_notes(engine: Engine, organization_id: int) -> dict:
    """Queue every credit note not queued yet but history (`credit`) and the application of every
    CreditMemo pushed (`apply`): two set-based inserts."""
    queued = qbo_push_queue.alias("queued")
    with tenant_transaction(engine, organization_id, write=True) as conn:
        ledger = sales_ledger.field

        def insert(action: str, *conditions) -> int:
            return insert_selected(
                conn,
                qbo_push_queue,
                PUSHES.key,
                QUEUE_COLUMNS,
                enqueueable(action).where(
                    ledger("organization_id") == organization_id,
                    ledger("corrects_invoice_id").is_not(None),
                    ~exists().where(
                        queued.c.sales_invoice_id == ledger("id"),
                        queued.c.action == action,
                    ),
                    *conditions,
                ),
            )

        # a migration's history is not pushed as if it were new
        credits = insert(CREDIT, ledger("status") != "cancelled", sales_ledger.not_history())
        applications = insert(
            APPLY,
            exists().where(
                queued.c.sales_invoice_id == ledger("id"),
                queued.c.action == CREDIT,
                queued.c.status == "pushed",
            ),
        )
    return {"queued_credit_notes": credits, "queued_applications": applications}


# what a credit note's steps read of it (sales_ledger.py): the invoice push's fields, the reason
# and the corrected invoice's number
NOTE_FIELDS = (*PUSH_FIELDS, "credit_reason", "corrects_number")


def _load(engine: Engine, organization_id: int, wanted, *, with_lines: bool):
    """The queue rows `wanted` selects with their credit notes (NOTE_FIELDS, and lines) from the
    sales ledger, and the mappings: one query for the rows, one per 5,000 credit notes for the
    lines, one per mapped entity."""
    q = qbo_push_queue.c
    ledger = sales_ledger.field
    rows_of = rows_with_memo_mappings(
        organization_id, NOTE_FIELDS, ledger("corrects_invoice_id"), ledger("id")
    )
    with tenant_transaction(engine, organization_id) as conn:
        rows = [
            dict(r)
            for r in conn.execute(
                rows_of.where(
                    q.action.in_(CREDIT_ACTIONS),
                    # the corrected invoice is there (the ledger joins it outer)
                    ledger("corrects_number").is_not(None),
                    wanted,
                ).order_by(q.id)
            ).mappings()
        ]
        lines = sales_ledger.read_lines(conn, [r["id"] for r in rows]) if with_lines else {}
        customers = mappings_by_local_id(conn, organization_id, "customer")
        items = mappings_by_local_id(conn, organization_id, "item") if with_lines else {}
    notes = [
        CreditNote(
            queue_id=r["queue_id"],
            action=r["action"],
            request_id=r["request_id"],
            note=r,
            corrects_number=r["corrects_number"],
            invoice_qbo_id=r["invoice_qbo_id"],
            invoice_state=r["invoice_state"],
            memo_qbo_id=r["memo_qbo_id"],
            lines=lines.get(r["id"], []),
        )
        for r in rows
    ]
    return notes, customers, items


def build_credit_memo(
    credit: CreditNote, customers: dict, items: dict, settings: dict
) -> tuple[dict | None, str | None]:
    """The QBO CreditMemo body (the invoice push's mapping of customer, items and tax codes), or
    the one sentence that says why it cannot be pushed."""
    note = credit.note
    candidate = Candidate(credit.queue_id, note["id"], credit.request_id, note, credit.lines)
    body, problem = build_invoice(candidate, customers, items, settings, document="credit note")
    if body is None:
        return None, problem
    body.pop("DueDate", None)  # nothing is due on a credit
    reason = (note.get("credit_reason") or "").strip()
    corrects = f"invoice {credit.corrects_number}" + (f": {reason}" if reason else "")
    body["PrivateNote"] = f"invoice-pipelines credit note {note['id']} for {corrects}"[
        :PRIVATE_NOTE_MAX
    ]
    body["CustomerMemo"] = {
        "value": f"Credit note {credit.number} for {corrects}"[:CUSTOMER_MEMO_MAX]
    }
    return body, None


def application(
    customer_qbo_id: str,
    invoice_qbo_id: str,
    memo_qbo_id: str,
    amount: Decimal,
    day: date,
    note: str,
) -> dict:
    """QBO's way of applying a credit: a payment of nothing with one line that moves `amount` of
    the CreditMemo's credit (its second line) onto the invoice (its first)."""
    return {
        "CustomerRef": {"value": customer_qbo_id},
        "TotalAmt": ZERO,
        "TxnDate": day.isoformat(),
        "PrivateNote": note,
        "Line": [
            {"Amount": amount, "LinkedTxn": [{"TxnId": invoice_qbo_id, "TxnType": "Invoice"}]},
            {"Amount": amount, "LinkedTxn": [{"TxnId": memo_qbo_id, "TxnType": "CreditMemo"}]},
        ],
    }


def apply_credit(
    client: QboClient,
    invoice_qbo_id: str,
    memo_qbo_id: str,
    day: date,
    note: str,
    requestid: str,
) -> tuple[dict | None, Decimal]:
    """Apply what the invoice and the CreditMemo both still have (its Balance, its
    RemainingCredit, as QBO reports them now) by an `application` dated `day`; (the payment, the
    amount), or (None, 0) when one of them has nothing left."""
    invoice = client.get("Invoice", invoice_qbo_id)
    memo = client.get("CreditMemo", memo_qbo_id)
    amount = min(
        Decimal(str(invoice.get("Balance", 0))), Decimal(str(memo.get("RemainingCredit", 0)))
    )
    if amount <= 0:
        return None, ZERO
    customer = str((memo.get("CustomerRef") or {}).get("value"))
    body = application(customer, invoice_qbo_id, memo_qbo_id, amount, day, note)
    return client.create("Payment", body, requestid=requestid), amount


def find_credit_memos(client: QboClient, numbers: list[str]) -> dict[str, list[dict]]:
    """The CreditMemos QBO has with these DocNumbers, by DocNumber (100 to a query)."""
    found: dict[str, list[dict]] = {}
    for start in range(0, len(numbers), 100):
        where = f"DocNumber IN ({', '.join(quote(n) for n in numbers[start : start + 100])})"
        for record in client.query_all("CreditMemo", where, order_by=""):
            found.setdefault(str(record.get("DocNumber")), []).append(record)
    return found


def find_application(
    client: QboClient, invoice_qbo_id: str, memo_qbo_id: str
) -> tuple[dict, Decimal] | None:
    """A payment in QBO that applies the CreditMemo to the invoice (a lost answer's), with the
    amount it applies."""
    invoice = client.get("Invoice", invoice_qbo_id)
    ids = [
        str(link["TxnId"])
        for link in invoice.get("LinkedTxn") or []
        if link.get("TxnType") == "Payment"
    ]
    for start in range(0, len(ids), 100):
        where = f"Id IN ({', '.join(quote(i) for i in ids[start : start + 100])})"
        for payment in client.query_all("Payment", where, order_by=""):
            amount = applied_credit(payment, invoice_qbo_id, {memo_qbo_id})
            if amount > 0:
                return payment, amount
    return None


def applied_credit(payment: dict, invoice_qbo_id: str, memo_qbo_ids: set[str]) -> Decimal:
    """What `payment` applied to the invoice out of the credit memos named: of the amount it
    applied to the invoice, the part its lines took from those credit memos (at most all of it)."""
    to_invoice = from_memos = ZERO
    for line in payment.get("Line") or []:
        amount = Decimal(str(line.get("Amount") or 0))
        links = line.get("LinkedTxn") or []
        kinds = {(str(x.get("TxnType")), str(x.get("TxnId"))) for x in links}
        if ("Invoice", str(invoice_qbo_id)) in kinds:
            to_invoice += amount
        if any(kind == "CreditMemo" and txn in memo_qbo_ids for kind, txn in kinds):
            from_memos += amount
    return min(to_invoice, from_memos)


class MemoPusher:
    """What pushing CreditMemos through the queue shares (credit notes here, early-payment
    discounts in discounts.py): one organization's rows, one at a time, through one client.

    A subclass names its two `ACTIONS` (the CreditMemo's, the application's) and brings `_rows`
    (the queue rows a condition selects, with the customers' mappings), `_match` (the CreditMemo
    QBO has that is the row's), `_doc_number_taken`, `_link`, `_applied` and
    `_application_failed`."""

    ACTIONS: tuple[str, str]

    def __init__(
        self,
        engine: Engine,
        organization_id: int,
        client: QboClient,
        *,
        settings: dict | None = None,
    ) -> None:
        self.engine = engine
        self.organization_id = organization_id
        self.client = client
        self.settings = settings if settings is not None else client.connection_settings
        self.counts = SyncCounts()
        self.lease = None

    def _where(self, row):
        return qbo_push_queue.c.id == row.queue_id

    def _lost(self) -> bool:
        # another run has the organization now: the rows stay for it
        return self.lease is not None and self.lease.lost.is_set()

    def _label(self, row) -> str:
        """How the counts' errors name a row."""
        return row.number

    def _claim(self, row) -> bool:
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            # only a row still claimable becomes ours: another run's claim wins
            return bool(
                claim(conn, PUSHES, self._where(row), attempts=qbo_push_queue.c.attempts + 1)
            )

    def _refuse(self, row, problem: str, code: str, *, held: bool) -> None:
        """A row that must not go now: `failed` with the sentence; counted held (it is taken
        again each run) or failed."""
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            refused = refuse(
                conn,
                PUSHES,
                self._where(row),
                problem,
                error_code=code,
                attempts=qbo_push_queue.c.attempts + 1,
            )
        if not refused:
            return
        if held:
            self.counts.held += 1
        else:
            self.counts.failed += 1
        self.counts.errors.append(f"{self._label(row)}: {problem}")

    def _link_memo(
        self, conn, row, local_id: int, record: dict, details: dict, step: tuple[str, str]
    ) -> None:
        """The CreditMemo `record` is the row's: mapped (`local_id`, `details`), the row pushed,
        and its application queued (`step`: the row's action, the application's)."""
        save_mapping(conn, self.organization_id, "credit_memo", local_id, record, details=details)
        finish(conn, PUSHES, self._where(row), "pushed", qbo_id=str(record["Id"]), error_code=None)
        action, then = step
        conn.execute(
            insert_new(conn, qbo_push_queue, PUSHES.key).values(
                organization_id=self.organization_id,
                sales_invoice_id=local_id,
                action=then,
                status="pending",
                request_id=row.request_id.removesuffix(f"-{action}") + f"-{then}",
            )
        )

    def _dead(self, actions: tuple[str, ...]) -> list[int]:
        """The rows of `actions` a dead run left `sending`, claimed for this run: every one under
        the organization's lease (no other run can be sending), else those older than
        SENDING_STALE_AFTER."""
        dead = mark_dead_sending(
            self.engine,
            PUSHES,
            self.organization_id,
            self.lease,
            SENDING_STALE_AFTER,
            where=qbo_push_queue.c.action.in_(actions),
        )
        return [row[0] for row in dead]

    def _settle_unknown(self, row, memo_action: str, memo: dict | None) -> None:
        """One of the rows `_dead` claimed: its CreditMemo (a row of `memo_action`; `memo`, the
        one QBO has for it) or its application is linked when QBO has it (the answer was lost);
        else the row is pending again and sent with the same requestid."""
        found = memo
        if row.action != memo_action:
            found = None
            if row.invoice_qbo_id and row.memo_qbo_id:
                found = find_application(self.client, str(row.invoice_qbo_id), str(row.memo_qbo_id))
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            if found is None:
                finish(conn, PUSHES, self._where(row), "pending", error_code=None)
            elif row.action == memo_action:
                self._link(conn, row, found, linked=False)
                self.counts.pushed += 1
            else:
                payment, amount = found
                self._applied(conn, row, payment, amount)

    def _resolve_doc_number(self, row: MemoRow, customers: dict) -> None:
        """QBO refused the CreditMemo's DocNumber (6140): the CreditMemo QBO has with it is linked
        when it is the row's (`_match`), else a person decides (`_doc_number_taken`)."""
        existing = find_credit_memos(self.client, [row.doc_number]).get(row.doc_number, [])
        match = self._match(existing, row, customers)
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            if match is not None:
                self._link(conn, row, match, linked=True)
                self.counts.linked += 1
                return
            self._doc_number_taken(conn, row, existing)

    def _apply(self, row: MemoRow, day: date, note: str) -> None:
        """The row's application, once claimed: its CreditMemo applied to its invoice on `day`
        with `note` (`apply_credit`); QBO's refusal is the subclass's `_application_failed`."""
        if not self._claim(row):
            return
        try:
            payment, amount = apply_credit(
                self.client,
                str(row.invoice_qbo_id),
                str(row.memo_qbo_id),
                day,
                note,
                row.request_id,
            )
        except QboError as exc:
            self._application_failed(row, exc)
            return
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            self._applied(conn, row, payment, amount)

    def reconcile_unknown(self) -> None:
        """A CreditMemo or application QBO has (the answer was lost) is linked; anything else is
        pending again and sent with the same requestid."""
        dead = self._dead(self.ACTIONS)
        if not dead:
            return
        rows, customers = self._rows(
            and_(qbo_push_queue.c.id.in_(dead), qbo_push_queue.c.status == "sending")
        )
        memo_action = self.ACTIONS[0]
        memos = find_credit_memos(
            self.client, [row.doc_number for row in rows if row.action == memo_action]
        )
        for row in rows:
            memo = None
            if row.action == memo_action:
                memo = self._match(memos.get(row.doc_number, []), row, customers)
            self._settle_unknown(row, memo_action, memo)

    def _application_pushed(self, conn, row, payment: dict | None, note: str | None) -> None:
        """The application's row pushed, under the payment's id; `note`: what was not applied."""
        qbo_id = str(payment["Id"]) if payment else None
        finish(conn, PUSHES, self._where(row), "pushed", error=note, qbo_id=qbo_id, error_code=None)

    def _note_application(self, conn, local_id: int, payment: dict | None, amount: Decimal) -> dict:
        """What the application moved, in the CreditMemo's mapping (its details, returned)."""
        where = and_(
            qbo_mappings.c.organization_id == self.organization_id,
            qbo_mappings.c.entity == "credit_memo",
            qbo_mappings.c.local_id == local_id,
        )
        details = dict(conn.execute(select(qbo_mappings.c.details).where(where)).scalar() or {})
        details.update(
            applied=str(amount),
            application_payment_id=str(payment["Id"]) if payment else None,
        )
        conn.execute(
            update(qbo_mappings).where(where).values(details=details, updated_at=datetime.now(UTC))
        )
        return details


class CreditMemoPusher(MemoPusher):
    """Pushes one organization's credit notes through one client."""

    ACTIONS = CREDIT_ACTIONS

    def run(self) -> SyncCounts:
        self.lease = held_lease(self.organization_id)
        enqueue_credit_notes(self.engine, self.organization_id)
        self.reconcile_unknown()
        self.push_credits()
        self.push_applications()
        return self.counts

    # -- bookkeeping --------------------------------------------------------------------------

    def _fail(self, conn, credit: CreditNote, error: QboError | str, code: str | None) -> None:
        finish(
            conn,
            PUSHES,
            self._where(credit),
            "failed",
            error=str(error),
            error_code=(code or "error")[:16],
        )
        self.counts.failed += 1
        self.counts.errors.append(f"{credit.number}: {error}")

    def _link(self, conn, credit: CreditNote, record: dict, *, linked: bool) -> None:
        """The CreditMemo is ours: mapped, the row pushed, its application queued."""
        details = {
            "doc_number": credit.number,
            "corrects": credit.corrects_number,
            "invoice_qbo_id": credit.invoice_qbo_id,
            "linked": linked,
        }
        self._link_memo(conn, credit, credit.note["id"], record, details, (CREDIT, APPLY))

    def _application_failed(self, credit: CreditNote, exc: QboError) -> None:
        if exc.temporary:
            self.counts.errors.append(f"{credit.number} (application): {exc}")
            return
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            self._fail(conn, credit, f"applying it failed: {exc}", exc.code)

    def _applied(self, conn, credit: CreditNote, payment: dict | None, amount: Decimal) -> None:
        """The application is done (or there was nothing to apply): the row pushed, the amount
        in the CreditMemo's mapping."""
        self._note_application(conn, credit.note["id"], payment, amount)
        note = None
        if payment is None:
            note = (
                f"nothing applied: invoice {credit.corrects_number} has nothing open in "
                "QuickBooks; the credit stays with the customer there"
            )
        self._application_pushed(conn, credit, payment, note)

    def _refuse_note(self, credit: CreditNote, problem: str, code: str) -> None:
        # a credit note waiting for its invoice follows it; the invoice's row says what is wrong
        held = code == "validation" and credit.invoice_qbo_id is None
        self._refuse(credit, problem, code, held=held)

    def _blocked(self, credit: CreditNote) -> tuple[str, str] | None:
        """Why the corrected invoice keeps the credit note out of QBO now: (sentence, code)."""
        if credit.invoice_qbo_id is None:
            return (
                f"waits for invoice {credit.corrects_number} to reach QuickBooks",
                "validation",
            )
        if credit.invoice_state != "active":
            return (
                f"invoice {credit.corrects_number} was {credit.invoice_state} in QuickBooks; "
                "its credit note is not pushed",
                f"invoice_{credit.invoice_state}"[:16],
            )
        return None

    # -- step 1: the CreditMemo ----------------------------------------------------------------

    def _pushable(self, action: str, *, with_lines: bool):
        """The claimable queue rows of `action` with the customers and items they name, each
        not blocked (a blocked one is refused on the way); none more once the lease is lost."""
        credits, customers, items = _load(
            self.engine,
            self.organization_id,
            and_(qbo_push_queue.c.action == action, PUSHES.claimable()),
            with_lines=with_lines,
        )
        for credit in credits:
            if self._lost():
                return
            blocked = self._blocked(credit)
            if blocked is not None:
                self._refuse_note(credit, *blocked)
                continue
            yield credit, customers, items

    def push_credits(self) -> None:
        for credit, customers, items in self._pushable(CREDIT, with_lines=True):
            body, problem = build_credit_memo(credit, customers, items, self.settings)
            if body is None:
                self._refuse_note(credit, problem or "cannot be pushed", "validation")
                continue
            if not self._claim(credit):
                continue
            try:
                record = self.client.create("CreditMemo", body, requestid=credit.request_id)
            except DuplicateDocNumber:
                self._resolve_doc_number(credit, customers)
                continue
            except QboError as exc:
                if exc.temporary:
                    # unknown outcome: the row stays `sending`; the next run looks it up first
                    self.counts.errors.append(f"{credit.number}: {exc}")
                    continue
                with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
                    self._fail(conn, credit, exc, exc.code)
                continue
            with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
                self._link(conn, credit, record, linked=False)
            credit.memo_qbo_id = str(record["Id"])
            self.counts.pushed += 1

    def _match(self, records: list[dict], credit: CreditNote, customers: dict) -> dict | None:
        customer = customers.get(credit.note["customer_id"])
        if customer is None:
            return None
        return next((r for r in records if same_invoice(r, credit.note, customer["qbo_id"])), None)

    def _doc_number_taken(self, conn, credit: CreditNote, existing: list[dict]) -> None:
        hold_for_review(
            conn,
            self.organization_id,
            PUSHES,
            self._where(credit),
            "credit_memo",
            local_id=credit.note["id"],
            qbo_id=str(existing[0]["Id"]) if existing else None,
            reason=f"DocNumber {credit.number} already exists in QuickBooks as a credit memo "
            "for another customer or amount",
            local_version={
                "credit_note": credit.number,
                "corrects": credit.corrects_number,
                "customer_id": credit.note["customer_id"],
                "gross_total": credit.note["gross_total"],
            },
            qbo_version=existing[0] if existing else None,
            error=f"DocNumber {credit.number} exists in QuickBooks as another credit memo",
            error_code="6140",
        )
        self.counts.conflicts += 1

    # -- step 2: the application -----------------------------------------------------------

    def push_applications(self) -> None:
        for credit, _customers, _items in self._pushable(APPLY, with_lines=False):
            note = (
                f"invoice-pipelines: credit note {credit.number} applied to invoice "
                f"{credit.corrects_number}"
            )
            self._apply(credit, credit.note["issue_date"], note)

    # -- rows a dead run left `sending` (`reconcile_unknown`) ---------------------------------

    def _rows(self, wanted) -> tuple[list[CreditNote], dict]:
        credits, customers, _ = _load(self.engine, self.organization_id, wanted, with_lines=False)
        return credits, customers


def push_credit_memos(
    engine: Engine, organization_id: int, client: QboClient, *, settings: dict | None = None
) -> SyncCounts:
    return CreditMemoPusher(engine, organization_id, client, settings=settings).run()
