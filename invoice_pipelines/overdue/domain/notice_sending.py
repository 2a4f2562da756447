"""Sending dunning notices, at most once each, in the customer's language: by e-mail, SMS or
WhatsApp.

Only notices created `pending` are sent (the organization's `settings.dunning.deliver` and a level
whose channel is `email`, `sms` or `whatsapp`); every other notice stays an in-app record. For each
notice, in this order, one commit per step:

1. compose the message over the notice's channel, opened like an invoice's through
   `resources.messaging.channels.open_channel` (which checks the recipient and builds the message): what the
   notice says is the template of the channel's form, `templates/dunning_<form>_<language>.j2`.
   An e-mail (subject and text, the notice's letter attached (`overdue/domain/letter.py` wrote it; a
   notice whose letter another run is writing waits, one whose letter failed fails with that
   reason) and the invoice PDF when the documents area has written it, a Message-ID chosen there)
   or a short text (level, invoice number and total, due date, what is open, fees, interest and
   the total claimed) to the customer's phone number, which must be in E.164 form (+49...); what
   cannot be composed (no valid address or number) fails the notice's delivery with the reason;
2. claim it: `pending` -> `sending` with the recipient and a message id, committed before the
   message leaves (a conditional update: of two senders only one gets it);
3. hand it over (SMTP server or the text message provider's API): accepted -> `sent`; refused for
   good (5xx mail, 4xx API answer) -> `failed`; refused for now (4xx mail, 429 or 503 with
   Retry-After from the API, or no connection) -> `pending` again, for the next run; an answer
   after which the message may have arrived (the connection broke or timed out while it was under
   way, the API's 500/502/504; `resources/messaging/text_message_provider.py` sorts the API's answers) -> `unknown`, and
   the rest of what goes through that resource (the mail server; the text message provider, for
   SMS and WhatsApp alike) waits for the next run.

A notice left `sending` by a run that died becomes `unknown` on the next run: it may or may not
have arrived, so it is never sent again on its own. Before anything is sent, a pending notice that
must not go out any more (its invoice paid, cancelled, deleted or disputed meanwhile, the customer
blocked, or a later level's notice there) is withdrawn: `failed` with the reason. Every move of
a notice's delivery is a transition of the shared outbox (`invoice_pipelines.outbox`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy import and_, case, exists, or_, select
from sqlalchemy.engine import Engine

from invoice_pipelines import sales_ledger
from invoice_pipelines.core.channels import DELIVERY_CHANNELS
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tables import (
    customers,
    dunning_notices,
    sales_invoice_documents,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.einvoice.layout import format_date, format_money
from invoice_pipelines.outbox import Outbox, claim, finish, mark_unknown, outcome_of, refuse
from invoice_pipelines.overdue.domain.letter_text import letter_text
from invoice_pipelines.overdue.domain.pipeline import UNPAID
from invoice_pipelines.overdue.domain.wording import (
    GENERIC_TITLE,
    despite,
    named_fees,
    sent_before,
    title,
)
from invoice_pipelines.overdue.domain.wording import TITLES as TITLES  # where the tests read them
from invoice_pipelines.resources.files.files import Files

# the channels every area sends through: invoices and notices go to the same addresses and
# numbers, in the same kind of message
from invoice_pipelines.resources.messaging.channels import (
    ChannelUnavailable,
    Transport,
    Written,
    open_channel,
    transport_of,
)
from invoice_pipelines.resources.messaging.mail_message import LANGUAGES, MessageError
from invoice_pipelines.resources.messaging.mail_types import SendError
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines.resources.messaging.text_messages import TextMessages

# a notice still `sending` after this long belongs to a run that died
STALE_AFTER = timedelta(minutes=15)
# the notice is its own outbox row: pending -> sending -> sent | failed | unknown (or pending again)
NOTICES = Outbox(
    dunning_notices,
    status="delivery_status",
    error="delivery_error",
    started_at="delivery_started_at",
)


@dataclass
class NoticeDeliverySummary:
    sent: int = 0
    failed: dict[int, str] = field(default_factory=dict)  # notice id -> reason
    postponed: dict[int, str] = field(default_factory=dict)  # back to pending, with the reason
    unknown: list[int] = field(default_factory=list)
    withdrawn: dict[int, str] = field(default_factory=dict)  # not sent any more, with the reason


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("invoice_pipelines.overdue", "templates"),
        undefined=StrictUndefined,
        autoescape=False,  # plain text mail
    )


def _language(notice: dict) -> str:
    return notice["language"] if notice["language"] in LANGUAGES else "de"


def _words(notice: dict, seller: str, language: str, org: Organization) -> dict:
    """What every message of a notice states, formatted for its language: the notice's own
    figures (what is open of the invoice, the fees and interest claimed so far, their total
    `total_claimed`) and the invoice's own total as its document shows it (`invoice_total`); the
    fees by the names its letter gives them and the earlier notices that were sent (`wording`)."""
    currency = notice["currency"]

    def money(amount) -> str:
        return f"{format_money(amount, language)} {currency}"

    return {
        "title": title(notice["level_name"], language),
        "fees": [(name, money(amount)) for name, amount in named_fees(notice, org, language)],
        "despite": despite(notice.get("sent_before") or [], language),
        "level": notice["level"],
        "days_overdue": notice["days_overdue"],
        "number": notice["invoice_number"],
        "seller": seller,
        "buyer": letter_text(notice["customer_name"]),
        "issue_date": format_date(notice["issue_date"], language),
        "due_date": format_date(notice["due_date"], language),
        "invoice_total": money(notice["invoice_total"]),
        # the invoice's total is open in full: no separate "still open" figure then
        "partly_open": notice["amount_open"] != notice["invoice_total"],
        "amount_open": money(notice["amount_open"]),
        "fees_total": money(notice["fees_total"]),
        "interest_total": money(notice["interest_total"]),
        "has_fees": bool(notice["fees_total"]),
        "has_interest": bool(notice["interest_total"]),
        "total_claimed": money(notice["total_claimed"]),
        "charges": bool(notice["fees_total"] or notice["interest_total"]),
    }


def render_notice(
    notice: dict,
    form: str,
    *,
    seller: str,
    org: Organization,
    attached: bool = False,
    letter: bool = False,
) -> str:
    """What a notice says over a channel of `form` (`templates/dunning_<form>_<language>.j2`:
    `email`, the subject line, a blank line and the body; `text`, one line); `attached`: the
    invoice PDF is attached, `letter`: the notice's letter is."""
    language = _language(notice)
    template = _environment().get_template(f"dunning_{form}_{language}.j2")
    words = _words(notice, seller, language, org)
    return template.render(**words, attached=attached, letter=letter)


