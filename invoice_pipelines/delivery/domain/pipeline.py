"""Sending invoices by e-mail, SMS, WhatsApp or Peppol, at most once per invoice and channel.

For each invoice, in this order:

1. compose the message (PDF and XRechnung from the document store, Message-ID chosen here);
   what cannot be composed (no address, no document) is a failed delivery with the reason;
2. commit the intent: a `deliveries` row `sending` with the recipient and the Message-ID
   (in the same transaction as the outcome of the previous message: one commit per message);
3. send it over an open connection (`connections` of them work through their shares of the
   invoices side by side, each strictly in this order); an answer that refuses the message for
   now (SMTP 4xx; for SMS/WhatsApp see `resources/messaging/text_messages.py`) is tried again after a pause
   (up to `retries` times), a refusal for good fails the delivery, and an answer after which the
   message may have arrived (a connection that breaks while it is under way, a gateway's 502/504)
   leaves its outcome unknown;
4. the outcome (`sent` / `failed` / `unknown`) is committed with the next message's intent.

A process killed between 2 and 4 leaves the row `sending`. The next run turns every such row
into `unknown` and lists it: the message may or may not have arrived, so it is not sent again on
its own; `resend` sends it again deliberately, as the next sequence. Invoices already sent are
never picked again; failed ones are tried again only when asked (`retry_failed`). History (an
invoice a migration brought in) is sent only when its id is given.

Peppol: a run over e-mail that is given the Peppol channel (`peppol`) sends the invoices of
customers on Peppol over it instead, through the same steps (the message is the stored Peppol
BIS document; the access point's AS4 message id is recorded); those the receiver's SMP does not
take go by e-mail, their delivery saying why (delivery/domain/peppol.py decides).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.engine import Connection, Engine, RootTransaction
from sqlalchemy.exc import DBAPIError

from invoice_pipelines import sales_ledger
from invoice_pipelines.core.channels import PEPPOL
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.locks import Lock, LockBusy, session_lock
from invoice_pipelines.db.tables import (
    deliveries,
    sales_invoice_documents,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import (
    scope_to_organization,
    tenant_transaction,
)
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.delivery.domain import peppol as peppol_route
from invoice_pipelines.delivery.domain.email import InvoiceMail, written
from invoice_pipelines.outbox import (
    Outbox,
    attempt,
    claim,
    finish,
    mark_unknown,
    outcome_of,
    refuse,
)
from invoice_pipelines.resources.files.files import Files
from invoice_pipelines.resources.messaging.channels import MailTransport, Transport
from invoice_pipelines.resources.messaging.mail_message import MessageError
from invoice_pipelines.resources.messaging.mail_types import SendError
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines.resources.peppol.transport import PeppolLookupError, Reach
from invoice_pipelines.resources.workers.thread_pools import stopping_pool

# a channel as this area uses it: the transport of resources/messaging/channels.py (`open_channel`)
Channel = Transport


def prepare_message(channel: Channel, mail: InvoiceMail) -> tuple[Any, str, str]:
    """The message of one invoice over `channel`, its id (recorded before it is sent) and the
    checked recipient; MessageError when it cannot be sent (no address, not a phone number)."""
    recipient = channel.recipient(_address(channel, mail))
    message, message_id = channel.message(
        recipient, written(mail, channel.form, files=channel.carries_files)
    )
    return message, message_id, recipient


# one row per attempt: a resend is the next sequence, a failed row tried again is claimed back
DELIVERIES = Outbox(deliveries, key=("sales_invoice_id", "channel", "sequence"), waiting=())
# why a row a dead run left `sending` is `unknown` (and what to do about it)
DIED_UNDER_WAY = (
    "the sending run ended while this message was under way: it may or may not have arrived "
    "(check the recipient's mailbox by its Message-ID; resend only on purpose)"
)


@dataclass
class DeliverySummary:
    organization: str
    requested: int = 0
    sent: int = 0
    failed: dict[int, str] = field(default_factory=dict)  # invoice id -> reason
    unknown: dict[int, str] = field(default_factory=dict)  # invoice id -> Message-ID
    skipped: dict[int, str] = field(default_factory=dict)
    retries: int = 0
    numbers: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0
    by_channel: dict[str, int] = field(default_factory=dict)  # channel -> messages sent
    # invoices of customers on Peppol that went over the run's channel instead, and why
    fallbacks: dict[int, str] = field(default_factory=dict)

    def as_line(self) -> dict:
        """What `invoice-pipelines send-invoices` prints (JSON)."""
        return {
            "sent": self.sent,
            "failed": {str(k): v for k, v in self.failed.items()},
            "unknown": {str(k): v for k, v in self.unknown.items()},
            "skipped": {str(k): v for k, v in self.skipped.items()},
            "retries": self.retries,
            "sent_by_channel": self.by_channel,
            "not_over_peppol": {str(k): v for k, v in self.fallbacks.items()},
        }

    @property
    def settled(self) -> bool:
        """Every invoice asked for was sent, skipped or left as it was: none failed, none unknown."""
        return not (self.failed or self.unknown)


def _candidates(
    conn,
    organization_id: int,
    invoice_ids,
    *,
    channel: str,
    retry_failed: bool,
    resend: bool,
    batch_job_id: int | None = None,
    handled_over: str | None = None,
):
    """(invoice id, next sequence or None when it must not be sent) for the invoices asked for:
    the ids given (history too), or every invoice of the organization but history.
    `handled_over`: a channel whose invoices an unnamed run leaves out in SQL, those whose last
    delivery over it is settled (all but a failed one that `retry_failed` tries again): the
    e-mail run's Peppol invoices, which would otherwise be read and dropped again in every run."""
    d = deliveries.c
    ours: set[int] = set()
    if resend and batch_job_id is not None and invoice_ids:
        # a batch job resends once: what it already delivered (a run of it that died, resumed)
        # is treated like any earlier delivery, never resent again on its own
        ours = set(
            conn.execute(
                select(d.sales_invoice_id).where(
                    d.organization_id == organization_id,
                    d.channel == channel,
                    d.batch_job_id == batch_job_id,
                    d.sales_invoice_id.in_(list(invoice_ids)),
                )
            ).scalars()
        )
    latest = (
        select(d.sales_invoice_id, func.max(d.sequence).label("sequence"))
        .where(d.organization_id == organization_id, d.channel == channel)
        .group_by(d.sales_invoice_id)
        .subquery()
    )
    s = sales_invoices.c
    query = (
        select(s.id, latest.c.sequence, d.status)
        .select_from(sales_invoices)
        .outerjoin(latest, latest.c.sales_invoice_id == s.id)
        .outerjoin(
            deliveries,
            and_(
                d.sales_invoice_id == s.id,
                d.channel == channel,
                d.sequence == latest.c.sequence,
            ),
        )
        .where(s.organization_id == organization_id)
        .order_by(s.id)
    )
    if invoice_ids:
        query = query.where(s.id.in_(list(invoice_ids)))
    else:  # nobody named them: history (a migration's invoices) is not sent
        query = query.where(sales_ledger.not_history())
        if handled_over is not None:
            query = query.where(~_handled_over(organization_id, s.id, handled_over, retry_failed))
    picked, skipped = [], {}
    for invoice_id, sequence, status in conn.execute(query):
        if sequence is None:
            picked.append((invoice_id, 0, False))
        elif resend and invoice_ids and invoice_id not in ours:
            picked.append((invoice_id, sequence + 1, False))
        elif status == "failed" and retry_failed:
            picked.append((invoice_id, sequence, True))  # the failed row is tried again
        elif invoice_ids:
            skipped[invoice_id] = f"already {status} (use resend to send it again)"
    return picked, skipped


