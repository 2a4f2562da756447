"""The answer to a received Peppol document the intake rejected (issue 58): an Invoice Response
back over Peppol where the sender's access point takes one, else the supplier notice.

`answer_rejections(engine, access_point, org)` runs before the organization's
supplier notices are sent (intake/defs.py, the notices op). For each message in
`peppol_received` whose incoming invoice is FAILED and that has no answer yet
(`peppol_responses`, one row per message):

- its supplier notice went out already (or may have: `sending`, `sent`, `unknown`, suppressed, or
  folded into the day's notice that left): the notice is its answer (`channel` `notice`);
- else the access point's SMP lookup of the sender for the Invoice Response document type and
  process: it takes one -> a UBL ApplicationResponse (einvoice/invoice_response.py, `RE` with a
  status reason per error finding) goes back through the access point at most once, through the
  outbox as an invoice does (outbox/machine.py: the intent `sending` committed before it leaves,
  `sent` with the AS4 message id, `failed`, or `unknown` never sent again on its own; 429/503
  and no connection are asked again in the run); in the transaction of the intent the document's
  notice is withdrawn (a pending notice deleted, one folded into the day's notice `suppressed`,
  saying why), so the sender is not told twice;
- it takes none, is not in the SMP, or the sender's id is not a participant id: the notice
  answers (`channel` `notice`, the reason in `error`), as before;
- it goes only to the seller's verified participant id: the envelope's sender where the receipt
  found it to be the document's seller's electronic address (BT-34). Where it did not (IP-PEP-01,
  or IP-PEP-02: the document names none; intake/domain/peppol_inbound.py), no Invoice Response is sent
  to anyone: neither to the envelope's sender, an unverified claim, nor to an address the
  document names but nobody sent from; the notice answers, `error` says why and `receiver` is
  empty. (The supplier register holds no participant ids yet: the document's, borne out by its
  envelope, is the only one there is.)
- the access point cannot be asked: nothing is recorded, and the notice of that document waits
  (`held_notices`): its sender is on Peppol, and telling it by e-mail because of a passing fault
  would be our choice, not the network's.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import delete, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased

from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tables import (
    incoming_invoices,
    peppol_received,
    peppol_responses,
    processing_errors,
    supplier_notices,
)
from invoice_pipelines.db.tenancy import organizations_where, tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.einvoice.invoice_response import (
    REJECTED,
    Party,
    reason_of,
    write_rejection,
)
from invoice_pipelines.einvoice.peppol_ids import (
    ParticipantId,
    ParticipantIdError,
    parse_participant,
)
from invoice_pipelines.intake.domain.peppol_inbound import SENDER_RULES
from invoice_pipelines.intake.domain.peppol_inbound import STAGE as RECEIPT_STAGE
from invoice_pipelines.outbox.machine import FAILED, Outbox, attempt, finish, mark_unknown
from invoice_pipelines.resources.peppol.transport import (
    INVOICE_RESPONSE_DOC_TYPE,
    INVOICE_RESPONSE_PROCESS,
    Outcome,
    PeppolLookupError,
    Reach,
)

BOX = Outbox(peppol_responses, key=("peppol_received_id",), waiting=())
PEPPOL, NOTICE = "peppol", "notice"
# an Invoice Response `sending` this long belongs to a run that died (a send takes seconds)
STALE_AFTER = timedelta(minutes=15)
DIED = "the sending run ended before the outcome was recorded; it may have been sent"
NOTICE_LEFT = "its supplier notice went out before (or may have): the notice is the answer"
WITHDRAWN = "answered over Peppol by an Invoice Response instead"
NO_ORGANIZATION_ID = "the organization has no Peppol participant id to answer from"
RETRIES = 3
# the notice states after which the notice is (or may be) with the supplier
_LEFT = ("sending", "sent", "unknown", "suppressed")


@dataclass
class ResponseSummary:
    """What one organization's run did, by received message id."""

    sent: dict[int, str] = field(default_factory=dict)  # -> AS4 message id
    failed: dict[int, str] = field(default_factory=dict)
    unknown: list[int] = field(default_factory=list)
    by_notice: dict[int, str] = field(default_factory=dict)  # -> why not over Peppol
    waiting: dict[int, str] = field(default_factory=dict)  # the access point could not be asked


