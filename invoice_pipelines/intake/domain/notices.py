"""The notice a supplier gets when the intake rejects documents of theirs: where it goes, how often,
and what it may say.

The intake run records each rejected document's notice (`supplier_notices`) in the transaction
that moves the document to FAILED: which document, what it is under the law, the reasons in plain
words with their rule ids. Where it goes is never what the rejected document claims (its seller
e-mail is anybody's to write, and so is the address of an earlier invoice that was accepted): it
goes to the notice address the organization's supplier register holds for the supplier the
document names (supplier_register.py: set by a person, never learned from a document) -- else to
the upload's sender where the upload recorded an e-mail address. Only a plain mailbox@domain is an
address (no IP literal, quoted local part, route, `%` or `!`). No such address: the notice is
`failed` at once, saying so.

At most one notice a day goes to an address: the day's first rejection is the notice (`pending`),
later ones the same day are listed in it (`folded`, `folded_into` it) while it waits, or are
`suppressed` (not sent again) once it left. `send_supplier_notices` sends the pending ones through
the at-most-once outbox (outbox/machine.py): claimed (`sending`) before the message leaves, `sent`,
`failed` with the reason, or `unknown` when the hand-over broke (never sent again on its own). A
rejected document received over Peppol may be answered by an Invoice Response instead
(intake/domain/peppol_responses.py): its notice waits until that is decided. The
mail is text/plain; every value from a document in it (number, supplier name, file name, the
reasons quoting them) is cut to a bounded length, stripped of control and bidi characters, and
has its links broken (`hxxps[:]//`, `www[.]`, `example[.]com`), so it is text, never a link.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from email.utils import make_msgid

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.engine import Engine

from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.core.rules import Finding
from invoice_pipelines.core.suppliers import name_skeleton, vat_id_key
from invoice_pipelines.db.tables import incoming_invoices, organizations, supplier_notices, uploads
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.intake.domain.notice_states import (
    FOLDED,
    SUPPRESSED,
    file_name,
    plain_text,
)
from invoice_pipelines.intake.domain.peppol_responses import held_notices
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
from invoice_pipelines.resources.messaging.mail_message import (
    MessageError,
    email_address,
    mime_message,
)
from invoice_pipelines.resources.messaging.mail_types import OutgoingMail, SendError
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines.supplier_register import load_register

BOX = Outbox(supplier_notices, key=("incoming_invoice_id",))
MAX_REASONS = 12
MAX_REASON = 200
# documents listed in one day's notice; the rest are counted
MAX_LISTED = 10
# a notice `sending` this long belongs to a run that died (a send takes seconds)
STALE_AFTER = timedelta(minutes=15)
DIED = "the sending run ended before the outcome was recorded; it may have been sent"
NO_ADDRESS = (
    "no address known for this supplier: the supplier register holds no notice address for the "
    "seller it names, and the upload has no sender's address; the address in the rejected "
    "document itself is not used"
)
BEFORE_0026 = (
    "recorded before notices went only to addresses known for the supplier: its address came "
    "from the rejected document itself; not sent"
)
LEFT_ALREADY = (
    "the day's one notice to this address had left already (or had been tried); not sent again"
)
ACCEPTED = (Status.VALIDATED.value, Status.EXPORTED.value)


@dataclass(frozen=True)
class Notice:
    """One rejected document's part of a notice. `recipient`: the address the document itself
    names; kept for its caller, never where the notice goes (record_notices decides that)."""

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
    """One document's part of a notice: which document, what it is, why it was not accepted.
    `rules`: the rule ids that decided its class, named where no error finding says more.
    `recipient`: what the document names as the seller's address (not where the notice goes)."""
    name = file_name(filename) if filename else "(no file name)"
    shown = plain_text(number) if number else ""
    which = f"invoice {shown}" if shown else f"the document {name}"
    errors = [f for f in findings if f.severity == "error"]
    reasons = []
    for finding in errors[:MAX_REASONS]:
        rule = f"{plain_text(finding.rule, 40)}: " if finding.rule else ""
        reasons.append(f"  - {rule}{plain_text(finding.message, MAX_REASON)}")
    if len(errors) > MAX_REASONS:
        reasons.append(f"  - and {len(errors) - MAX_REASONS} more of the same kind")
    if not reasons and rules:
        reasons.append(f"  - {', '.join(plain_text(r, 40) for r in rules[:MAX_REASONS])}")
    kind = plain_text(label, MAX_REASON, links=True)
    body = "\n".join(
        [
            f"- {which}" + (f" (file {name})" if shown else ""),
            f"  it is {kind}" + ("; the reasons:" if errors else "; the rules that decided it:")
            if reasons
            else f"  it is {kind}",
            *reasons,
        ]
    )
    subject = f"Not accepted: {which if len(which) <= 48 else which[:47] + chr(0x2026)}"
    return Notice(recipient, f"{subject} to {plain_text(organization, 60, links=True)}", body)