def _handled_over(organization_id: int, invoice_id, channel: str, retry_failed: bool):
    """Whether the invoice's last delivery over `channel` is settled: sent, unknown or under way,
    or failed where failures are not tried again (`_candidates` would skip it). An EXISTS, so
    that the database answers it as a join however many invoices went over the channel."""
    f = deliveries.alias("handled")
    later = deliveries.alias("handled_later")
    last = ~exists().where(
        later.c.organization_id == organization_id,
        later.c.sales_invoice_id == f.c.sales_invoice_id,
        later.c.channel == channel,
        later.c.sequence > f.c.sequence,
    )
    settled = [f.c.status != "failed"] if retry_failed else []
    return exists().where(
        f.c.organization_id == organization_id,
        f.c.sales_invoice_id == invoice_id,
        f.c.channel == channel,
        last,
        *settled,
    )


# what a message reads of each invoice (sales_ledger.py); a credit note names the invoice it
# corrects, as its document does (documents/domain/sources.py)
MAIL_FIELDS = (
    "id",
    "invoice_number",
    "type_code",
    "issue_date",
    "due_date",
    "gross_total",
    "amount_due",
    "currency",
    "customer_name",
    "customer_email",
    "customer_phone",
    "customer_language",
    "corrects_number",
    "corrects_date",
)