def _candidates(conn, organization_id: int) -> list:
    m, i, r = peppol_received.c, incoming_invoices.c, peppol_responses.c
    return conn.execute(
        select(
            m.id,
            m.instance_identifier,
            m.sender,
            i.id.label("document_id"),
            i.invoice_number,
            i.issue_date,
            i.type_code,
            i.seller_name,
        )
        .join(incoming_invoices, i.id == m.incoming_invoice_id)
        .where(
            m.organization_id == organization_id,
            m.state == "registered",
            i.status == Status.FAILED.value,
            ~exists().where(r.peppol_received_id == m.id),
        )
        .order_by(m.id)
    ).all()


def awaiting_answer(organization_id_column):
    """SQL: the organization has a rejected received Peppol document without an answer yet."""
    m, i, r = peppol_received.c, incoming_invoices.c, peppol_responses.c
    return (
        exists()
        .where(
            m.organization_id == organization_id_column,
            m.state == "registered",
            i.id == m.incoming_invoice_id,
            i.status == Status.FAILED.value,
            ~exists().where(r.peppol_received_id == m.id),
        )
        .correlate_except(peppol_received, incoming_invoices, peppol_responses)
    )


def organizations_awaiting_answers(system: Engine) -> list[Organization]:
    """Organizations with a rejected received Peppol document and no answer decided yet, by id
    (one query over all of them)."""
    return organizations_where(system, awaiting_answer)


def held_notices(notice_table):
    """SQL for the notices query: the notice's document came over Peppol, was rejected and has
    no answer decided yet; it waits for `answer_rejections`."""
    m, r = peppol_received.c, peppol_responses.c
    return exists().where(
        m.incoming_invoice_id == notice_table.c.incoming_invoice_id,
        m.organization_id == notice_table.c.organization_id,
        m.state == "registered",
        ~exists().where(r.peppol_received_id == m.id),
    )


def _notice_left(conn, document_ids: list[int]) -> set[int]:
    """The documents whose supplier notice is (or may be) with the supplier."""
    if not document_ids:
        return set()
    n = supplier_notices.c
    carrier = aliased(supplier_notices)
    rows = conn.execute(
        select(n.incoming_invoice_id, n.status, carrier.c.status.label("carrier_status"))
        .outerjoin(carrier, carrier.c.id == n.folded_into)
        .where(n.incoming_invoice_id.in_(document_ids))
    ).all()
    return {
        row.incoming_invoice_id
        for row in rows
        if row.status in _LEFT or (row.status == "folded" and row.carrier_status != "pending")
    }


def _withdraw_notice(conn, organization_id: int, document_id: int) -> bool:
    """The document's notice will not leave by e-mail: a pending one deleted (the notices folded
    into it move to the next of them), a folded one `suppressed`; a failed one (it had no
    address) stays. False when it is leaving or left (a sender claimed it meanwhile)."""
    n = supplier_notices.c
    notice = conn.execute(
        select(n.id, n.status, n.folded_into).where(n.incoming_invoice_id == document_id)
    ).first()
    if notice is None or notice.status == FAILED:
        return True
    if notice.status == "folded":
        return bool(
            conn.execute(
                update(supplier_notices)
                .where(n.id == notice.id, n.status == "folded")
                .values(status="suppressed", error=WITHDRAWN, updated_at=utcnow())
            ).rowcount
        )
    if notice.status != "pending":
        return False
    # a compare-and-set on `pending`: a sender that claimed it first keeps it
    dependents = list(
        conn.execute(select(n.id).where(n.folded_into == notice.id).order_by(n.id)).scalars()
    )
    if dependents:
        successor = dependents[0]
        if not conn.execute(
            update(supplier_notices)
            .where(n.id == notice.id, n.status == "pending")
            .values(folded_into=successor)
        ).rowcount:
            return False
        conn.execute(
            update(supplier_notices)
            .where(n.id == successor)
            .values(folded_into=None, status="pending", error=None, updated_at=utcnow())
        )
        conn.execute(
            update(supplier_notices)
            .where(n.folded_into == notice.id, n.id != successor)
            .values(folded_into=successor)
        )
    deleted = conn.execute(
        delete(supplier_notices).where(n.id == notice.id, n.status == "pending")
    ).rowcount
    return bool(deleted)