def _letter(organization: str, sections: Sequence[str], total: int) -> str:
    """The mail's text: the day's rejected documents (the first MAX_LISTED of them), what to do."""
    org = plain_text(organization, 200, links=True)
    listed = list(sections[:MAX_LISTED])
    if total > len(listed):
        listed.append(f"- and {total - len(listed)} more documents, not listed here")
    listed = "\n\n".join(listed)
    which = "a document" if total == 1 else f"{total} documents"
    return "\n".join(
        [
            "Good day,",
            "",
            f"{org} received {which} naming you as the seller, or sent from your address, and "
            f"could not accept {'it' if total == 1 else 'them'}:",
            "",
            listed,
            "",
            "The rule ids are those of the official EN 16931 / XRechnung rules or of our own "
            "checks. Please send a corrected e-invoice (XRechnung or ZUGFeRD/Factur-X EN 16931 or "
            "EXTENDED). Values from the documents are shown as plain text (links broken); this "
            "address gets at most one such notice a day.",
            "",
            org,
            "",
        ]
    )


# --- where it goes -----------------------------------------------------------------------------

_LOCAL_PART = re.compile(r"[A-Za-z0-9_+\-]+(?:\.[A-Za-z0-9_+\-]+)*")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?")
_NOT_DELIVERED_TO = {"localhost", "local", "localdomain", "internal", "invalid", "arpa", "onion"}


def mailbox(text: str | None) -> str | None:
    """`text` as a plain mailbox@domain (lower case), or None: one @, a local part of letters,
    digits and . _ + - (no quotes, %, !, route or comment), a domain of at least two ASCII labels
    ending in a name (no IP literal or address, no local-only name)."""
    value = (text or "").strip()
    if len(value) > 254 or value.count("@") != 1:
        return None
    local, domain = value.lower().split("@")
    if len(local) > 64 or not _LOCAL_PART.fullmatch(local):
        return None
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    top = labels[-1]
    if not (top.isalpha() or top.startswith("xn--")) or len(top) < 2:
        return None
    return None if top in _NOT_DELIVERED_TO else f"{local}@{domain}"


def _known_addresses(conn, organization_id: int, documents) -> dict[int, str]:
    """The notice address the supplier register holds for the seller each of `documents` names
    (by full VAT id, else by a name that is one registered supplier's), by document id: one query
    for the register. A document's own e-mail address is never one."""
    register = load_register(conn, organization_id)
    known = {}
    for document in documents:
        supplier = register.by_vat.get(vat_id_key(document.seller_vat_id))
        if supplier is None and not vat_id_key(document.seller_vat_id):
            named = register.by_name.get(name_skeleton(document.seller_name), [])
            supplier = named[0] if len(named) == 1 else None
        address = mailbox(supplier.notice_email) if supplier is not None else None
        if address is not None:
            known[document.id] = address
    return known


def _documents(conn, document_ids: Sequence[int]) -> dict[int, object]:
    """Each document's seller (VAT id, name) and the sender its upload recorded."""
    i = incoming_invoices.c
    return {
        row.id: row
        for row in conn.execute(
            select(i.id, i.seller_vat_id, i.seller_name, uploads.c.created_by)
            .outerjoin(uploads, uploads.c.id == i.upload_id)
            .where(i.id.in_(list(document_ids)))
        )
    }


def _with_seller(body: str, seller: str | None) -> str:
    """The document's part with the seller it names, after its first line."""
    if not seller:
        return body
    first, _, rest = body.partition("\n")
    return "\n".join(filter(None, [first, f"  seller named in it: {plain_text(seller)}", rest]))


