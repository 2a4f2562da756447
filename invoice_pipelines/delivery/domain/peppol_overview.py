"""What the `peppol` group of the UI shows, read from our own records (plain SQL, no Dagster):
an organization's participants, the documents it sent over Peppol (`deliveries` of channel
`peppol`) and received (`peppol_received`) with what became of each, the documents sent without
an accepted report and the received ones without an answer across organizations (the checks),
and the monthly counts an access point reports to OpenPEPPOL (`monthly_counts`).

- **Undelivered**: a delivery over Peppol whose outcome is not the access point's accepted
  sending report (`sent`): still `sending`, `unknown` or `failed`, recorded more than
  `UNDELIVERED_AFTER` ago, and not followed by a later attempt of the same invoice that was
  accepted. An unknown one is never sent again on its own: someone has to look and decide.
- **Unanswered**: a received document (`peppol_received`) recorded more than `UNANSWERED_AFTER`
  ago that has had no answer: held for want of a receiving organization (`unknown_receiver`),
  still on its way through the intake or waiting for a person (UPLOADED, CREATED, PARSED,
  NEEDS_REVIEW), or FAILED without its answer: an Invoice Response over Peppol that the access
  point accepted (`peppol_responses` `sent`), or, where none was tried, a notice to its supplier
  that went out (`sent`, or `folded`/`suppressed` into the day's notice to the same address). An
  Invoice Response `sending`, `failed` or `unknown` is no answer yet. VALIDATED and EXPORTED are
  accepted, which is the answer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.engine import Connection, Engine

from invoice_pipelines import sales_ledger
from invoice_pipelines.core.channels import PEPPOL
from invoice_pipelines.core.export_months import month_bounds
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tables import (
    customers,
    deliveries,
    incoming_invoices,
    organizations,
    peppol_received,
    peppol_responses,
    sales_invoices,
    supplier_notices,
)
from invoice_pipelines.db.tenancy import organization_countries, tenant_transaction

UNDELIVERED_AFTER = timedelta(hours=1)
UNANSWERED_AFTER = timedelta(hours=24)
# the intake's statuses that are an answer of their own (the document was accepted)
ACCEPTED = ("VALIDATED", "EXPORTED")
# a FAILED document's supplier notice that went out (on its own or in the day's notice)
NOTICE_GONE = ("sent", "folded", "suppressed")
SHOWN = 50
_DOC_SCHEME = "busdox-docid-qns::"
_CREDIT_NOTE = "381"


def document_type_name(document_type: str | None, type_code: str | None = None) -> str:
    """`Invoice` or `CreditNote` (the UBL root a Peppol BIS document type id names), from the
    SBDH DOCUMENTID or, where there is none (a bare document, a sent one), the type code."""
    if document_type:
        value = document_type.removeprefix(_DOC_SCHEME)
        root = value.split("##", 1)[0].rsplit("::", 1)[-1]
        return root or value
    if type_code:
        return "CreditNote" if type_code == _CREDIT_NOTE else "Invoice"
    return "unknown"


def _age_limit(now: datetime | None, after: timedelta) -> datetime:
    return (now or datetime.now(UTC)) - after


@dataclass(frozen=True)
class Participants:
    organization: str | None  # the organization's participant id (BT-34), None: not on Peppol
    customers: int  # active customers
    on_peppol: list[tuple[str, str, str]]  # (customer number, name, participant id)


def participants(engine: Engine, organization: Organization) -> Participants:
    """The organization's own participant id and its customers' on Peppol."""
    c = customers.c
    with tenant_transaction(engine, organization) as conn:
        active = conn.execute(
            select(func.count()).where(c.organization_id == organization.id, c.active.is_(True))
        ).scalar_one()
        rows = conn.execute(
            select(c.customer_number, c.name, c.peppol_participant)
            .where(c.organization_id == organization.id, c.peppol_participant.is_not(None))
            .order_by(c.customer_number)
        ).all()
    return Participants(organization.peppol_participant, active, [tuple(r) for r in rows])


@dataclass
class SentDocuments:
    by_status: Counter = field(default_factory=Counter)  # deliveries over Peppol by status
    by_type: Counter = field(default_factory=Counter)  # Invoice / CreditNote, accepted ones
    fallbacks: int = 0  # invoices of customers on Peppol that went by e-mail, saying why
    rows: list[tuple] = field(default_factory=list)  # the newest: what the table shows


def sent_documents(conn: Connection, organization_id: int, limit: int = SHOWN) -> SentDocuments:
    """The organization's deliveries over Peppol with their reports (the AS4 message id, the
    error), newest first, and its counts."""
    d, s = deliveries.c, sales_invoices.c
    found = SentDocuments()
    for status, type_code, count in conn.execute(
        select(d.status, s.type_code, func.count())
        .join(sales_invoices, s.id == d.sales_invoice_id)
        .where(d.organization_id == organization_id, d.channel == PEPPOL)
        .group_by(d.status, s.type_code)
    ):
        found.by_status[status] += count
        if status == "sent":
            found.by_type[document_type_name(None, type_code)] += count
    found.fallbacks = conn.execute(
        select(func.count()).where(
            d.organization_id == organization_id,
            d.channel != PEPPOL,
            d.fallback_reason.is_not(None),
        )
    ).scalar_one()
    found.rows = [
        tuple(r)
        for r in conn.execute(
            select(
                s.invoice_number,
                d.sequence,
                d.recipient,
                d.status,
                d.transport_message_id,
                d.sent_at,
                d.error,
            )
            .join(sales_invoices, s.id == d.sales_invoice_id)
            .where(d.organization_id == organization_id, d.channel == PEPPOL)
            .order_by(d.id.desc())
            .limit(limit)
        )
    ]
    return found


def _notice_gone(invoice_id_column):
    n = supplier_notices.c
    return exists().where(n.incoming_invoice_id == invoice_id_column, n.status.in_(NOTICE_GONE))


def _response_status(message_id_column):
    """SQL: the status of the Invoice Response tried for the message (None: none tried; the
    notice answers)."""
    r = peppol_responses.c
    return (
        select(r.status)
        .where(r.peppol_received_id == message_id_column, r.channel == "peppol")
        .scalar_subquery()
    )


def _answered(message_id_column, invoice_id_column):
    """SQL: an Invoice Response the access point accepted, or, none tried, the notice gone out
    (EXISTS, never NULL: a comparison with the status of no row would be NULL, and NOT NULL
    would drop the message from the unanswered ones)."""
    r = peppol_responses.c
    tried = r.peppol_received_id == message_id_column, r.channel == "peppol"
    return or_(
        exists().where(*tried, r.status == "sent"),
        and_(~exists().where(*tried), _notice_gone(invoice_id_column)),
    )


def _answer(state, status, notice_gone: bool, response: str | None = None) -> str:
    """What the sender has had back: accepted, rejected (its Invoice Response or notice went
    out), or nothing yet (why)."""
    if state == "unknown_receiver":
        return "held: no organization has the receiver's id"
    if status in ACCEPTED:
        return "accepted"
    if status == "FAILED":
        if response is not None:
            return f"rejected, Invoice Response {response}"
        return "rejected, notice sent" if notice_gone else "rejected, no notice sent"
    if status == "NEEDS_REVIEW":
        return "waiting for review"
    return f"in the intake: {status}" if status else "not in the intake"


@dataclass
class ReceivedDocuments:
    by_state: Counter = field(default_factory=Counter)  # registered / unknown_receiver
    by_status: Counter = field(default_factory=Counter)  # the intake's status of each
    by_answer: Counter = field(default_factory=Counter)  # what the sender has had back
    rows: list[tuple] = field(default_factory=list)


def received_documents(
    conn: Connection, organization_id: int, limit: int = SHOWN
) -> ReceivedDocuments:
    """The organization's documents received over Peppol, newest first: the envelope's ids,
    the intake's status and verdict, and the answer the sender has had."""
    m, i = peppol_received.c, incoming_invoices.c
    query = (
        select(
            m.id,
            m.instance_identifier,
            m.sender,
            m.document_type,
            m.state,
            m.created_at,
            i.invoice_number,
            i.type_code,
            i.status,
            i.einvoice_class,
            _notice_gone(m.incoming_invoice_id).label("notice_gone"),
            _response_status(m.id).label("response"),
        )
        .select_from(peppol_received.outerjoin(incoming_invoices, i.id == m.incoming_invoice_id))
        .where(m.organization_id == organization_id)
        .order_by(m.id.desc())
    )
    found = ReceivedDocuments()
    for number, r in enumerate(conn.execute(query)):
        found.by_state[r.state] += 1
        found.by_status[r.status or "none"] += 1
        answer = _answer(r.state, r.status, bool(r.notice_gone), r.response)
        found.by_answer[answer] += 1
        if number < limit:
            found.rows.append(
                (
                    r.instance_identifier,
                    r.sender or "",
                    document_type_name(r.document_type, r.type_code),
                    r.invoice_number or "",
                    r.status or "",
                    r.einvoice_class or "",
                    answer,
                )
            )
    return found