def _mails(
    conn, store: Files, organization: Organization, ids: Sequence[int], *, channel: Channel
) -> dict[int, InvoiceMail | str]:
    """The InvoiceMail of each invoice, or why there is none (no document yet). The files are
    read only for channels that carry them (e-mail)."""
    doc = sales_invoice_documents.c
    rows = sales_ledger.read_invoices(conn, organization.id, ids, *MAIL_FIELDS)
    documents: dict[int, dict[str, str]] = {}
    plain: set[int] = set()  # invoices whose PDF is a plain PDF invoice (no e-invoice inside)
    for invoice_id, kind, key, document_format in conn.execute(
        select(doc.sales_invoice_id, doc.kind, doc.storage_key, doc.format).where(
            doc.sales_invoice_id.in_(list(ids)), doc.status == "generated"
        )
    ):
        documents.setdefault(invoice_id, {})[kind] = key
        if kind == "facturx" and document_format == "pdf":
            plain.add(invoice_id)
    seller = organization.name
    iban = organization.seller.get("iban")
    mails: dict[int, InvoiceMail | str] = {}
    for r in rows:
        keys = documents.get(r.id, {})
        if "facturx" not in keys:
            mails[r.id] = "the invoice has no generated document yet (sales_invoice_documents)"
            continue
        xrechnung_key = keys.get("xrechnung")
        mails[r.id] = InvoiceMail(
            number=r.invoice_number,
            type_code=r.type_code,
            issue_date=r.issue_date,
            due_date=r.due_date,
            gross_total=r.gross_total,
            amount_due=r.amount_due,
            currency=r.currency,
            seller=seller,
            buyer=r.customer_name,
            recipient=r.customer_email,
            phone=r.customer_phone,
            language=r.customer_language,
            iban=iban,
            pdf=store.read(keys["facturx"]) if channel.carries_files else b"",
            pdf_name=keys["facturx"].rsplit("/", 1)[-1],
            xrechnung=store.read(xrechnung_key)
            if xrechnung_key and channel.carries_files
            else None,
            xrechnung_name=xrechnung_key.rsplit("/", 1)[-1] if xrechnung_key else None,
            einvoice=r.id not in plain,
            corrects_number=r.corrects_number,
            corrects_date=r.corrects_date,
        )
    return mails


def send_invoice_emails(
    engine: Engine,
    store: Files,
    mailer: Smtp,
    org: Organization,
    invoice_ids: Sequence[int] | None = None,
    **options,
) -> DeliverySummary:
    """Invoices by e-mail (see `send_invoices`)."""
    return send_invoices(engine, store, MailTransport(mailer), org, invoice_ids, **options)