def _open_notices(conn, organization_id: int, day: date, addresses: set[str]) -> dict[str, tuple]:
    """The day's notice to each of `addresses` that has one: (id, whether it still waits). One
    that waits is touched (a compare-and-set on `pending`): a sender claiming it waits for this
    transaction, so what is folded into it here is in the mail it sends."""
    if not addresses:
        return {}
    n = supplier_notices.c
    rows = conn.execute(
        select(n.id, n.recipient, n.status).where(
            n.organization_id == organization_id,
            n.notice_day == day,
            n.folded_into.is_(None),
            n.recipient.in_(sorted(addresses)),
        )
    ).all()
    waiting = {row.id for row in rows if row.status == "pending"}
    if waiting:
        waiting = set(
            conn.execute(
                update(supplier_notices)
                .where(n.id.in_(sorted(waiting)), n.status == "pending")
                .values(updated_at=utcnow())
                .returning(n.id)
            ).scalars()
        )
    return {row.recipient: (row.id, row.id in waiting) for row in rows}


def record_notices(conn, organization_id: int, notices: dict[int, Notice]) -> None:
    """Record the notices of rejected documents; a document noticed before keeps its notice.
    Each goes to the address known for its supplier, else its upload's sender, else nowhere
    (`failed`, saying so); the first of the day to an address is the notice, the others are folded
    into it, or suppressed when it has left already."""
    if not notices:
        return
    n = supplier_notices.c
    noticed = set(
        conn.execute(
            select(n.incoming_invoice_id).where(n.incoming_invoice_id.in_(list(notices)))
        ).scalars()
    )
    wanted = sorted(doc_id for doc_id in notices if doc_id not in noticed)
    if not wanted:
        return
    documents = _documents(conn, wanted)
    known = _known_addresses(conn, organization_id, documents.values())
    day = utcnow().date()
    rows = {}
    for doc_id in wanted:
        document = documents.get(doc_id)
        address = None
        if document is not None:
            address = known.get(doc_id) or mailbox(document.created_by)
        notice = notices[doc_id]
        rows[doc_id] = {
            "organization_id": organization_id,
            "incoming_invoice_id": doc_id,
            "recipient": address,
            "subject": notice.subject[:300],
            "body": _with_seller(notice.body, document.seller_name if document else None),
            "notice_day": day,
            "status": "pending" if address else FAILED,
            "error": None if address else NO_ADDRESS,
            "folded_into": None,
        }
    addresses = {row["recipient"] for row in rows.values() if row["recipient"]}
    open_notices = _open_notices(conn, organization_id, day, addresses)
    # the first of the day to an address is its notice; the others name it
    firsts: dict[str, dict] = {}
    for row in rows.values():
        if row["recipient"] and row["recipient"] not in open_notices:
            firsts.setdefault(row["recipient"], row)
    if firsts:
        new = conn.execute(
            insert(supplier_notices).returning(n.id, n.recipient, sort_by_parameter_order=True),
            list(firsts.values()),
        ).all()
        open_notices.update({row.recipient: (row.id, True) for row in new})
    rest = [row for row in rows.values() if firsts.get(row["recipient"]) is not row]
    for row in rest:
        if row["recipient"] is not None:
            notice_id, waits = open_notices[row["recipient"]]
            row["folded_into"] = notice_id
            row["status"] = FOLDED if waits else SUPPRESSED
            row["error"] = None if waits else LEFT_ALREADY
    if rest:
        conn.execute(insert(supplier_notices), rest)


@dataclass
class NoticeSummary:
    sent: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    unknown: list[int] = field(default_factory=list)


def _message(mailer: Smtp, notice, documents: list, domain: str) -> OutgoingMail:
    """The day's notice as one plain-text message (resources/messaging/mail_message.py): the notice's
    document and those folded into it. A recipient that is no plain mailbox is refused here,
    before anything is sent."""
    recipient = mailbox(notice.recipient)
    if recipient is None:
        raise MessageError(f"{notice.recipient!r} is no plain mailbox@domain address")
    if len(documents) == 1:
        subject = notice.subject
    else:
        organization = plain_text(notice.organization, 60, links=True)
        subject = f"Not accepted: {len(documents)} documents to {organization}"
    return mime_message(
        sender_name=notice.organization[:200],
        sender=mailer.sender,
        recipient=email_address(recipient, "the supplier"),
        subject=subject[:160],
        message_id=make_msgid(idstring=f"notice{notice.incoming_invoice_id}", domain=domain),
        body=_letter(notice.organization, [d.body for d in documents], len(documents)),
        attachments=[],
    )


