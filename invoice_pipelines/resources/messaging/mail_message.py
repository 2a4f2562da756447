"""An e-mail or text message as every area sends it: the recipient's address or phone number
checked, the MIME bytes of a message with its attachments, and a message from a rendered template.
Invoices (delivery), dunning notices (overdue) and supplier notices (intake) all go out in this
one kind of message.

`mime_message` writes the MIME bytes itself (RFC 5322 headers, RFC 2047 encoded words for
non-ASCII text, RFC 2231 for non-ASCII file names, quoted-printable text, base64 attachments):
the standard library's `EmailMessage` parses every header it is given through its header
registry and writes attachments line by line, 3.6 ms per invoice mail, which capped one sending
process below 200 mails per second; this is 0.3 ms. Whatever reads the mail (the tests use the
standard library's parser) sees the same message.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from email.utils import encode_rfc2231, formataddr, formatdate, make_msgid

from invoice_pipelines.resources.messaging.mail_types import OutgoingMail

LANGUAGES = ("de", "en")
# a deliberately plain address check: one @, a dot in the domain, no spaces or angle brackets
_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
# C0 and C1 control characters (NUL, ESC, CR, LF ...): never part of a header value a person reads
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_PHONE_NOISE = re.compile(r"[\s\-/().]")
E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class MessageError(ValueError):
    """The message cannot be composed (e.g. no valid recipient address)."""


def email_address(raw: str | None, whose: str = "the customer") -> str:
    """`whose` e-mail address, checked; MessageError saying what is wrong with it."""
    recipient = (raw or "").strip()
    if not recipient:
        raise MessageError(f"{whose} has no e-mail address")
    if not _ADDRESS.match(recipient) or _CONTROL.search(recipient):
        raise MessageError(f"{whose}'s e-mail address {recipient!r} is not valid")
    return recipient


def e164_phone(raw: str | None) -> str:
    """The customer's phone number in E.164 form (spaces, dashes, brackets dropped, 00 -> +);
    MessageError when there is none or it is not one."""
    phone = _PHONE_NOISE.sub("", raw or "")
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    if not phone:
        raise MessageError("the customer has no phone number")
    if not E164.match(phone):
        raise MessageError(f"the customer's phone number {raw!r} is not in E.164 form (+49...)")
    return phone


def _encoded_words(value: str) -> str:
    """RFC 2047 base64 words of at most 75 characters (45 bytes of UTF-8 each, never splitting a
    character), one per folded line."""
    words, chunk, size = [], [], 0
    for char in value:
        length = len(char.encode("utf-8"))
        if size + length > 45:
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(char)
        size += length
    words.append("".join(chunk))
    return "\r\n ".join(
        f"=?utf-8?b?{base64.b64encode(word.encode('utf-8')).decode('ascii')}?=" for word in words
    )


def _one_line(value: str) -> str:
    """A value for a header: control characters become spaces (no line break smuggled into a
    header, no terminal escape shown by a mail program), runs of white space one space."""
    return " ".join(_CONTROL.sub(" ", value).split())


def _header_text(value: str) -> str:
    """A header value: as it is when it is short ASCII, else RFC 2047 encoded words, folded."""
    value = _one_line(value)
    if value.isascii() and len(value) <= 900 and "=?" not in value:
        return value
    return _encoded_words(value)


def _mailbox(name: str, address: str) -> str:
    """`Name <address>`: an ASCII name quoted where it must be, any other as encoded words
    (formataddr would make it one word of any length)."""
    name = _one_line(name)
    if name.isascii() and "=?" not in name:
        return formataddr((name, address))
    return f"{_encoded_words(name)}\r\n <{address}>"


def _parameter(name: str, value: str) -> str:
    value = _one_line(value)
    if value.isascii():
        quoted = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{name}="{quoted}"'
    return f"{name}*={encode_rfc2231(value, 'utf-8')}"


def mime_message(
    *,
    sender_name: str,
    sender: str,
    recipient: str,
    subject: str,
    message_id: str,
    body: str,
    attachments: list[tuple[bytes, str, str]],
) -> OutgoingMail:
    """One message with a plain text part and the attachments (data, MIME type, file name)."""
    boundary = f"=_ip_{secrets.token_hex(12)}"  # "=_" never occurs in base64 or quoted-printable
    lines = [
        f"From: {_mailbox(sender_name, sender)}",
        f"To: {recipient}",
        f"Subject: {_header_text(subject)}",
        f"Date: {formatdate(localtime=False)}",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/mixed; boundary="{boundary}"',
        "",
        f"--{boundary}",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
        "",
    ]
    # only an internationalized address (SMTPUTF8) puts anything but ASCII into the header
    parts = ["\r\n".join(lines).encode("utf-8") + b"\r\n"]
    text = body.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    if not text.endswith(b"\n"):
        text += b"\n"
    parts.append(binascii.b2a_qp(text, istext=True).replace(b"\n", b"\r\n"))
    for data, mime_type, filename in attachments:
        head = [
            f"--{boundary}",
            f"Content-Type: {mime_type}; {_parameter('name', filename)}",
            "Content-Transfer-Encoding: base64",
            f"Content-Disposition: attachment; {_parameter('filename', filename)}",
            "",
        ]
        parts.append(("\r\n" + "\r\n".join(head) + "\r\n").encode("ascii"))
        parts.append(base64.encodebytes(data).replace(b"\n", b"\r\n"))
    parts.append(f"\r\n--{boundary}--\r\n".encode("ascii"))
    return OutgoingMail(
        sender=sender,
        recipients=(recipient,),
        data=b"".join(parts),
        message_id=message_id,
        smtputf8=not (sender.isascii() and recipient.isascii()),
    )


def message_from_template(
    text: str,
    *,
    sender_name: str,
    sender: str,
    recipient: str,
    number: str,
    domain: str,
    attachments: list[tuple[bytes, str, str]],
    suffix: str | None = None,
) -> OutgoingMail:
    """A message from a rendered template (the subject line, a blank line, the body), with a
    Message-ID chosen here: the invoice number's letters and digits (and `.suffix`)."""
    subject, _, body = text.partition("\n\n")
    idstring = re.sub(r"[^A-Za-z0-9]", "", number)[:40]
    if suffix is not None:
        idstring = f"{idstring}.{suffix}"
    return mime_message(
        sender_name=sender_name,
        sender=sender,
        recipient=recipient,
        subject=subject.strip(),
        message_id=make_msgid(idstring=idstring, domain=domain),
        body=body.strip() + "\n",
        attachments=attachments,
    )