def send_invoices(
    engine: Engine,
    store: Files,
    channel: Channel,
    org: Organization,
    invoice_ids: Sequence[int] | None = None,
    *,
    retry_failed: bool = False,
    resend: bool = False,
    retries: int = 3,
    backoff_seconds: float = 0.5,
    max_per_second: float = 50.0,
    connections: int = 2,
    requested_by: str = "dagster",
    run_id: str | None = None,
    stale_after: timedelta = timedelta(seconds=0),
    batch_job_id: int | None = None,
    peppol: Channel | None = None,
) -> DeliverySummary:
    """Send the invoices (given ids, or every one never sent over the channel but history) at
    most once.

    `batch_job_id`: the communications job this is part of, kept with each delivery (its audit
    trail; with `resend`, an invoice the job already delivered is not resent by a resumed run).
    `peppol`: the Peppol channel (resources/messaging/channels.py `PeppolChannel`); given to a run over a
    channel that carries documents, it sends the invoices of customers on Peppol
    (delivery/domain/peppol.py).
    """
    started = time.perf_counter()
    with _sending_lock(engine, org):
        return _send(
            engine,
            store,
            channel,
            org,
            invoice_ids,
            retry_failed=retry_failed,
            resend=resend,
            retries=retries,
            backoff_seconds=backoff_seconds,
            max_per_second=max_per_second,
            connections=connections,
            requested_by=requested_by,
            run_id=run_id,
            stale_after=stale_after,
            started=started,
            batch_job_id=batch_job_id,
            peppol=peppol if channel.carries_files else None,
        )


class AlreadySending(LockBusy):
    """Another run sends this organization's invoices right now."""

    leaves_job_running = True  # a batch job meeting it stays with the runner that sends


def already_sending_message(slug: str) -> str:
    """What a run refused because another one sends the organization's invoices tells the user."""
    return (
        f"Another run is sending the invoices of {slug} right now; start this one again when "
        "it has finished."
    )


@contextmanager
def _sending_lock(engine: Engine, org: Organization) -> Iterator[None]:
    """One sender per organization (PostgreSQL: a session lock held for the whole run; its
    per-message transactions come and go beside it. SQLite: one writer at a time, and the
    per-organization run limit). Without it, a second run would take the first one's in-flight
    messages for dead ones."""
    message = f"another run is sending the invoices of {org.slug} right now"
    with session_lock(engine, Lock.SENDING, org.id, busy=AlreadySending, message=message):
        yield


def _send(
    engine,
    store,
    channel,
    org,
    invoice_ids,
    *,
    retry_failed,
    resend,
    retries,
    backoff_seconds,
    max_per_second,
    connections,
    requested_by,
    run_id,
    stale_after,
    started,
    batch_job_id=None,
    peppol=None,
) -> DeliverySummary:
    summary = DeliverySummary(org.slug)
    # rows a dead run left `sending` (this run has not started any yet), over every channel
    dead = mark_unknown(
        engine,
        DELIVERIES,
        org.id,
        stale_after,
        reason=DIED_UNDER_WAY,
        returning=("sales_invoice_id", "message_id"),
    )
    summary.unknown.update({invoice_id: message_id for _, invoice_id, message_id in dead})
    route: _Route | None = None
    with tenant_transaction(engine, org.id) as conn:
        picked, summary.skipped = _candidates(
            conn,
            org.id,
            invoice_ids,
            channel=channel.name,
            retry_failed=retry_failed,
            resend=resend,
            batch_job_id=batch_job_id,
            handled_over=PEPPOL if peppol is not None else None,
        )
        summary.requested = len(picked) + len(summary.skipped)
        if peppol is not None and picked:
            route = _plan_peppol(
                conn,
                store,
                org,
                picked,
                summary,
                named=bool(invoice_ids),
                retry_failed=retry_failed,
                resend=resend,
                batch_job_id=batch_job_id,
            )
        else:
            ids = [i for i, _, _ in picked]
            mails = _mails(conn, store, org, ids, channel=channel) if picked else {}
    if route is not None:
        if route.picked:  # the SMP lookups, outside any transaction
            _ask_smp(peppol, route, summary)
        summary.fallbacks.update(route.fallbacks)
        picked = [p for p in picked if p[0] not in route.taken]
        with tenant_transaction(engine, org.id) as conn:
            ids = [i for i, _, _ in picked]
            mails = _mails(conn, store, org, ids, channel=channel) if picked else {}
    pace = _Pace(max_per_second)
    stamp = {"requested_by": requested_by, "run_id": run_id, "batch_job_id": batch_job_id}
    options = {"pace": pace, "retries": retries, "backoff_seconds": backoff_seconds, "stamp": stamp}
    stopping = threading.Event()  # one interruption stops both channels' senders
    if route is not None and route.picked:
        over_peppol = _Sender(
            engine,
            peppol,
            org,
            route.letters,
            summary,
            compose=peppol_route.compose,
            stopping=stopping,
            **options,
        )
        _deliver_shards(over_peppol, route.picked, connections)
    sender = _Sender(
        engine,
        channel,
        org,
        mails,
        summary,
        fallbacks=route.fallbacks if route is not None else None,
        stopping=stopping,
        **options,
    )
    _deliver_shards(sender, picked, connections)
    summary.seconds = time.perf_counter() - started
    return summary