def _unverified(conn, document_ids: list[int]) -> dict[int, str]:
    """The documents whose receipt found the envelope's sender not to be the seller (or could
    not check it: IP-PEP-01, IP-PEP-02), with what it said, resolved or not."""
    if not document_ids:
        return {}
    e = processing_errors.c
    found: dict[int, str] = {}
    for row in conn.execute(
        select(e.incoming_invoice_id, e.rule_id, e.message)
        .where(
            e.incoming_invoice_id.in_(document_ids),
            e.stage == RECEIPT_STAGE,
            e.rule_id.in_(SENDER_RULES),
        )
        .order_by(e.id)
    ):
        found.setdefault(row.incoming_invoice_id, f"{row.rule_id}: {row.message}")
    return found


def _addressee(message, ours, left: set[int], unverified: dict[int, str]):
    """Where the Invoice Response of `message` goes (the seller's verified participant id), or
    why it goes nowhere over Peppol: (ParticipantId, None) or (None, reason)."""
    if message.document_id in left:
        return None, NOTICE_LEFT
    if ours is None:
        return None, NO_ORGANIZATION_ID
    doubt = unverified.get(message.document_id)
    if doubt is not None:
        return None, (
            "no Invoice Response over Peppol: the envelope's sender is not the seller's verified "
            f"participant id ({doubt})"
        )
    try:
        return parse_participant(message.sender or ""), None
    except ParticipantIdError as exc:
        return None, (
            f"the sender {message.sender!r} is no Peppol participant id the rules accept: {exc}"
        )


def _record_notice(
    engine: Engine, organization_id: int, message, reason: str, *, addressed: bool = True
) -> bool:
    """The notice answers this message (`channel` `notice`); False when an answer was recorded
    meanwhile by another run. `addressed`: the sender is the seller's (else `receiver` stays
    empty: no one was answered over Peppol, least of all an unverified sender)."""
    with tenant_transaction(engine, organization_id, write=True) as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        return (
            conn.execute(
                dialect.insert(peppol_responses)
                .values(
                    organization_id=organization_id,
                    peppol_received_id=message.id,
                    incoming_invoice_id=message.document_id,
                    channel=NOTICE,
                    status=NOTICE,
                    receiver=((message.sender or "")[:160] or None) if addressed else None,
                    error=reason,
                )
                .on_conflict_do_nothing(index_elements=["peppol_received_id"])
                .returning(peppol_responses.c.id)
            ).scalar()
            is not None
        )


def _reasons(conn, document_id: int) -> list:
    e = processing_errors.c
    rows = conn.execute(
        select(e.stage, e.rule_id, e.message)
        .where(
            e.incoming_invoice_id == document_id,
            e.severity == "error",
            e.resolved_at.is_(None),
        )
        .order_by(e.id)
    ).all()
    reasons = [reason_of(row.stage, row.rule_id, row.message) for row in rows]
    return reasons or [reason_of(None, None, "the document was not accepted")]


def answer_rejections(
    engine: Engine,
    access_point,
    org: Organization,
    *,
    stale_after: timedelta = STALE_AFTER,
    backoff_seconds: float = 0.5,
) -> ResponseSummary:
    """Answer `org`'s rejected received Peppol documents (module docstring), from its name,
    country and participant id as the value has them. `access_point`: the plain transport
    (`PeppolTransport`: session, lookup, send), a run's `peppol_access_point` and a command's
    alike."""
    organization_id, us = org.id, org
    summary = ResponseSummary()
    dead = mark_unknown(
        engine, BOX, organization_id, stale_after, reason=DIED, returning=("peppol_received_id",)
    )
    summary.unknown.extend(row.peppol_received_id for row in dead)
    with tenant_transaction(engine, organization_id) as conn:
        messages = _candidates(conn, organization_id)
        if not messages:
            return summary
        document_ids = [m.document_id for m in messages]
        left = _notice_left(conn, document_ids)
        unverified = _unverified(conn, document_ids)
    ours = None
    try:
        ours = parse_participant(us.peppol_participant or "")
    except ParticipantIdError:
        pass
    to_ask = []
    for message in messages:
        to, why = _addressee(message, ours, left, unverified)
        if to is not None:
            to_ask.append((message, to))
        elif _record_notice(
            engine, organization_id, message, why,
            addressed=message.document_id not in unverified,
        ):  # fmt: skip
            summary.by_notice[message.id] = why
    if not to_ask:
        return summary
    with access_point.session() as session:
        reach: dict[str, Reach | PeppolLookupError] = {}
        for message, to in to_ask:
            sender = str(to)
            if sender not in reach:
                try:
                    reach[sender] = access_point.lookup(
                        session, sender, INVOICE_RESPONSE_DOC_TYPE, INVOICE_RESPONSE_PROCESS
                    )
                except PeppolLookupError as exc:
                    reach[sender] = exc
            answer = reach[sender]
            if isinstance(answer, PeppolLookupError):
                summary.waiting[message.id] = f"the access point could not be asked: {answer}"
            elif answer is not Reach.ACCEPTS:
                why = _not_taken(sender, answer)
                if _record_notice(engine, organization_id, message, why):
                    summary.by_notice[message.id] = why
            else:
                _respond(engine, access_point, session, organization_id, us, ours, message, to,
                         summary, backoff_seconds)  # fmt: skip
    return summary


