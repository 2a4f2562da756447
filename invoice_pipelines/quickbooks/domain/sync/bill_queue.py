"""The bill push's queue (`qbo_bill_queue`) as an outbox, and what one row of it brings along.

A row is one version of one incoming invoice and one action: `push` (the document is VALIDATED at
that version: its Bill or VendorCredit is created or updated, its original attached, then it is
EXPORTED) or `delete` (it is back in review or FAILED after its bill was pushed: `HELD`; the
unpaid bill is deleted, a paid one is a conflict for a person). `enqueue_bills` adds the rows with
two set-based INSERT ... SELECT; the outbox (outbox/machine.py) moves them: claimed `sending` and
committed before the request, `pushed` / `failed` / `conflict` after. A row that waits for
something a person sets up (a vendor, an expense account, a tax code or rate) or decides (an
invoice over the lines a bill takes) is `failed` with the finding and one of `WAITING` as its
code, and every run takes it again. `needs_a_person` is what the check and `qbo-payables` list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine, String, and_, cast, exists, literal, or_, select

from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.db.incoming_status import in_intake, validated
from invoice_pipelines.db.inserts import insert_selected
from invoice_pipelines.db.tables import (
    incoming_discounts,
    incoming_invoice_lines,
    incoming_invoice_taxes,
    incoming_invoices,
    qbo_bill_queue,
    qbo_bills,
    uploads,
)
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.outbox import Outbox

# the seller's e-mail as the intake read it (incoming_invoices.raw_json)
SELLER_EMAIL = incoming_invoices.c.raw_json[("invoice", "seller_email")].as_string()

PUSH, DELETE = "push", "delete"
# what a waiting row is waiting for: a vendor, an expense account, anything else we check, a
# person's decision about an invoice longer than a bill takes (bill_body.MAX_BILL_LINES), a
# person's confirmation of its supplier (vendors.UNCONFIRMED), the import of the company the
# organization switched to (company.py)
WAITING = ("vendor", "account", "validation", "lines", "supplier", "company")
# the finding of every row while the organization's new company is not imported (company.py)
COMPANY = "company"
# a document in one of these after its bill was pushed holds its bill: the unpaid bill is
# deleted (QBO has no void for bills) and pushed again, with a new requestid, once a person
# confirms the document (VALIDATED at a new version); a paid one is a conflict (`PAID`)
HELD = (Status.NEEDS_REVIEW.value, Status.FAILED.value)
# the code of a `delete` row whose bill QBO shows paid or partly paid: not deleted, a conflict
PAID = "paid"
# a row `sending` this long is a dead run's (a bill, its vendor and term and two uploads, each
# with all their retries, take less); under the organization's lease every such row is
SENDING_STALE_AFTER = timedelta(minutes=30)
# a row whose document changed since (a newer version, or no longer VALIDATED)
SUPERSEDED = "superseded"
# a row a dead run left `sending`, pending again: QBO is asked for what it did before sending
UNKNOWN = "unknown"


def _waiting(queue) -> object:
    return queue.c.error_code.in_(WAITING)


BILLS = Outbox(
    qbo_bill_queue,
    error="error_message",
    key=("incoming_invoice_id", "version", "action"),
    sent="pushed",
    unknown=None,
    failed_again_when=_waiting,
)


def request_id_sql(action: str):
    """'ip-<org>-ii-<id>-v<version>-<action>', per document version and action, built in SQL."""
    t = incoming_invoices.c
    return (
        literal("ip-")
        + cast(t.organization_id, String)
        + literal("-ii-")
        + cast(t.id, String)
        + literal("-v")
        + cast(t.processing_version, String)
        + literal(f"-{action}")
    )


def needs_a_person(queue=qbo_bill_queue, documents=incoming_invoices):
    """The rows a person must act on: waiting ones (`WAITING`), and the conflicts of a `delete`
    (a paid bill, or one QBO refused to delete) while their document is still held at that
    version and the bill is still in QBO as far as we know (confirmed again, the bill is the
    document's again; deleted by a person in QBO, the bill pull marks it deleted: either way
    the conflict is moot)."""
    q, t = queue.c, documents.c
    return or_(
        and_(q.status == "failed", q.error_code.in_(WAITING)),
        and_(
            q.status == "conflict",
            q.action == DELETE,
            t.processing_version == q.version,
            t.status.in_(HELD),
            exists().where(
                qbo_bills.c.organization_id == q.organization_id,
                qbo_bills.c.incoming_invoice_id == q.incoming_invoice_id,
                qbo_bills.c.state == "active",
            ),
        ),
    )


def enqueue_bills(engine: Engine, organization_id: int, documents: list[int] | None = None) -> dict:
    """Queue a `push` for every VALIDATED document at its version, a `delete` for every one back
    in review or FAILED (`HELD`) whose bill is in QBO (`documents`: only these, history too;
    without them no history is pushed: a migration's invoices become bills when a person
    chooses them)."""
    t = incoming_invoices.c
    queued = qbo_bill_queue.alias("queued")
    chosen = [t.id.in_(documents)] if documents is not None else []
    # a migration's history is pushed when a person chooses it, never on its own (its bill, once
    # a person pushed it, is deleted like any other when the document goes back to review)
    todays = [t.history.is_(False)] if documents is None else []
    with tenant_transaction(engine, organization_id, write=True) as conn:

        def insert(action: str, *conditions) -> int:
            return insert_selected(
                conn,
                qbo_bill_queue,
                BILLS.key,
                [
                    "organization_id",
                    "incoming_invoice_id",
                    "version",
                    "action",
                    "status",
                    "request_id",
                ],
                select(
                    t.organization_id,
                    t.id,
                    t.processing_version,
                    literal(action),
                    literal("pending"),
                    request_id_sql(action),
                ).where(
                    t.organization_id == organization_id,
                    ~exists().where(
                        queued.c.incoming_invoice_id == t.id,
                        queued.c.version == t.processing_version,
                        queued.c.action == action,
                    ),
                    *chosen,
                    *conditions,
                ),
            )

        pushes = insert(PUSH, validated(organization_id=organization_id), *todays)
        deletes = insert(
            DELETE,
            in_intake(HELD),
            exists().where(qbo_bills.c.incoming_invoice_id == t.id, qbo_bills.c.state == "active"),
        )
    return {"queued_pushes": pushes, "queued_deletes": deletes}


@dataclass
class Candidate:
    """One queue row with its document, the document's rows beside it and its bill so far."""

    queue_id: int
    action: str
    version: int
    request_id: str
    error_code: str | None
    document: dict
    lines: list[dict] = field(default_factory=list)
    taxes: list[dict] = field(default_factory=list)
    discounts: list[dict] = field(default_factory=list)
    bill: dict | None = None  # its qbo_bills row

    @property
    def document_id(self) -> int:
        return self.document["id"]

    @property
    def may_have_sent(self) -> bool:
        """Whether an earlier claim of this row may have reached QBO (a dead run's row, or one
        that waited or failed since): its bill and files are looked for before they are sent."""
        return self.error_code is not None

    @property
    def number(self) -> str:
        return str(self.document.get("invoice_number") or f"document {self.document_id}")

    def superseded(self) -> str | None:
        """Why this row is no longer the document's (None: it is). A document an export booked
        (EXPORTED one version on) before its push is still pushed."""
        status, version = self.document["status"], self.document["processing_version"]
        if self.action == PUSH:
            if status == Status.VALIDATED.value and version == self.version:
                return None
            if status == Status.EXPORTED.value and version == self.version + 1:
                return None
        elif status in HELD and version == self.version:
            return None
        return f"the document is {status} at version {version} now"