def _deliver_shards(sender: _Sender, picked: list, connections: int) -> None:
    """The picked invoices over the sender's channel, `connections` shares side by side."""
    shards = [picked[i::connections] for i in range(max(1, connections))]
    shards = [shard for shard in shards if shard]
    if len(shards) <= 1:
        for shard in shards:
            sender.deliver(shard)
    else:
        # interrupted (SIGTERM), the shards not yet started are given up
        with stopping_pool(len(shards), sender.channel.name, stop=sender.stopping) as pool:
            for future in [pool.submit(sender.deliver, shard) for shard in shards]:
                future.result()


@dataclass
class _Route:
    """How a run's invoices of customers on Peppol go: over Peppol (`picked`, with their
    `letters`), over the run's channel with the reason (`fallbacks`), or not over the run's
    channel at all (`taken`: over Peppol now, or handled over Peppol before, or waiting for an
    access point that could not be asked)."""

    picked: list[tuple[int, int, bool]] = field(default_factory=list)
    letters: dict[int, peppol_route.PeppolLetter | str] = field(default_factory=dict)
    fallbacks: dict[int, str] = field(default_factory=dict)
    taken: set[int] = field(default_factory=set)


def _plan_peppol(
    conn, store, org, picked, summary, *, named, retry_failed, resend, batch_job_id
) -> _Route:
    """Which of the picked invoices are Peppol's (their customer on Peppol), from the database
    and the document store; the SMP is asked afterwards (`_ask_smp`)."""
    route = _Route()
    on_peppol = peppol_route.customers_on_peppol(conn, org.id, [i for i, _, _ in picked])
    if not on_peppol:
        return route
    sender_id = org.peppol_participant
    if not sender_id:
        route.fallbacks = dict.fromkeys(on_peppol, peppol_route.NO_SENDER_ID)
        return route
    # the invoice's own state over Peppol: sent, unknown or failed there, it is Peppol's (a
    # resend or a retry of a failed one goes over Peppol again), never e-mailed on its own
    over_peppol, done = _candidates(
        conn,
        org.id,
        list(on_peppol),
        channel=PEPPOL,
        retry_failed=retry_failed,
        resend=resend and named,
        batch_job_id=batch_job_id,
    )
    for invoice_id, reason in done.items():
        route.taken.add(invoice_id)
        if named:
            summary.skipped[invoice_id] = f"over Peppol: {reason}"
    documents = peppol_route.peppol_documents(conn, [i for i, _, _ in over_peppol])
    for invoice_id, sequence, again in over_peppol:
        row = on_peppol[invoice_id]
        key, errors = documents.get(invoice_id, (None, None))
        if key is None:
            route.fallbacks[invoice_id] = (
                peppol_route.not_proved(errors) if errors else peppol_route.NO_DOCUMENT
            )
            continue
        route.picked.append((invoice_id, sequence, again))
        route.taken.add(invoice_id)
        route.letters[invoice_id] = peppol_route.PeppolLetter(
            number=row.invoice_number,
            type_code=row.type_code or "380",
            sender=sender_id,
            receiver=row.customer_peppol_participant,
            country=org.country or "DE",
            document=store.read(key),
        )
    return route


