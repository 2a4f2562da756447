"""What delivery's `invoice-pipelines peppol` verbs do: look a participant up in the SMP through
the access point, set (or clear, or show) the organization's or a customer's participant id, and
send (or send again) one invoice over Peppol the way the e-mail run sends it (delivery/domain/pipeline.py
`send_invoices` with the Peppol channel: the outbox, at most once, an unknown outcome never sent
again without `--resend`). Plain Python: the access point is the `peppol_access_point` of
`args.resources` (the plain transport, resources/peppol/transport.py), no Dagster.

Exit codes. `lookup`: 0 the participant takes the document type (ACCEPTS), 1 it does not
(NOT_THIS_DOCUMENT, NOT_ON_PEPPOL), 2 the id is refused by the Peppol rules (the message names
the rule), 3 the access point could not be asked. `send`: 0 sent (over Peppol, or by e-mail where
it could not go over Peppol, saying why), 1 failed or unknown, 2 no such invoice, 3 nothing sent
(already sent, unknown or failed without `--resend`, or the access point could not be asked).
`participant`: 0 set, cleared or shown, 1 no such customer (or organization), 2 the id is refused
(the Peppol rule, or another organization has it).

Their parser is delivery/commands/cli_peppol.py's; delivery/area.py's table names `run_peppol_command`
for delivery's verbs, and the console script imports this module only when one of them runs."""

from __future__ import annotations

import argparse
import json
import sys

from sqlalchemy import or_, select

from invoice_pipelines.area_parts import run_verb
from invoice_pipelines.core.channels import EMAIL, PEPPOL
from invoice_pipelines.core.text import terminal_text
from invoice_pipelines.db.tables import customers, deliveries, sales_invoices
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.delivery.commands.cli_peppol import DOCUMENTS
from invoice_pipelines.delivery.domain.peppol import ParticipantRefused, set_participant
from invoice_pipelines.delivery.domain.pipeline import AlreadySending, send_invoices
from invoice_pipelines.einvoice.peppol_ids import ParticipantIdError, parse_participant
from invoice_pipelines.lib.read_only import writable
from invoice_pipelines.resources.messaging.channels import open_channel, peppol_doc_type
from invoice_pipelines.resources.peppol.transport import PeppolLookupError, Reach

ACCEPTS, NOT_ACCEPTED, BAD_ID, NOT_ASKED = 0, 1, 2, 3
SENT, FAILED, NO_INVOICE, NOT_SENT = 0, 1, 2, 3


def run_peppol_command(args: argparse.Namespace) -> int:
    """The command the table names: its verb's function."""
    return run_verb(args, RUNS)


def run_lookup(args: argparse.Namespace) -> int:
    try:
        participant = parse_participant(args.participant)
    except ParticipantIdError as exc:
        print(
            terminal_text(
                f"invoice-pipelines peppol lookup: {args.participant!r} is refused: {exc}"
            )
        )
        return BAD_ID
    if participant.warning:
        print(f"note: {participant.warning}")
    document = "credit notes" if args.document == "credit-note" else "invoices"
    transport = args.resources.peppol_access_point
    session = transport.session()
    try:
        reach = transport.lookup(
            session, str(participant), peppol_doc_type(DOCUMENTS[args.document])
        )
    except PeppolLookupError as exc:
        again = "try again later" if exc.temporary else "check INVOICE_PIPELINES_PEPPOL_AP_*"
        # the access point's answer is outside text: printed escaped
        print(
            terminal_text(
                f"invoice-pipelines peppol lookup: the access point could not be asked: {exc}; "
                f"{again}"
            )
        )
        return NOT_ASKED
    finally:
        session.close()
    said = {
        Reach.ACCEPTS: f"takes Peppol BIS Billing 3.0 {document}",
        Reach.NOT_THIS_DOCUMENT: f"is on Peppol but does not take Peppol BIS Billing 3.0 {document}",
        Reach.NOT_ON_PEPPOL: "is not registered in the Peppol SMP",
    }[reach]
    print(f"{reach.name}: {participant} {said}")
    return ACCEPTS if reach is Reach.ACCEPTS else NOT_ACCEPTED