@dataclass(frozen=True)
class Undelivered:
    organization: str
    invoice_number: str
    sequence: int
    recipient: str
    status: str
    since: datetime
    transport_message_id: str | None
    error: str | None


def undelivered_query(now: datetime | None = None, after: timedelta = UNDELIVERED_AFTER):
    """The query of `undelivered`: its rows are found through the partial index
    `ix_deliveries_peppol_undelivered` (migration 0045), not a scan of every channel's."""
    d, s, o = deliveries.c, sales_invoices.c, organizations.c
    later = deliveries.alias("later")
    accepted_later = exists().where(
        later.c.sales_invoice_id == d.sales_invoice_id,
        later.c.channel == PEPPOL,
        later.c.sequence > d.sequence,
        later.c.status == "sent",
    )
    return (
        select(
            o.slug,
            s.invoice_number,
            d.sequence,
            d.recipient,
            d.status,
            d.created_at,
            d.transport_message_id,
            d.error,
        )
        .join(sales_invoices, s.id == d.sales_invoice_id)
        .join(organizations, o.id == d.organization_id)
        .where(
            d.channel == PEPPOL,
            d.status != "sent",
            d.created_at < _age_limit(now, after),
            ~accepted_later,
        )
        .order_by(o.slug, d.created_at)
    )