def _not_taken(sender: str, reach: Reach) -> str:
    if reach is Reach.NOT_ON_PEPPOL:
        return f"{sender} is not registered in the Peppol SMP: the notice answers"
    return (
        f"{sender} takes no Peppol Invoice Response (its SMP registration, the access point's "
        "lookup): the notice answers"
    )


def _compose(conn, us, ours, message, to: ParticipantId, response_id: str) -> bytes:
    today = utcnow().date()
    return write_rejection(
        response_id=response_id,
        issue_date=today,
        sender=Party(ours, us.name),
        receiver=Party(to, message.seller_name or ""),
        # a document the intake could not read has no number: the message's id names it
        invoice_number=message.invoice_number or message.instance_identifier,
        invoice_issue_date=message.issue_date,
        invoice_type_code=message.type_code,
        reasons=_reasons(conn, message.document_id),
    )


def _intent(
    engine: Engine, organization_id: int, us, ours, message, to: ParticipantId
) -> tuple[int, bytes] | None:
    """The Invoice Response's intent (`sending`, committed before it leaves) with the notice
    withdrawn in the same transaction; None when it must not leave (another run answered, or the
    notice left meanwhile: then the notice is recorded as the answer)."""
    response_id = f"IR-{message.id}-{secrets.token_hex(4)}"
    with tenant_transaction(engine, organization_id, write=True) as conn:
        document = _compose(conn, us, ours, message, to, response_id)
        row_id = attempt(
            conn,
            BOX,
            {
                "organization_id": organization_id,
                "peppol_received_id": message.id,
                "incoming_invoice_id": message.document_id,
                "channel": PEPPOL,
                "response_id": response_id,
                "response_code": REJECTED,
                "document": document,
                "receiver": str(to),
            },
        )
        if row_id is None:
            return None
        if not _withdraw_notice(conn, organization_id, message.document_id):
            conn.execute(
                update(peppol_responses)
                .where(peppol_responses.c.id == row_id)
                .values(channel=NOTICE, status=NOTICE, error=NOTICE_LEFT, document=None)
            )
            return None
    return row_id, document


def _respond(engine, access_point, session, organization_id, us, ours, message, to, summary,
             backoff_seconds) -> None:  # fmt: skip
    intent = _intent(engine, organization_id, us, ours, message, to)
    if intent is None:
        return
    row_id, document = intent
    for tries in range(RETRIES + 1):
        sending = access_point.send(
            session,
            sender_id=str(ours),
            receiver_id=str(to),
            document=document,
            country=(us.country or "").upper(),
            doc_type_id=INVOICE_RESPONSE_DOC_TYPE,
            process_id=INVOICE_RESPONSE_PROCESS,
        )
        if sending.outcome is not Outcome.RETRYABLE or tries == RETRIES:
            break
        time.sleep(backoff_seconds * 2**tries)
    if sending.outcome is Outcome.ACCEPTED:
        status, error = "sent", None
        summary.sent[message.id] = sending.message_id or ""
    elif sending.outcome is Outcome.UNKNOWN:
        status, error = BOX.unknown, sending.reason
        summary.unknown.append(message.id)
    else:
        status, error = FAILED, sending.reason
        summary.failed[message.id] = sending.reason
    with tenant_transaction(engine, organization_id, write=True) as conn:
        finish(
            conn,
            BOX,
            peppol_responses.c.id == row_id,
            status,
            error=error,
            transport_message_id=sending.message_id,
        )