def run_participant(args: argparse.Namespace) -> int:
    """Set, clear or (with neither) show one participant id; the last line is JSON."""
    engine = args.resources.database
    org = args.organization
    customer = None
    if args.customer is not None:
        customer = _customer(engine, org.id, args.customer)
        if customer is None:
            print(
                terminal_text(
                    f"invoice-pipelines peppol participant: {org.slug} has no customer "
                    f"{args.customer!r}"
                ),
                file=sys.stderr,
            )
            return NOT_ACCEPTED
    said: dict[str, object] = {
        "organization": org.slug,
        "customer": customer[1] if customer else None,
    }
    if args.participant is None and not args.clear:
        now = customer[2] if customer else org.peppol_participant
        print(json.dumps(said | {"participant": now}))
        return ACCEPTS
    writable(org)
    try:
        done = set_participant(
            engine,
            args.resources.system_database,
            org.id,
            None if args.clear else args.participant,
            customer_id=customer[0] if customer else None,
        )
    except ParticipantRefused as exc:
        print(
            terminal_text(
                f"invoice-pipelines peppol participant: {args.participant!r} is refused: {exc}"
            )
        )
        return BAD_ID
    if done.warning:
        print(f"note: {done.warning}")
    if done.held:
        print(
            f"note: {done.held} message(s) received for {done.now} before are held; "
            f"`invoice-pipelines peppol route --org {org.slug}` registers them"
        )
    print(json.dumps(said | {"participant": done.now, "before": done.before}))
    return ACCEPTS


def _customer(engine, organization_id: int, text: str) -> tuple[int, str, str | None] | None:
    """The customer named by its number, else by its id: (id, number, participant id)."""
    c = customers.c
    return _named(engine, organization_id, text, c.customer_number, c.peppol_participant)


def run_send_one(args: argparse.Namespace) -> int:
    engine = args.resources.database
    org = args.organization
    found = _invoice(engine, org.id, args.invoice)
    if found is None:
        print(
            f"invoice-pipelines peppol send: {org.slug} has no invoice {args.invoice!r}",
            file=sys.stderr,
        )
        return NO_INVOICE
    invoice_id, number = found
    resources = args.resources
    try:
        # the e-mail run's path: an invoice that cannot go over Peppol is e-mailed, saying why
        summary = send_invoices(
            engine,
            resources.document_store,
            open_channel(EMAIL, resources),
            org,
            [invoice_id],
            resend=args.resend,
            connections=1,
            requested_by="cli",
            peppol=open_channel(PEPPOL, resources),
        )
    except AlreadySending as exc:
        print(f"invoice-pipelines peppol send: {exc}; try again when it has finished")
        return NOT_SENT
    said: dict[str, object] = {"invoice": number, "id": invoice_id}
    if invoice_id in summary.skipped:
        said |= {"outcome": "not sent", "reason": summary.skipped[invoice_id]}
        code = NOT_SENT
    else:
        row = _last_delivery(engine, org.id, invoice_id)
        outcome = row.status if row is not None else "not sent"
        said |= {
            "outcome": outcome,
            "channel": row.channel if row is not None else None,
            "message_id": row.transport_message_id if row is not None else None,
        }
        if invoice_id in summary.failed:
            said["reason"] = summary.failed[invoice_id]
        elif row is not None and row.channel != PEPPOL:
            said["reason"] = row.fallback_reason or "the customer is not on Peppol"
        code = SENT if outcome == "sent" else FAILED
    # reasons carry the access point's and the receiver's text: printed escaped, still JSON
    print(terminal_text(json.dumps(said, ensure_ascii=False)))
    return code


def _invoice(engine, organization_id: int, text: str) -> tuple[int, str] | None:
    """The invoice named by its number, else by its id; None when the organization has neither."""
    return _named(engine, organization_id, text, sales_invoices.c.invoice_number)


def _named(engine, organization_id: int, text: str, number, *more) -> tuple | None:
    """(id, number, *more) of the organization's row whose `number` column is `text`, else whose
    id it is; None when it has neither."""
    table = number.table
    text = text.strip()
    named = number == text
    if text.isdigit() and len(text) < 19:
        named = or_(named, table.c.id == int(text))
    with tenant_transaction(engine, organization_id) as conn:
        rows = conn.execute(
            select(table.c.id, number, *more).where(
                table.c.organization_id == organization_id, named
            )
        ).all()
    if not rows:
        return None
    # a number wins over an id that happens to be written the same
    return tuple(next((r for r in rows if r[1] == text), rows[0]))


def _last_delivery(engine, organization_id: int, invoice_id: int):
    d = deliveries.c
    with tenant_transaction(engine, organization_id) as conn:
        return conn.execute(
            select(d.channel, d.status, d.transport_message_id, d.fallback_reason)
            .where(d.organization_id == organization_id, d.sales_invoice_id == invoice_id)
            .order_by(d.id.desc())
            .limit(1)
        ).first()


RUNS = {"lookup": run_lookup, "participant": run_participant, "send": run_send_one}