def undelivered(
    conn: Connection, *, now: datetime | None = None, after: timedelta = UNDELIVERED_AFTER
) -> list[Undelivered]:
    """Across organizations (system scope): the deliveries over Peppol without an accepted
    report `after` their intent was recorded, and no later accepted attempt (module docstring)."""
    return [Undelivered(*r) for r in conn.execute(undelivered_query(now, after)).all()]


@dataclass(frozen=True)
class Unanswered:
    organization: str | None  # None: held, no organization has the receiver's id
    instance_identifier: str
    sender: str | None
    receiver: str | None
    received_at: datetime
    status: str | None  # the intake's
    why: str


def unanswered(
    conn: Connection, *, now: datetime | None = None, after: timedelta = UNANSWERED_AFTER
) -> list[Unanswered]:
    """Across organizations (system scope): received documents without an answer `after` they
    were recorded (module docstring)."""
    m, i, o = peppol_received.c, incoming_invoices.c, organizations.c
    gone = _notice_gone(m.incoming_invoice_id)
    answered = _answered(m.id, m.incoming_invoice_id)
    rows = conn.execute(
        select(
            o.slug,
            m.instance_identifier,
            m.sender,
            m.receiver,
            m.created_at,
            m.state,
            i.status,
            gone.label("notice_gone"),
            _response_status(m.id).label("response"),
        )
        .select_from(
            peppol_received.outerjoin(incoming_invoices, i.id == m.incoming_invoice_id).outerjoin(
                organizations, o.id == m.organization_id
            )
        )
        .where(
            m.created_at < _age_limit(now, after),
            or_(
                m.state == "unknown_receiver",
                i.status.is_(None),
                ~i.status.in_((*ACCEPTED, "FAILED")),
                and_(i.status == "FAILED", ~answered),
            ),
        )
        .order_by(m.created_at)
    ).all()
    return [
        Unanswered(
            r.slug,
            r.instance_identifier,
            r.sender,
            r.receiver,
            r.created_at,
            r.status,
            _answer(r.state, r.status, bool(r.notice_gone), r.response),
        )
        for r in rows
    ]


