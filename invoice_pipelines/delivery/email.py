"""The e-mail that carries an invoice: subject and text from a Jinja2 template per language
(`templates/invoice_email_<language>.j2`: the subject line, a blank line, the body), the PDF and,
where the customer receives XRechnung, the XML attached, and a Message-ID we choose ourselves so
the delivery can be recorded before the message leaves."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from invoice_pipelines.einvoice.layout import format_date, format_iban, format_money

LANGUAGES = ("de", "en")
# a deliberately plain address check: one @, a dot in the domain, no spaces or angle brackets
_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")


class MessageError(ValueError):
    """The message cannot be composed (e.g. no valid recipient address)."""


@dataclass(frozen=True)
class InvoiceMail:
    number: str
    type_code: str
    issue_date: date
    due_date: date | None
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


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("invoice_pipelines.delivery", "templates"),
        undefined=StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,  # plain text mail
    )


def compose(
    mail: InvoiceMail, *, sender: str, domain: str = "invoice-pipelines.local"
) -> EmailMessage:
    recipient = (mail.recipient or "").strip()
    if not recipient:
        raise MessageError("the customer has no e-mail address")
    if not _ADDRESS.match(recipient):
        raise MessageError(f"the customer's e-mail address {recipient!r} is not valid")
    language = mail.language if mail.language in LANGUAGES else "de"
    text = (
        _environment()
        .get_template(f"invoice_email_{language}.j2")
        .render(
            number=mail.number,
            credit_note=mail.type_code == "381",
            seller=mail.seller,
            buyer=mail.buyer,
            issue_date=format_date(mail.issue_date, language),
            due_date=format_date(mail.due_date, language) if mail.due_date else None,
            amount=f"{format_money(mail.amount_due, language)} {mail.currency}",
            iban=format_iban(mail.iban) if mail.iban else None,
            xrechnung=mail.xrechnung is not None,
        )
    )
    subject, _, body = text.partition("\n\n")
    message = EmailMessage()
    message["Subject"] = subject.strip()
    message["From"] = formataddr((mail.seller, sender))
    message["To"] = recipient
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(
        idstring=re.sub(r"[^A-Za-z0-9]", "", mail.number)[:40], domain=domain
    )
    message.set_content(body.strip() + "\n")
    message.add_attachment(mail.pdf, maintype="application", subtype="pdf", filename=mail.pdf_name)
    if mail.xrechnung is not None:
        message.add_attachment(
            mail.xrechnung, maintype="application", subtype="xml", filename=mail.xrechnung_name
        )
    return message
