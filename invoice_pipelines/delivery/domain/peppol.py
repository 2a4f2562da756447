"""Which invoices go over Peppol, and why those of customers on Peppol that do not, do not.

A run over a channel that carries the invoice's documents (e-mail) hands an invoice to the
Peppol access point instead when

1. the run has the `peppol_access_point` (a run or command without it sends as before);
2. the customer has a participant id (customers.peppol_participant), and so has the organization
   (organizations.peppol_participant);
3. the invoice has its Peppol BIS document (documents/domain/build.py, kind `peppol`);
4. the receiver's SMP registration takes its document type, Invoice or CreditNote of Peppol BIS
   Billing 3.0, as the access point answers the lookup (asked once per receiver and document
   type in a run).

Where 2 (the organization's id), 3 or 4 fails, the invoice goes over the run's channel as before
and that delivery row says why (`deliveries.fallback_reason`). Where the access point cannot be
asked, the invoice is not sent in this run (skipped with the reason): its customer is on Peppol,
and sending an e-mail because of a passing fault would be our choice, not the customer's.

Over Peppol an invoice goes through the same outbox as an e-mail (delivery/domain/pipeline.py): its
intent committed before it leaves, an unknown outcome never sent again on its own, the access
point's AS4 message id recorded (`deliveries.transport_message_id`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, Row

from invoice_pipelines import sales_ledger
from invoice_pipelines.db.tables import (
    customers,
    peppol_received,
    sales_invoice_documents,
)
from invoice_pipelines.db.tenancy import (
    change_participant,
    organizations_with_participant,
    system_transaction,
    tenant_transaction,
)
from invoice_pipelines.einvoice.peppol_ids import ParticipantIdError, parse_participant
from invoice_pipelines.resources.messaging.mail_message import MessageError
from invoice_pipelines.resources.peppol.transport import PeppolLookupError, Reach

CREDIT_NOTE = "381"
NO_SENDER_ID = (
    "not over Peppol: the customer is on Peppol, the organization is not "
    "(organizations.peppol_participant is empty)"
)
NO_DOCUMENT = (
    "not over Peppol: the invoice has no Peppol BIS document (its documents were written "
    "before the participant ids were set, or as a plain PDF)"
)


@dataclass(frozen=True)
class PeppolLetter:
    """What one invoice's Peppol message is made of: its stored Peppol BIS document, from the
    organization's participant id to the customer's, and the sender's country (C1)."""

    number: str
    type_code: str
    sender: str
    receiver: str
    country: str
    document: bytes


def compose(channel: Any, letter: PeppolLetter) -> tuple[Any, str, str]:
    """The message of one invoice over Peppol, the id recorded before it leaves and the
    receiver (its participant id as the parser writes it); MessageError for an id the Peppol
    rules refuse."""
    try:
        receiver = str(parse_participant(letter.receiver))
    except ParticipantIdError as exc:
        raise MessageError(
            f"the customer's Peppol participant id {letter.receiver!r} is refused: {exc}"
        ) from exc
    message, message_id = channel.document_message(
        sender=letter.sender,
        receiver=receiver,
        document=letter.document,
        country=letter.country,
        type_code=letter.type_code,
    )
    return message, message_id, receiver


def customers_on_peppol(
    conn: Connection, organization_id: int, ids: Iterable[int]
) -> dict[int, Row]:
    """The invoices among `ids` whose customer has a participant id: id -> (id, invoice_number,
    type_code, customer_peppol_participant)."""
    rows = sales_ledger.read_invoices(
        conn,
        organization_id,
        ids,
        "id",
        "invoice_number",
        "type_code",
        "customer_peppol_participant",
    )
    return {r.id: r for r in rows if r.customer_peppol_participant}


def peppol_documents(conn: Connection, ids: Iterable[int]) -> dict[int, tuple[str | None, list]]:
    """Each invoice's Peppol BIS document: (storage key, []) when generated, (None, findings)
    when it did not prove; invoices without one are left out."""
    d = sales_invoice_documents.c
    found: dict[int, tuple[str | None, list]] = {}
    ids = list(ids)
    for start in range(0, len(ids), sales_ledger.CHUNK):
        for invoice_id, status, key, errors in conn.execute(
            select(d.sales_invoice_id, d.status, d.storage_key, d.errors).where(
                d.sales_invoice_id.in_(ids[start : start + sales_ledger.CHUNK]),
                d.kind == "peppol",
            )
        ):
            found[invoice_id] = (key, []) if status == "generated" else (None, errors or [])
    return found