@dataclass
class MonthlyCounts:
    """The counts of one month: documents sent (accepted by the access point) and received
    (recorded, whatever became of them), by (direction, document type, sender's country,
    receiver's country), and the distinct participants at the other end."""

    month: str
    rows: Counter = field(default_factory=Counter)  # (direction, type, c1, c4) -> documents
    receivers: int = 0  # distinct participants sent to
    senders: int = 0  # distinct participants received from

    def total(self, direction: str) -> int:
        return sum(n for (d, *_), n in self.rows.items() if d == direction)

    def by(self, direction: str, position: int) -> dict[str, int]:
        """Per document type (position 1), sender's country (2) or receiver's country (3)."""
        counted: Counter = Counter()
        for key, n in self.rows.items():
            if key[0] == direction:
                counted[key[position]] += n
        return dict(sorted(counted.items()))


SENT = "sent"
RECEIVED = "received"


def monthly_counts(
    conn: Connection, month: str, organization_id: int | None = None
) -> MonthlyCounts:
    """One month's (`YYYY-MM`, UTC) Peppol traffic of one organization, or of every organization
    (system scope) where `organization_id` is None: what the access point reports for the
    organizations it serves.

    Sent: each delivery over Peppol the access point accepted (`sent`), by the month of
    `sent_at`; a resend is a message of its own. Its countries: the organization's (C1) and the
    customer's (C4). Received: each message recorded in `peppol_received` by the month it was
    recorded (a replay is not a message of its own: it records nothing), held ones too. Its
    countries: the envelope's COUNTRY_C1 (`unknown` for a bare document) and the receiving
    organization's (`unknown` while held)."""
    start, end = month_bounds(month)
    start_at = datetime(start.year, start.month, start.day, tzinfo=UTC)
    end_at = datetime(end.year, end.month, end.day, tzinfo=UTC)
    counts = MonthlyCounts(month)
    # each organization's country (its C1 sending, its C4 receiving), joined in the one query
    countries = organization_countries()
    d, c = deliveries.c, countries.c
    sent = (
        select(
            sales_ledger.field("type_code"),
            c.country,
            sales_ledger.field("customer_country"),
            d.recipient,
        )
        .select_from(
            sales_ledger.joined_to(
                deliveries, d.sales_invoice_id, "type_code", "customer_country"
            ).join(countries, c.id == d.organization_id)
        )
        .where(
            d.channel == PEPPOL,
            d.status == "sent",
            d.sent_at >= start_at,
            d.sent_at < end_at,
        )
    )
    if organization_id is not None:
        sent = sent.where(d.organization_id == organization_id)
    receivers = set()
    for type_code, ours, theirs, recipient in conn.execute(sent):
        counts.rows[(SENT, document_type_name(None, type_code), ours, theirs)] += 1
        receivers.add(recipient.lower())
    m, i = peppol_received.c, incoming_invoices.c
    received = (
        select(m.document_type, i.type_code, m.country, c.country, m.sender)
        .select_from(
            peppol_received.outerjoin(incoming_invoices, i.id == m.incoming_invoice_id).outerjoin(
                countries, c.id == m.organization_id
            )
        )
        .where(m.created_at >= start_at, m.created_at < end_at)
    )
    if organization_id is not None:
        received = received.where(m.organization_id == organization_id)
    senders = set()
    for document_type, type_code, theirs, ours, sender in conn.execute(received):
        kind = document_type_name(document_type, type_code)
        counts.rows[(RECEIVED, kind, (theirs or "unknown").upper(), ours or "unknown")] += 1
        if sender:
            senders.add(sender.lower())
    counts.receivers, counts.senders = len(receivers), len(senders)
    return counts