def _ask_smp(peppol, route: _Route, summary: DeliverySummary) -> None:
    """The SMP lookup of each receiver and document type: what it takes stays Peppol's, what it
    does not goes over the run's channel with the reason; where the access point could not be
    asked, the invoice waits for the next run."""
    letters = {i: route.letters[i] for i, _, _ in route.picked}
    answers = peppol_route.ask_smp(
        peppol, dict.fromkeys(peppol_route.lookup_key(letter) for letter in letters.values())
    )
    keep = []
    for invoice_id, sequence, again in route.picked:
        letter = letters[invoice_id]
        answer = answers[peppol_route.lookup_key(letter)]
        if answer is Reach.ACCEPTS:
            keep.append((invoice_id, sequence, again))
        elif isinstance(answer, PeppolLookupError):
            summary.skipped[invoice_id] = f"not sent in this run: {answer}"
            summary.numbers[invoice_id] = letter.number
            del route.letters[invoice_id]
        else:
            route.fallbacks[invoice_id] = peppol_route.refused_by_smp(
                answer, letter.receiver, letter.type_code
            )
            route.taken.discard(invoice_id)
            del route.letters[invoice_id]
    route.picked = keep


class _Sender:
    """The sending of one run: each connection works through its share of the picked invoices
    (`deliver`), committing each message's intent with the previous one's outcome."""

    def __init__(
        self,
        engine,
        channel,
        org,
        mails,
        summary,
        *,
        pace,
        retries,
        backoff_seconds,
        stamp,
        compose=None,
        fallbacks=None,
        stopping=None,
    ) -> None:
        self.engine, self.channel, self.org = engine, channel, org
        self.mails, self.summary, self.pace = mails, summary, pace
        self.retries, self.backoff_seconds = retries, backoff_seconds
        self.stamp = stamp  # requested_by, run_id, batch_job_id: kept with every delivery
        # (channel, mail) -> (message, message id, recipient): prepare_message, or Peppol's
        self.compose = compose or prepare_message
        # invoice id -> why it goes over this channel and not over Peppol (kept with it)
        self.fallbacks = fallbacks or {}
        self.lock = threading.Lock()
        # set when the run is interrupted: each connection ends after the message in hand
        self.stopping = stopping or threading.Event()

    def commit(
        self,
        ledger: _Ledger,
        outcome: dict | None,
        intent: dict | None,
        refused: str | None = None,
    ):
        """The last message's outcome and the next one's intent, in one transaction on the
        connection's own database connection; the intent's delivery id (None: another run took
        this invoice meanwhile)."""
        with ledger.transaction() as conn:
            if outcome is not None:
                outcome = dict(outcome)
                finish(
                    conn,
                    DELIVERIES,
                    deliveries.c.id == outcome.pop("id"),
                    outcome.pop("status"),
                    **outcome,
                )
            if intent is not None:
                return _record_intent(conn, intent, refused)
        return None

    def _intent(self, invoice_id, sequence, again, recipient, message_id) -> dict:
        stamp = self.stamp
        return _intent(
            self.org,
            self.channel.name,
            invoice_id,
            sequence,
            again,
            recipient,
            message_id,
            stamp["requested_by"],
            stamp["run_id"],
            stamp["batch_job_id"],
            fallback_reason=self.fallbacks.get(invoice_id),
        )

    def deliver(self, shard: list[tuple[int, int, bool]]) -> None:
        """One connection working through its share, strictly one message at a time."""
        pending_outcome: dict | None = None
        # one database connection for the share's transactions, as one SMTP connection carries
        # its messages: no pool checkout and ping per message (issue 59)
        with _Ledger(self.engine, self.org.id) as ledger:
            try:
                with self.channel.session() as client:
                    for invoice_id, sequence, again in shard:
                        if self.stopping.is_set():
                            raise SendError("the run was stopped", temporary=True)
                        # a connection the server closed after the last message is opened
                        # again before the next intent; one that cannot be ends the share
                        self.channel.ready(client)
                        pending_outcome, error = self._one(
                            ledger, client, invoice_id, sequence, again, pending_outcome
                        )
                        if error is not None and (error.unknown or error.closed):
                            # it may have arrived, or the server closed the connection on it
                            # every time it was tried: the rest waits for the next run
                            raise error
            except SendError as exc:
                # no connection, or it broke: what this share did not reach waits for the next run
                with self.lock:
                    for invoice_id, _, _ in shard:
                        if invoice_id not in self.summary.numbers:
                            self.summary.skipped[invoice_id] = f"not sent in this run: {exc}"
            finally:
                if pending_outcome is not None:
                    self.commit(ledger, pending_outcome, None)

    def _one(
        self, ledger, client, invoice_id, sequence, again, pending_outcome
    ) -> tuple[dict | None, SendError | None]:
        """One invoice: its intent committed with the last message's outcome, then sent; the
        outcome still to commit (None when nothing was sent) and the error it ended with."""
        mail = self.mails.get(invoice_id, "no such sales invoice in this organization")
        with self.lock:
            self.summary.numbers[invoice_id] = (
                str(invoice_id) if isinstance(mail, str) else mail.number
            )
        try:
            if isinstance(mail, str):
                raise MessageError(mail)
            message, message_id, recipient = self.compose(self.channel, mail)
        except MessageError as exc:
            intent = self._intent(invoice_id, sequence, again, _address(self.channel, mail), None)
            self.commit(ledger, pending_outcome, intent, refused=str(exc))
            with self.lock:
                self.summary.failed[invoice_id] = str(exc)
            return None, None
        intent = self._intent(invoice_id, sequence, again, recipient, message_id)
        # the intent is durable before the message leaves (with the last outcome)
        delivery_id = self.commit(ledger, pending_outcome, intent)
        if delivery_id is None:
            with self.lock:
                self.summary.skipped[invoice_id] = "another run took it meanwhile"
            return None, None
        self.pace.wait()
        return _send_one(
            self.channel,
            client,
            message,
            message_id,
            delivery_id,
            invoice_id,
            self.summary,
            self.lock,
            retries=self.retries,
            backoff_seconds=self.backoff_seconds,
        )