def letter_filename(notice: dict) -> str:
    """The attached letter's file name: `Mahnung_RE-2026-000042_2.pdf`."""
    number = re.sub(r"[^A-Za-z0-9._-]+", "-", notice["invoice_number"]).strip("-")
    return f"{GENERIC_TITLE[_language(notice)]}_{number}_{notice['level']}.pdf"


def written(
    notice: dict,
    form: str,
    *,
    seller: str,
    org: Organization,
    pdf: bytes | None = None,
    letter: bytes | None = None,
) -> Written:
    """What one notice says over a channel of `form` (`notice`: the notice row with the invoice's
    and customer's fields the selection adds): the notice's letter (`letter`) and the invoice
    (`pdf`) attached where there are."""
    text = render_notice(
        notice, form, seller=seller, org=org, attached=pdf is not None, letter=letter is not None
    )
    attachments = []
    if letter is not None:
        attachments.append((letter, "application/pdf", letter_filename(notice)))
    if pdf is not None:
        attachments.append((pdf, "application/pdf", f"{notice['invoice_number']}.pdf"))
    return Written(
        text,
        seller=seller,
        number=notice["invoice_number"],
        suffix=str(notice["level"]),
        domain="dunning.local",
        tag="dn",
        attachments=tuple(attachments),
    )


# what a notice's message reads of the invoice and its customer (sales_ledger.py), besides the
# notice; the contact under the name its channel reads it by (resources/messaging/channels.py `address`)
NOTICE_FIELDS = (
    "invoice_number",
    "issue_date",
    "due_date",
    "customer_name",
    "customer_kind",
    "customer_vat_id",
)
NOTICE_FIELDS_RENAMED = {
    "invoice_total": "gross_total",
    "email": "customer_email",
    "phone": "customer_phone",
}


def _pending(conn, organization_id: int) -> list[dict]:
    n, doc = dunning_notices, sales_invoice_documents
    query = (
        select(
            n,
            *sales_ledger.fields(*NOTICE_FIELDS, **NOTICE_FIELDS_RENAMED),
            doc.c.storage_key,
        )
        .select_from(
            n.join(
                sales_ledger.joined(*NOTICE_FIELDS, *NOTICE_FIELDS_RENAMED.values()),
                sales_invoices.c.id == n.c.sales_invoice_id,
            ).outerjoin(
                doc,
                and_(
                    doc.c.sales_invoice_id == n.c.sales_invoice_id,
                    doc.c.kind == "facturx",
                    doc.c.status == "generated",
                ),
            )
        )
        .where(n.c.organization_id == organization_id, n.c.delivery_status == "pending")
        .order_by(n.c.id)
    )
    rows = [dict(row) for row in conn.execute(query).mappings()]
    earlier = sent_before(conn, organization_id, rows)
    for row in rows:
        row["sent_before"] = earlier[row["id"]]
    return rows


