"""The one notice a supplier gets when the intake rejects a document of theirs.

The intake run records the notice (`supplier_notices`, pending) in the same transaction that
moves the document to FAILED: what the document is under the law, the reasons in plain words with
their rule ids, and where it goes (the seller's e-mail in the document: contact e-mail BT-43, else
an electronic address with scheme EM, BT-34). `send_supplier_notices` sends the pending ones
through the at-most-once outbox (outbox/machine.py): claimed (`sending`) before the message
leaves, `sent`, `failed` with the reason, or `unknown` when the hand-over broke (never sent again
on its own). A document is noticed once whatever happens to it later: one row per document.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from email.utils import make_msgid

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from invoice_pipelines.core.rules import Finding
from invoice_pipelines.db.tables import incoming_invoices, organizations, supplier_notices, uploads
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.outbox.machine import (
    FAILED,
    SENDING,
    Outbox,
    claim,
    finish,
    mark_unknown,
    outcome_of,
    refuse,
)
from invoice_pipelines.resources.mail import OutgoingMail, SendError, SmtpMailer
from invoice_pipelines.resources.mail_message import email_address, mime_message

BOX = Outbox(supplier_notices, key=("incoming_invoice_id",))
MAX_REASONS = 12
# a notice `sending` this long belongs to a run that died (a send takes seconds)
STALE_AFTER = timedelta(minutes=15)
DIED = "the sending run ended before the outcome was recorded; it may have been sent"
NO_ADDRESS = (
    "the document names no e-mail address of the supplier (BT-43, or BT-34 with scheme EM), "
    "and its upload no sender"
)


@dataclass(frozen=True)
class Notice:
    recipient: str | None
    subject: str
    body: str


def compose(
    organization: str,
    number: str | None,
    filename: str | None,
    label: str,
    findings: Sequence[Finding],
    recipient: str | None,
    rules: Sequence[str] = (),
) -> Notice:
    """The notice's text: which document, what it is, why it was not accepted, what to do.
    `rules`: the rule ids that decided its class, named where no error finding says more."""
    which = f"invoice {number}" if number else f"the document {filename or '(no name)'}"
    errors = [f for f in findings if f.severity == "error"]
    reasons = []
    for finding in errors[:MAX_REASONS]:
        rule = f"{finding.rule}: " if finding.rule else ""
        reasons.append(f"- {rule}{' '.join(finding.message.split())[:300]}")
    if len(errors) > MAX_REASONS:
        reasons.append(f"- and {len(errors) - MAX_REASONS} more of the same kind")
    if not reasons:
        reasons.append(f"- {label}" + (f" ({', '.join(rules)})" if rules else ""))
    body = "\n".join(
        [
            "Good day,",
            "",
            f"{organization} received {which} ({filename or 'no file name'}) and could not "
            f"accept it: it is {label}.",
            "",
            "The reasons, with the rule ids of the official EN 16931 / XRechnung rules or of our "
            "own checks:",
            *reasons,
            "",
            "Please send a corrected e-invoice (XRechnung or ZUGFeRD/Factur-X EN 16931 or "
            "EXTENDED). This notice is sent once.",
            "",
            organization,
        ]
    )
    return Notice(recipient, f"Not accepted: {which} to {organization}", body)


def _looks_like_address(text: str | None) -> bool:
    text = (text or "").strip()
    local, at, domain = text.rpartition("@")
    return bool(at and local and "." in domain) and not any(
        c.isspace() or c in '<>,;"' for c in text
    )


def _upload_senders(conn, document_ids: Sequence[int]) -> dict[int, str]:
    """Who uploaded each document, where that is an e-mail address (`uploads.created_by`)."""
    rows = conn.execute(
        select(incoming_invoices.c.id, uploads.c.created_by)
        .join(uploads, uploads.c.id == incoming_invoices.c.upload_id)
        .where(incoming_invoices.c.id.in_(list(document_ids)))
    )
    return {row.id: row.created_by.strip() for row in rows if _looks_like_address(row.created_by)}


def record_notices(conn, organization_id: int, notices: dict[int, Notice]) -> None:
    """The notices of rejected documents, pending; a document noticed before keeps its notice.
    A document that names no address of the supplier goes to whoever uploaded it, if that was
    recorded as an e-mail address."""
    if not notices:
        return
    unaddressed = [doc_id for doc_id, notice in notices.items() if not notice.recipient]
    if unaddressed:
        senders = _upload_senders(conn, unaddressed)
        notices = {
            doc_id: replace(notice, recipient=senders[doc_id]) if doc_id in senders else notice
            for doc_id, notice in notices.items()
        }
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(supplier_notices)
        .values(
            [
                {
                    "organization_id": organization_id,
                    "incoming_invoice_id": doc_id,
                    "recipient": notice.recipient,
                    "subject": notice.subject,
                    "body": notice.body,
                }
                for doc_id, notice in notices.items()
            ]
        )
        .on_conflict_do_nothing(index_elements=["incoming_invoice_id"])
    )


@dataclass
class NoticeSummary:
    sent: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    unknown: list[int] = field(default_factory=list)


def _message(mailer: SmtpMailer, row, domain: str) -> OutgoingMail:
    """A plain-text message, built as every area's (resources/mail_message.py); a recipient that
    is no e-mail address is refused here (MessageError), before anything is sent."""
    return mime_message(
        sender_name=row.organization[:200],
        sender=mailer.sender,
        recipient=email_address(row.recipient, "the supplier"),
        subject=row.subject[:300],
        message_id=make_msgid(idstring=f"notice{row.incoming_invoice_id}", domain=domain),
        body=row.body + "\n",
        attachments=[],
    )


def send_supplier_notices(
    engine: Engine,
    mailer: SmtpMailer,
    organization_id: int,
    *,
    domain: str = "invoice-pipelines.local",
    stale_after: timedelta = STALE_AFTER,
) -> NoticeSummary:
    """Send the organization's pending notices, each at most once. A notice a run that died left
    `sending` for longer than `stale_after` is `unknown` (it may have left): never sent again on
    its own."""
    n = supplier_notices.c
    dead = mark_unknown(engine, BOX, organization_id, stale_after, reason=DIED)
    summary = NoticeSummary(unknown=[notice_id for (notice_id,) in dead])
    with tenant_transaction(engine, organization_id, write=True) as conn:
        refused = refuse(
            conn,
            BOX,
            (n.organization_id == organization_id) & n.recipient.is_(None),
            NO_ADDRESS,
        )
        summary.failed.update({row.id: NO_ADDRESS for row in refused})
        claimed = claim(conn, BOX, n.organization_id == organization_id)
    if not claimed:
        return summary
    with tenant_transaction(engine, organization_id) as conn:
        rows = conn.execute(
            select(
                n.id,
                n.incoming_invoice_id,
                n.recipient,
                n.subject,
                n.body,
                organizations.c.name.label("organization"),
            )  # fmt: skip
            .join(organizations, organizations.c.id == n.organization_id)
            .where(n.id.in_(claimed))
            .order_by(n.id)
        ).all()
    try:
        session = mailer.session()
        client = session.__enter__()
    except SendError as exc:
        with tenant_transaction(engine, organization_id, write=True) as conn:
            finish(conn, BOX, n.id.in_(claimed), "pending", error=str(exc))
        summary.failed.update(dict.fromkeys(claimed, str(exc)))
        return summary
    try:
        for row in rows:
            try:
                message = _message(mailer, row, domain)
                mailer.send(client, message)
            except SendError as exc:
                status = outcome_of(BOX, exc)
                with tenant_transaction(engine, organization_id, write=True) as conn:
                    finish(conn, BOX, n.id == row.id, status, error=str(exc))
                if status == FAILED:
                    summary.failed[row.id] = str(exc)
                else:
                    summary.unknown.append(row.id)
                continue
            except Exception as exc:  # a notice that cannot be composed is not sent
                with tenant_transaction(engine, organization_id, write=True) as conn:
                    finish(conn, BOX, n.id == row.id, FAILED, error=str(exc)[:500])
                summary.failed[row.id] = str(exc)
                continue
            with tenant_transaction(engine, organization_id, write=True) as conn:
                finish(conn, BOX, n.id == row.id, "sent", message_id=message.message_id)
            summary.sent.append(row.id)
    finally:
        session.__exit__(None, None, None)
    return summary


def organizations_with_pending_notices(
    engine: Engine, stale_after: timedelta = STALE_AFTER
) -> list[int]:
    """Organizations with notices to send, or left `sending` by a run that died."""
    n = supplier_notices.c
    with system_transaction(engine) as conn:
        return list(
            conn.execute(
                select(n.organization_id)
                .where(
                    or_(
                        n.status == "pending",
                        and_(n.status == SENDING, n.updated_at <= utcnow() - stale_after),
                    )
                )
                .distinct()
            ).scalars()
        )


def notices_of(conn, document_ids: Sequence[int]) -> dict[int, dict]:
    """The notice of each document that has one: recipient, status, error."""
    n = supplier_notices.c
    return {
        row.incoming_invoice_id: {
            "recipient": row.recipient,
            "status": row.status,
            "error": row.error,
        }
        for row in conn.execute(
            select(n.incoming_invoice_id, n.recipient, n.status, n.error).where(
                n.incoming_invoice_id.in_(list(document_ids))
            )
        )
    }


def rejected_documents(conn, organization_id: int, limit: int = 50) -> tuple[dict[str, int], list]:
    """The organization's rejected documents, newest first, with their notice: the count of
    notices by state (pending, sending, sent, failed, unknown), and the first `limit` with id,
    file name, invoice number, recipient, state and error."""
    n = supplier_notices.c
    counts = {
        status: count
        for status, count in conn.execute(
            select(n.status, func.count())
            .where(n.organization_id == organization_id)
            .group_by(n.status)
        )
    }
    rows = conn.execute(
        select(
            n.incoming_invoice_id,
            uploads.c.filename,
            incoming_invoices.c.invoice_number,
            incoming_invoices.c.einvoice_class,
            incoming_invoices.c.einvoice_reason,
            n.recipient,
            n.status,
            n.error,
        )
        .join(incoming_invoices, incoming_invoices.c.id == n.incoming_invoice_id)
        .outerjoin(uploads, uploads.c.id == incoming_invoices.c.upload_id)
        .where(n.organization_id == organization_id)
        .order_by(n.id.desc())
        .limit(limit)
    ).all()
    return counts, rows