DOCUMENT_COLUMNS = (
    incoming_invoices.c.id,
    incoming_invoices.c.status,
    incoming_invoices.c.processing_version,
    incoming_invoices.c.format,
    incoming_invoices.c.invoice_number,
    incoming_invoices.c.type_code,
    incoming_invoices.c.seller_name,
    incoming_invoices.c.seller_vat_id,
    incoming_invoices.c.issue_date,
    incoming_invoices.c.due_date,
    incoming_invoices.c.currency,
    incoming_invoices.c.net_total,
    incoming_invoices.c.tax_total,
    incoming_invoices.c.gross_total,
    incoming_invoices.c.amount_due,
    SELLER_EMAIL.label("seller_email"),
    uploads.c.storage_key,
    uploads.c.filename,
    uploads.c.content_type,
    uploads.c.content_hash,
    uploads.c.purged_at,
)


QUEUE_KEYS = ("queue_id", "action", "version", "request_id", "error_code")


def load_candidates(engine: Engine, organization_id: int, wanted) -> list[Candidate]:
    """The queue rows `wanted` selects (oldest first), each with its document, lines, VAT
    breakdown, discount steps and bill."""
    q = qbo_bill_queue.c
    with tenant_transaction(engine, organization_id) as conn:
        rows = conn.execute(
            select(
                q.id.label("queue_id"),
                q.action,
                q.version,
                q.request_id,
                q.error_code,
                *DOCUMENT_COLUMNS,
            )
            .join(
                incoming_invoices,
                and_(
                    incoming_invoices.c.organization_id == q.organization_id,
                    incoming_invoices.c.id == q.incoming_invoice_id,
                ),
            )
            .outerjoin(uploads, uploads.c.id == incoming_invoices.c.upload_id)
            .where(q.organization_id == organization_id, wanted)
            .order_by(q.id)
        ).mappings()
        candidates = [
            Candidate(
                queue_id=r["queue_id"],
                action=r["action"],
                version=r["version"],
                request_id=r["request_id"],
                error_code=r["error_code"],
                document={k: v for k, v in r.items() if k not in QUEUE_KEYS},
            )
            for r in rows
        ]
        by_document: dict[int, list[Candidate]] = {}
        for candidate in candidates:
            by_document.setdefault(candidate.document_id, []).append(candidate)
        ids = list(by_document)
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            _attach(conn, by_document, chunk)
    return candidates


def _attach(conn, by_document: dict[int, list[Candidate]], ids: list[int]) -> None:
    """Each document's lines, VAT breakdown, discount steps and bill, onto its candidates."""
    sources = (
        (incoming_invoice_lines, "lines", incoming_invoice_lines.c.line_no),
        (incoming_invoice_taxes, "taxes", incoming_invoice_taxes.c.id),
        (incoming_discounts, "discounts", incoming_discounts.c.step),
    )
    for table, name, order in sources:
        for row in conn.execute(
            select(table).where(table.c.incoming_invoice_id.in_(ids)).order_by(order)
        ).mappings():
            for candidate in by_document[row["incoming_invoice_id"]]:
                getattr(candidate, name).append(dict(row))
    for row in conn.execute(
        select(qbo_bills).where(qbo_bills.c.incoming_invoice_id.in_(ids))
    ).mappings():
        for candidate in by_document[row["incoming_invoice_id"]]:
            candidate.bill = dict(row)


def skipped_files(attachments: dict | None) -> list[str]:
    """One sentence per file of a bill's record that is not in QBO: which file, and why."""
    said = []
    for kind, entry in sorted((attachments or {}).items()):
        why = entry.get("skipped") or entry.get("error")  # "error": records before "skipped"
        if why:
            what = "the readable PDF" if kind == "readable" else "the supplier's original"
            name = f" {entry['file']!r}" if entry.get("file") else ""
            said.append(f"{what}{name} is not attached: {why}")
    return said
