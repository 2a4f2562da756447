"""What a message about an invoice says, for each form of channel: the text from a Jinja2 template
per form and language (`templates/invoice_<form>_<language>.j2`: `email`, the subject line, a
blank line, the body; `text`, the one line of an SMS or WhatsApp), and for an e-mail the PDF and,
where the customer receives XRechnung, the XML attached.

The message itself (address checks, MIME bytes, the Message-ID we choose ourselves so the delivery
can be recorded before the message leaves) is the channel's transport, `resources/messaging/channels.py`,
shared with the dunning notices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from invoice_pipelines.core.text import printable
from invoice_pipelines.einvoice.layout import format_date, format_iban, format_money
from invoice_pipelines.resources.messaging.channels import Written
from invoice_pipelines.resources.messaging.mail_message import LANGUAGES

CREDIT_NOTE = "381"
# where the Message-IDs of invoice e-mails point, and what a text's id starts with
DOMAIN = "invoice-pipelines.local"
TAG = "ip"


@dataclass(frozen=True)
class InvoiceMail:
    """What a message about one sales invoice or credit note says, taken from the row its
    document was built from: `gross_total` is the total the attached PDF shows, `amount_due` what
    is still open now (lower than the total after a payment or a credit note; never the
    document's own amount)."""

    number: str
    type_code: str
    issue_date: date
    due_date: date | None
    gross_total: Decimal
    amount_due: Decimal
    currency: str
    seller: str
    buyer: str
    recipient: str | None
    language: str
    iban: str | None
    pdf: bytes
    pdf_name: str
    xrechnung: bytes | None = None
    xrechnung_name: str | None = None
    phone: str | None = None  # SMS / WhatsApp
    einvoice: bool = True  # False: a plain PDF invoice, no Factur-X XML embedded
    # a credit note: the invoice it corrects (BT-25, BT-26), as its document names it
    corrects_number: str | None = None
    corrects_date: date | None = None

    @property
    def credit_note(self) -> bool:
        return self.type_code == CREDIT_NOTE

    @property
    def still_open(self) -> Decimal | None:
        """What is still open of an invoice when it is not the document's total (after a
        payment or a credit note), never below zero; None when the total is open, or for a
        credit note (nothing is paid on it)."""
        if self.credit_note or self.amount_due == self.gross_total:
            return None
        return max(self.amount_due, Decimal(0))


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("invoice_pipelines.delivery", "templates"),
        undefined=StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,  # plain text mail
    )


def _language(mail: InvoiceMail) -> str:
    return mail.language if mail.language in LANGUAGES else "de"


def _shown(value: str | None) -> str:
    """A name or number as a message shows it: no invisible or control characters, one space
    between words, "" when nothing is left (the templates then leave out the words around it,
    so a subject never reads "von  Müller" or ends in "von")."""
    return " ".join(printable(value or "").split())


def _words(mail: InvoiceMail, language: str) -> dict:
    """The values every message about the document states, formatted for its language."""

    def money(amount: Decimal) -> str:
        return f"{format_money(amount, language)} {mail.currency}"

    open_amount = mail.still_open
    return {
        "number": _shown(mail.number),
        "credit_note": mail.credit_note,
        "seller": _shown(mail.seller),
        "buyer": _shown(mail.buyer),
        "issue_date": format_date(mail.issue_date, language),
        "due_date": format_date(mail.due_date, language) if mail.due_date else None,
        "total": money(mail.gross_total),
        "still_open": None if open_amount is None else money(open_amount),
        # a payment request only for an invoice with something to pay
        "pay": not mail.credit_note and (open_amount is None or open_amount > 0),
        "corrects": _shown(mail.corrects_number),
        "corrects_date": format_date(mail.corrects_date, language) if mail.corrects_date else None,
        "iban": format_iban(mail.iban) if mail.iban else None,
        "xrechnung": mail.xrechnung is not None,
        "einvoice": mail.einvoice,
    }


def render(mail: InvoiceMail, form: str) -> str:
    """The invoice's message for a channel of `form`, in the customer's language (`email`: the
    subject line, a blank line and the body; `text`: one line)."""
    language = _language(mail)
    template = _environment().get_template(f"invoice_{form}_{language}.j2")
    return template.render(**_words(mail, language))


def written(mail: InvoiceMail, form: str, *, files: bool) -> Written:
    """What the invoice says over a channel of `form`; `files`: the channel carries the PDF and
    the XRechnung (attached)."""
    attachments: tuple = ()
    if files:
        attachments = ((mail.pdf, "application/pdf", mail.pdf_name),)
        if mail.xrechnung is not None:
            attachments += (
                (mail.xrechnung, "application/xml", mail.xrechnung_name or "xrechnung.xml"),
            )
    return Written(
        render(mail, form),
        seller=mail.seller,
        number=mail.number,
        domain=DOMAIN,
        tag=TAG,
        attachments=attachments,
    )