class _Ledger:
    """The deliveries' transactions of one sending connection, on one database connection kept
    for its whole share instead of one from the pool (and its ping) per message. Each
    transaction is scoped to the organization on its own (the scope is transaction-local) and
    commits on its own: an intent is durable before its message leaves, as before. A kept
    connection found broken by a transaction's first statement (the database restarted while a
    message was under way) is replaced once, as the pool's ping on checkout replaced it; a
    failure after that ends the share as it always did."""

    def __init__(self, engine: Engine, organization_id: int) -> None:
        self.engine, self.organization_id = engine, organization_id
        self.conn: Connection | None = None

    def __enter__(self) -> _Ledger:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def close(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            conn.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self._begin() as _transaction:
            assert self.conn is not None
            yield self.conn

    def _begin(self) -> RootTransaction:
        if self.conn is not None:
            try:
                return self._scoped(self.conn)
            except DBAPIError as exc:
                self.close()
                if not exc.connection_invalidated:
                    raise
        self.conn = self.engine.connect()
        if self.conn.dialect.name == "sqlite":  # writers queue at BEGIN (tenant_transaction)
            self.conn.execution_options(sqlite_begin="IMMEDIATE")
        return self._scoped(self.conn)

    def _scoped(self, conn: Connection) -> RootTransaction:
        transaction = conn.begin()
        try:
            scope_to_organization(conn, self.organization_id)
        except BaseException:
            transaction.rollback()
            raise
        return transaction


class _Pace:
    """At most `per_second` messages per second, shared by the connections of a run."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.next_slot = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            slot = max(now, self.next_slot)
            self.next_slot = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


def _send_one(
    channel,
    client,
    message,
    message_id,
    delivery_id,
    invoice_id,
    summary,
    lock,
    *,
    retries,
    backoff_seconds,
) -> tuple[dict, SendError | None]:
    """Send with retries on 4xx; the outcome to record (sent / failed / unknown), with the id the
    transport gave the message where it gave one, and the error it ended with (None: sent)."""
    outcome: dict = {"id": delivery_id}
    for tries in range(retries + 1):
        try:
            transport_id = channel.send(client, message)
        except SendError as exc:
            # only a refusal for now (or a connection closed before the message left: the
            # next try connects again) is tried again; one that may have arrived never is
            if exc.temporary and not exc.unknown and tries < retries:
                with lock:
                    summary.retries += 1
                time.sleep(backoff_seconds * 2**tries)
                continue
            status = outcome_of(DELIVERIES, exc)
            outcome.update(status=status, error=str(exc), attempts=tries + 1)
            # a report that refused the message (or left it unknown) may still name it
            if getattr(exc, "transport_message_id", None):
                outcome["transport_message_id"] = exc.transport_message_id
            with lock:
                if exc.unknown:
                    summary.unknown[invoice_id] = message_id
                else:
                    summary.failed[invoice_id] = str(exc)
            return outcome, exc
        outcome.update(status="sent", sent_at=utcnow(), attempts=tries + 1)
        if isinstance(transport_id, str) and transport_id:
            outcome["transport_message_id"] = transport_id[:255]
        with lock:
            summary.sent += 1
            summary.by_channel[channel.name] = summary.by_channel.get(channel.name, 0) + 1
        return outcome, None
    raise AssertionError("unreachable: the last try returns")


def _record_intent(conn, intent: dict, refused: str | None) -> int | None:
    """A new delivery row, or the failed one tried again moved back to sending (`refused`: failed
    with that reason instead, never handed over). None when another run took it meanwhile."""
    intent = dict(intent)
    if not intent.pop("again"):
        return attempt(conn, DELIVERIES, intent, refused=refused)
    d = deliveries.c
    this = and_(
        d.sales_invoice_id == intent["sales_invoice_id"],
        d.channel == intent["channel"],
        d.sequence == intent["sequence"],
    )
    again = {
        "message_id": intent["message_id"],
        "recipient": intent["recipient"],
        "fallback_reason": intent["fallback_reason"],
        "attempts": d.attempts + 1,
        "dagster_run_id": intent["dagster_run_id"],
        # who tried it this time, from which batch job
        "created_by": intent["created_by"],
        "batch_job_id": intent["batch_job_id"],
    }
    if refused is not None:
        refuse(conn, DELIVERIES, this, refused, retry_failed=True, **again)
        return None
    ids = claim(conn, DELIVERIES, this, retry_failed=True, error=None, **again)
    return ids[0] if ids else None


# where each kind of contact is on what the sender composes from (InvoiceMail, PeppolLetter)
_CONTACTS = {"email": "recipient", "phone": "phone", "peppol": "receiver"}


def _address(channel: Channel, mail) -> str | None:
    """The customer's contact the channel goes to, as the invoice's row has it."""
    if isinstance(mail, str):
        return None
    return getattr(mail, _CONTACTS[channel.address], None)


def _intent(
    org,
    channel,
    invoice_id,
    sequence,
    again,
    recipient,
    message_id,
    requested_by,
    run_id,
    batch_job_id=None,
    *,
    fallback_reason=None,
) -> dict:
    return {
        "organization_id": org.id,
        "sales_invoice_id": invoice_id,
        "channel": channel,
        "sequence": sequence,
        "recipient": (recipient or "")[:255],
        "message_id": message_id,
        "attempts": 1,
        "created_by": requested_by,
        "dagster_run_id": run_id,
        "batch_job_id": batch_job_id,
        "fallback_reason": fallback_reason,
        "again": again,
    }