def _step(engine: Engine, organization_id: int, transition, notice: dict, *args, **values):
    """One outbox transition of one notice, committed on its own."""
    with tenant_transaction(engine, organization_id, write=True) as conn:
        return transition(conn, NOTICES, dunning_notices.c.id == notice["id"], *args, **values)


def withdraw_stale(engine: Engine, organization_id: int) -> dict[int, str]:
    """Pending notices that must not go out any more: the invoice was paid, cancelled or deleted
    meanwhile, is disputed or marked history, the customer got a dunning block, or a later
    level's notice replaced it (a notice postponed on one run, the next level due on a later
    one). They become `failed` with the reason, in one statement; returns notice id -> reason."""
    n, si, c = dunning_notices, sales_invoices, customers
    later = dunning_notices.alias("later")

    def invoice_where(*conditions):
        return exists().where(si.c.id == n.c.sales_invoice_id, or_(*conditions))

    reason = case(
        (
            invoice_where(
                si.c.status.not_in(UNPAID), si.c.amount_due <= 0, si.c.deleted_at.is_not(None)
            ),
            "withdrawn before sending: the invoice is no longer owed",
        ),
        (
            invoice_where(si.c.disputed.is_(True)),
            "withdrawn before sending: the invoice is disputed",
        ),
        (
            invoice_where(si.c.history.is_(True)),
            "withdrawn before sending: the invoice is history (a migration brought it in)",
        ),
        (
            exists().where(c.c.id == n.c.customer_id, c.c.dunning_blocked.is_(True)),
            "withdrawn before sending: the customer has a dunning block",
        ),
        (
            exists().where(
                later.c.sales_invoice_id == n.c.sales_invoice_id, later.c.level > n.c.level
            ),
            "withdrawn before sending: a later notice replaced it",
        ),
        else_=None,
    )
    with tenant_transaction(engine, organization_id, write=True) as conn:
        withdrawn = refuse(
            conn, NOTICES, and_(n.c.organization_id == organization_id, reason.is_not(None)), reason
        )
    return dict(withdrawn)


def send_notices(
    engine: Engine,
    mailer: Smtp,
    document_store: Files,
    org: Organization,
    *,
    text_messages: TextMessages | None = None,
    stale_after: timedelta = STALE_AFTER,
) -> NoticeDeliverySummary:
    """`send_notices_over` the mailer and the text message provider (without one, SMS and
    WhatsApp notices stay pending)."""
    resources = SimpleNamespace(mailer=mailer, text_messages=text_messages)
    return send_notices_over(engine, resources, document_store, org, stale_after=stale_after)


def send_notices_over(
    engine: Engine,
    resources: Any,
    document_store: Files,
    org: Organization,
    *,
    stale_after: timedelta = STALE_AFTER,
) -> NoticeDeliverySummary:
    """Send the organization's pending notices (see the module docstring), each over its channel
    opened on `resources` (by attribute: a run's `context.resources`, a command's
    `resources.for_commands.EnvResources`); the notices of a channel whose resource is missing stay
    pending."""
    dead = mark_unknown(
        engine,
        NOTICES,
        org.id,
        stale_after,
        reason="the sending run ended before the outcome was recorded",
    )
    summary = NoticeDeliverySummary(
        unknown=[notice_id for (notice_id,) in dead],
        withdrawn=withdraw_stale(engine, org.id),
    )
    with tenant_transaction(engine, org.id) as conn:
        pending = _pending(conn, org.id)
    for notices in _by_resource(pending):
        _send_group(engine, org, resources, document_store, notices, summary)
    return summary


def _by_resource(pending: list[dict]) -> list[list[dict]]:
    """The pending notices by the resource their channel goes out through (in the channel list's
    order, each group in notice order): one session each, shared by its channels."""
    groups: dict[str, list[dict]] = {}
    for name in DELIVERY_CHANNELS:
        groups.setdefault(transport_of(name).resource, [])
    for notice in pending:
        if notice["channel"] in DELIVERY_CHANNELS:
            groups[transport_of(notice["channel"]).resource].append(notice)
    return [notices for notices in groups.values() if notices]