def not_proved(errors: list) -> str:
    """Why an invoice whose Peppol BIS document did not prove goes over the other channel."""
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    found = [e for e in errors if isinstance(e, dict)]
    rules = ", ".join(dict.fromkeys(str(e.get("rule") or "") for e in found))
    return (
        f"not over Peppol: its Peppol BIS document did not prove ({rules}): "
        f"{str(first.get('message') or '')[:300]}"
    )


def document_kind(type_code: str | None) -> str:
    return "credit notes" if (type_code or "380") == CREDIT_NOTE else "invoices"


def refused_by_smp(reach: Reach, receiver: str, type_code: str | None) -> str:
    """Why an invoice the SMP lookup turned away goes over the other channel."""
    if reach is Reach.NOT_ON_PEPPOL:
        return (
            f"not over Peppol: {receiver} is not registered in the Peppol SMP "
            "(the access point's lookup)"
        )
    return (
        f"not over Peppol: {receiver} does not take Peppol BIS Billing 3.0 "
        f"{document_kind(type_code)} (its SMP registration, the access point's lookup)"
    )


def ask_smp(
    channel: Any, receivers: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Reach | PeppolLookupError]:
    """The SMP's answer for each (receiver, type code), over one session of the access point;
    a lookup that got no answer is kept as its PeppolLookupError."""
    answers: dict[tuple[str, str], Reach | PeppolLookupError] = {}
    with channel.session() as session:
        for receiver, type_code in receivers:
            try:
                answers[(receiver, type_code)] = channel.reach(session, receiver, type_code)
            except PeppolLookupError as exc:
                answers[(receiver, type_code)] = exc
    return answers


def lookup_key(letter: PeppolLetter) -> tuple[str, str]:
    """The lookup an invoice needs: its receiver and whether it is a credit note."""
    return letter.receiver, CREDIT_NOTE if letter.type_code == CREDIT_NOTE else "380"


class ParticipantRefused(ValueError):
    """A participant id that cannot be set; the message says why (the Peppol rule, or the
    organization that has it already)."""


@dataclass(frozen=True)
class ParticipantSet:
    """What `set_participant` did: whose id (`customer` None: the organization's), before, now,
    and what the Peppol rules will warn about in a document with it."""

    customer: str | None
    before: str | None
    now: str | None
    warning: str | None = None
    # messages received for the organization's new id before it had it, still held
    held: int = 0


def set_participant(
    engine: Any,
    system: Any,
    organization_id: int,
    participant: str | None,
    *,
    customer_id: int | None = None,
) -> ParticipantSet:
    """Set (or with None clear) the Peppol participant id of the organization, or of one of its
    customers, checked as the Peppol rules check an electronic address (einvoice/peppol_ids.py)
    and stored as the parser writes it. An organization's id is its receiving address: one that
    another organization has is refused (a document addressed to it would have two receivers).
    LookupError for a customer the organization does not have. `system`: the system engine (an
    organization's id is looked for among every organization's)."""
    parsed = None
    if participant is not None:
        try:
            parsed = parse_participant(participant)
        except ParticipantIdError as exc:
            raise ParticipantRefused(str(exc)) from exc
    now = str(parsed) if parsed is not None else None
    warning = parsed.warning if parsed is not None else None
    if customer_id is None:
        with system_transaction(system, write=True) as conn:
            if now is not None:
                others = organizations_with_participant(conn, now)
                other = next((o.slug for o in others if o.id != organization_id), None)
                if other is not None:
                    raise ParticipantRefused(f"organization {other} has {now} already")
            before = change_participant(conn, organization_id, now)
            held = 0
            if now is not None:
                m = peppol_received.c
                held = conn.execute(
                    select(func.count()).where(
                        m.state == "unknown_receiver", func.lower(m.receiver) == now.lower()
                    )
                ).scalar_one()
        return ParticipantSet(None, before, now, warning, held)
    c = customers.c
    with tenant_transaction(engine, organization_id, write=True) as conn:
        row = conn.execute(
            select(c.customer_number, c.peppol_participant)
            .where(c.organization_id == organization_id, c.id == customer_id)
            .with_for_update()
        ).first()
        if row is None:
            raise LookupError(customer_id)
        conn.execute(
            update(customers)
            .where(c.organization_id == organization_id, c.id == customer_id)
            .values(peppol_participant=now)
        )
    return ParticipantSet(row.customer_number, row.peppol_participant, now, warning)