def _claimed(engine: Engine, organization_id: int, claimed: list[int]) -> list[tuple]:
    """Each claimed notice with its documents (its own first, then those folded into it)."""
    n = supplier_notices.c
    with tenant_transaction(engine, organization_id) as conn:
        rows = conn.execute(
            select(
                n.id,
                n.incoming_invoice_id,
                n.recipient,
                n.subject,
                n.body,
                n.folded_into,
                organizations.c.name.label("organization"),
            )  # fmt: skip
            .join(organizations, organizations.c.id == n.organization_id)
            .where(or_(n.id.in_(claimed), and_(n.folded_into.in_(claimed), n.status == FOLDED)))
            .order_by(n.id)
        ).all()
    folded: dict[int, list] = {}
    for row in rows:
        if row.folded_into is not None:
            folded.setdefault(row.folded_into, []).append(row)
    return [(row, [row, *folded.get(row.id, [])]) for row in rows if row.folded_into is None]


def send_supplier_notices(
    engine: Engine,
    mailer: Smtp,
    organization_id: int,
    *,
    domain: str = "invoice-pipelines.local",
    stale_after: timedelta = STALE_AFTER,
) -> NoticeSummary:
    """Send the organization's pending notices, each at most once, each with the documents folded
    into it. A notice a run that died left `sending` for longer than `stale_after` is `unknown`
    (it may have left): never sent again on its own."""
    n = supplier_notices.c
    dead = mark_unknown(engine, BOX, organization_id, stale_after, reason=DIED)
    summary = NoticeSummary(unknown=[notice_id for (notice_id,) in dead])
    with tenant_transaction(engine, organization_id, write=True) as conn:
        mine = n.organization_id == organization_id
        for where, reason in (
            (n.notice_day.is_(None), BEFORE_0026),
            (n.recipient.is_(None), NO_ADDRESS),
        ):
            refused = refuse(conn, BOX, mine & where, reason)
            summary.failed.update({row.id: reason for row in refused})
        # a rejected Peppol document's notice waits until its answer is decided (an Invoice
        # Response instead, or this notice: intake/domain/peppol_responses.py)
        claimed = claim(conn, BOX, mine & ~held_notices(supplier_notices))
    if not claimed:
        return summary
    notices = _claimed(engine, organization_id, claimed)
    try:
        session = mailer.session()
        client = session.__enter__()
    except SendError as exc:
        with tenant_transaction(engine, organization_id, write=True) as conn:
            finish(conn, BOX, n.id.in_(claimed), "pending", error=str(exc))
        summary.failed.update(dict.fromkeys(claimed, str(exc)))
        return summary
    try:
        for position, (notice, documents) in enumerate(notices):
            status, error, message_id = _send_one(mailer, client, notice, documents, domain)
            with tenant_transaction(engine, organization_id, write=True) as conn:
                finish(conn, BOX, n.id == notice.id, status, error=error, message_id=message_id)
            if status == "sent":
                summary.sent.append(notice.id)
            elif status in (FAILED, "pending"):
                summary.failed[notice.id] = error
            else:
                summary.unknown.append(notice.id)
            if status == "pending":
                # the server closed the connection before the notice left: a new connection for
                # the rest, or they wait for the next run as well
                try:
                    mailer.ready(client)
                except SendError as exc:
                    rest = [later.id for later, _ in notices[position + 1 :]]
                    with tenant_transaction(engine, organization_id, write=True) as conn:
                        finish(conn, BOX, n.id.in_(rest), "pending", error=str(exc))
                    summary.failed.update(dict.fromkeys(rest, str(exc)))
                    break
    finally:
        session.__exit__(None, None, None)
    return summary


def _send_one(mailer, client, notice, documents, domain) -> tuple[str, str | None, str | None]:
    """(status, error, message id) of handing one notice over."""
    try:
        message = _message(mailer, notice, documents, domain)
        mailer.send(client, message)
    except SendError as exc:
        # closed for now before it left: it waits for the next run, like a notice no connection
        # took
        return outcome_of(BOX, exc, later=exc.closed), str(exc), None
    except Exception as exc:  # a notice that cannot be composed is not sent
        return FAILED, str(exc)[:500], None
    return "sent", None, message.message_id


def organizations_with_pending_notices(
    system: Engine, stale_after: timedelta = STALE_AFTER
) -> list[int]:
    """Organizations with notices to send, or left `sending` by a run that died."""
    n = supplier_notices.c
    with system_transaction(system) as conn:
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
