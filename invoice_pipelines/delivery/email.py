"""The e-mail that carries an invoice: subject and text from a Jinja2 template per language
(`templates/invoice_email_<language>.j2`: the subject line, a blank line, the body), the PDF and,
where the customer receives XRechnung, the XML attached, and a Message-ID we choose ourselves so
the delivery can be recorded before the message leaves.

The message itself (address checks, MIME bytes, Message-ID) is `resources/mail_message.py`,
shared with the dunning notices and the intake's supplier notices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from invoice_pipelines.einvoice.layout import format_date, format_iban, format_money
from invoice_pipelines.resources.mail import OutgoingMail
from invoice_pipelines.resources.mail_message import (
    LANGUAGES,
    email_address,
    message_from_template,
)

CREDIT_NOTE = "381"


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


def _words(mail: InvoiceMail, language: str) -> dict:
    """The values every message about the document states, formatted for its language."""

    def money(amount: Decimal) -> str:
        return f"{format_money(amount, language)} {mail.currency}"

    open_amount = mail.still_open
    return {
        "number": mail.number,
        "credit_note": mail.credit_note,
        "seller": mail.seller,
        "buyer": mail.buyer,
        "issue_date": format_date(mail.issue_date, language),
        "due_date": format_date(mail.due_date, language) if mail.due_date else None,
        "total": money(mail.gross_total),
        "still_open": None if open_amount is None else money(open_amount),
        # a payment request only for an invoice with something to pay
        "pay": not mail.credit_note and (open_amount is None or open_amount > 0),
        "corrects": mail.corrects_number,
        "corrects_date": format_date(mail.corrects_date, language) if mail.corrects_date else None,
        "iban": format_iban(mail.iban) if mail.iban else None,
        "xrechnung": mail.xrechnung is not None,
        "einvoice": mail.einvoice,
    }


def render_email_text(mail: InvoiceMail) -> str:
    """The e-mail's subject line, a blank line and its body, in the customer's language."""
    language = _language(mail)
    return (
        _environment().get_template(f"invoice_email_{language}.j2").render(**_words(mail, language))
    )


def render_short_text(mail: InvoiceMail) -> str:
    """The SMS or WhatsApp text of an invoice or credit note: one line, in the customer's
    language (`templates/invoice_text_<language>.j2`)."""
    language = _language(mail)
    template = _environment().get_template(f"invoice_text_{language}.j2")
    return template.render(**_words(mail, language))


def compose(
    mail: InvoiceMail, *, sender: str, domain: str = "invoice-pipelines.local"
) -> OutgoingMail:
    recipient = email_address(mail.recipient)
    text = render_email_text(mail)
    attachments = [(mail.pdf, "application/pdf", mail.pdf_name)]
    if mail.xrechnung is not None:
        attachments.append(
            (mail.xrechnung, "application/xml", mail.xrechnung_name or "xrechnung.xml")
        )
    return message_from_template(
        text,
        sender_name=mail.seller,
        sender=sender,
        recipient=recipient,
        number=mail.number,
        domain=domain,
        attachments=attachments,
    )