def _send_group(engine, org, resources, document_store, notices, summary) -> None:
    """The notices of one resource, over one session of it."""
    try:
        names = dict.fromkeys(notice["channel"] for notice in notices)
        channels = {name: open_channel(name, resources) for name in names}
    except ChannelUnavailable as exc:
        _postpone_rest(notices, summary, str(exc))
        return
    try:
        with next(iter(channels.values())).session() as session:
            _send_each(engine, org, channels, session, document_store, notices, summary)
    except SendError as exc:
        # no connection: every notice not yet handled stays pending for the next run
        _postpone_rest(notices, summary, str(exc))


def _record_send_error(engine, org, notice, exc: SendError, summary) -> None:
    """A refused or broken hand-over: `unknown` when the connection broke while the message was
    under way, `pending` again when refused for now, else `failed`; with the reason."""
    status = outcome_of(NOTICES, exc, later=True)
    if status == "unknown":
        summary.unknown.append(notice["id"])
    elif status == "pending":
        summary.postponed[notice["id"]] = str(exc)
    else:
        summary.failed[notice["id"]] = str(exc)
    _step(engine, org.id, finish, notice, status, error=str(exc))


def _postpone_rest(notices: list[dict], summary: NoticeDeliverySummary, reason: str) -> None:
    handled = {*summary.failed, *summary.postponed, *summary.unknown}
    for notice in notices:
        if notice["id"] not in handled and notice["delivery_status"] == "pending":
            summary.postponed[notice["id"]] = reason


def _letter(notice: dict, document_store: Files) -> bytes | None:
    """The notice's letter to attach (None: no letter was written for it: a caller that writes
    none); `MessageError` when it failed or went missing, `LetterBusy` while another run writes
    it."""
    status = notice["letter_status"]
    if status is None:
        return None
    if status == "writing":
        raise LetterBusy("its letter is being written by another run")
    if status == "failed":
        raise MessageError(notice["letter_error"] or "the dunning letter could not be written")
    if not document_store.exists(notice["letter_key"]):
        raise MessageError(f"the dunning letter {notice['letter_key']} is not in the store")
    return document_store.read(notice["letter_key"])


class LetterBusy(Exception):
    """Another run is writing the notice's letter: the notice waits for the next run."""


def _message(notice: dict, channel: Transport, org: Organization, document_store: Files):
    """(message, its id, the checked recipient) of one notice over its channel; the letter and
    the invoice PDF only for a channel that carries files. LetterBusy, MessageError."""
    pdf = letter = None
    if channel.carries_files:
        if notice["storage_key"] and document_store.exists(notice["storage_key"]):
            pdf = document_store.read(notice["storage_key"])
        letter = _letter(notice, document_store)
    recipient = channel.recipient(notice[channel.address])
    message, message_id = channel.message(
        recipient,
        written(notice, channel.form, seller=org.name, org=org, pdf=pdf, letter=letter),
    )
    return message, message_id, recipient


def _send_each(engine, org, channels, session, document_store, pending, summary) -> None:
    """Each notice claimed, handed over and its outcome recorded, one commit per step; after an
    unknown outcome the rest waits for the next run."""
    for position, notice in enumerate(pending):
        channel = channels[notice["channel"]]
        try:
            message, message_id, recipient = _message(notice, channel, org, document_store)
        except LetterBusy as exc:
            summary.postponed[notice["id"]] = str(exc)
            continue
        except MessageError as exc:
            raw = (notice[channel.address] or "")[:255]
            _step(engine, org.id, refuse, notice, str(exc), recipient=raw)
            summary.failed[notice["id"]] = str(exc)
            continue
        claimed = _step(engine, org.id, claim, notice, recipient=recipient, message_id=message_id)
        if not claimed:
            continue  # another sender took it
        notice["delivery_status"] = "sending"
        try:
            provider_id = channel.send(session, message)
        except SendError as exc:
            _record_send_error(engine, org, notice, exc, summary)
            if exc.unknown:
                # the connection is gone, or the provider stopped answering
                _postpone_rest(pending[position + 1 :], summary, f"not sent in this run: {exc}")
                return
            if exc.closed:
                # the server closed the connection before the notice left (it waits for the
                # next run): a new connection for the rest, or they wait too
                try:
                    channel.ready(session)
                except SendError as lost:
                    rest = pending[position + 1 :]
                    _postpone_rest(rest, summary, f"not sent in this run: {lost}")
                    return
            continue
        done = {"sent_at": utcnow()}
        if provider_id:
            done["message_id"] = provider_id[:255]  # the provider's id, for questions about it
        _step(engine, org.id, finish, notice, "sent", **done)
        summary.sent += 1
