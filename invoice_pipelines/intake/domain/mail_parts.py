"""What an e-mailed message holds for the intake: its claims (Message-ID, From, recipients, Date,
subject, Authentication-Results) and its invoice attachments, or one sentence why it holds none.

Plain Python over the standard library's `email` parser: no database, no network. The mailbox
reader (intake/domain/mailbox.py) hands each fetched message here and records what comes back.

- An invoice attachment is a PDF, an XML document, an image (PNG, JPEG, TIFF) or a ZIP of those,
  told by its first bytes, not by its name or declared type. The message body, plain or HTML, is
  never an invoice, and nothing is rendered from it; the images the HTML body shows inline (a
  part with a Content-ID that is not marked an attachment: a logo, a signature) belong to it.
- An automatic reply or a delivery report (Auto-Submitted, X-Autoreply, Precedence auto_reply,
  multipart/report, a MAILER-DAEMON or postmaster sender) is not an invoice: refused as a whole.
- A name is a claim too: an attachment's file name loses any folder part (`../`, `C:\\`), control
  and bidi characters and everything outside `A-Z a-z 0-9 . _ -`, and ends in its kind's
  extension; the name as given is kept escaped for the provenance.
- An encrypted PDF cannot be read: refused with a sentence asking for one without a password.
- A ZIP is opened one level deep (a ZIP inside is refused), each member read to at most the upload
  limit, and a member that claims to expand more than `MAX_ZIP_RATIO` times, or members that add
  up to more than the upload limit, refuse the whole archive (a ZIP bomb) before its bytes are
  inflated.
"""

from __future__ import annotations

import email
import email.parser
import email.policy
import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from invoice_pipelines.core.text import terminal_text
from invoice_pipelines.intake.domain import mime_split
from invoice_pipelines.limits import MAX_ATTACHMENTS

# a member of a ZIP may expand at most this many times its stored size (deflate reaches about
# 10 for text; a bomb 1,000 and more)
MAX_ZIP_RATIO = 100
MAX_ZIP_MEMBERS = MAX_ATTACHMENTS
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
# a folded header's line breaks (RFC 5322 unfolding: the break goes, the space stays)
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_HIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
MAX_NAME_CHARS = 120
EXTENSIONS = {"pdf": ".pdf", "xml": ".xml", "png": ".png", "jpeg": ".jpg", "tiff": ".tif"}
CONTENT_TYPES = {
    "pdf": "application/pdf",
    "xml": "application/xml",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "tiff": "image/tiff",
}
_AUTOMATIC_SENDERS = ("mailer-daemon", "postmaster")


@dataclass(frozen=True)
class Attachment:
    """One invoice file of a message: its safe name (the upload's), the name as the message gave it
    (escaped), its kind and bytes."""

    name: str
    given_name: str
    kind: str
    data: bytes

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.kind]


@dataclass(frozen=True)
class Headers:
    """What a message's headers claim; none of it is trusted, all of it is recorded."""

    message_id: str | None = None
    from_address: str | None = None
    recipients: tuple[str, ...] = ()
    sent_at: datetime | None = None
    subject: str | None = None
    authentication_results: str | None = None

    @property
    def to_text(self) -> str:
        return ", ".join(self.recipients)


@dataclass
class MailContent:
    """A message read: its headers, its invoice attachments, a sentence per part it refused, and
    `refused`, the one sentence why the message as a whole is no invoice (None when it is)."""

    headers: Headers
    attachments: list[Attachment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    refused: str | None = None


def parse_message(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def parse_parts(raw: bytes) -> Message:
    """The message's structure for its files: compat32, about five times faster than the default
    policy's (its header objects parse every header read, again on each read), and a plainly
    formed multipart cut at its delimiters without the feed parser (mime_split.py); the claims'
    encoded words are decoded by `_header`, an attachment's name by `_filename`."""
    return mime_split.parse_parts(raw)


def parse_header_block(raw: bytes) -> Message:
    """A message's header alone (IMAP's `BODY.PEEK[HEADER]`), compat32 like `parse_parts`, with
    no body parsed: the full parser reads a multipart header's empty body as a multipart and
    compiles a pattern for its boundary, which is most of the cost of a header, once per message
    (every boundary differs)."""
    return email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)


def _filename(part: Message) -> str | None:
    """An attachment's name as given: RFC 2231 (decoded by the parser) or encoded words."""
    name = part.get_filename()
    if name and "=?" in name:
        try:  # the decoded pieces as they stand (make_header would put a space between them)
            name = "".join(
                piece.decode(charset or "ascii", "replace") if isinstance(piece, bytes) else piece
                for piece, charset in decode_header(name)
            )
        except (HeaderParseError, LookupError, UnicodeError, ValueError):
            pass  # kept as written: a claim, escaped when shown
    return name


def _header(message: Message, name: str, decoded: bool = True) -> str | None:
    """A header as text, or None when absent or beyond the parser (a malformed header is a claim
    we cannot read, never a traceback)."""
    try:
        value = message.get(name)
    except Exception:  # noqa: BLE001 - the standard parser raises many kinds on hostile headers
        raw = message.get_all(name, failobj=[None])[0] if name in message else None
        value = str(raw) if raw is not None else None
    if value is None:
        return None
    text = str(value)
    if not isinstance(message, EmailMessage):  # compat32: as written, folded and encoded
        text = _FOLD.sub("", text)
        if decoded and "=?" in text:
            try:
                text = str(make_header(decode_header(text)))
            except (HeaderParseError, LookupError, UnicodeError, ValueError):
                pass  # kept as written: a claim, escaped when shown
    return _HIDDEN.sub(" ", text).strip() or None


def read_headers(message: Message) -> Headers:
    """The message's claims; from the compat32 parser (`parse_parts`, several times faster) or
    the default policy's. Addresses are read as written (an encoded display name is no part of
    the address); the subject's encoded words are decoded."""
    sender = parseaddr(_header(message, "From", decoded=False) or "")[1] or None
    recipients: list[str] = []
    for name in ("Delivered-To", "X-Original-To", "Envelope-To", "To", "Cc"):
        values = [v for v in (_header(message, name, decoded=False),) if v]
        for _, address in getaddresses(values):
            if address and address.lower() not in recipients:
                recipients.append(address.lower())
    sent_at = None
    date = _header(message, "Date")
    if date:
        try:
            sent_at = parsedate_to_datetime(date)
            sent_at = sent_at.astimezone(UTC) if sent_at.tzinfo else sent_at.replace(tzinfo=UTC)
        except (TypeError, ValueError, IndexError, OverflowError):
            sent_at = None
    results = [
        _HIDDEN.sub(" ", _FOLD.sub("", str(v))).strip()
        for v in message.get_all("Authentication-Results", [])
    ]
    return Headers(
        message_id=(_header(message, "Message-ID") or "")[:500] or None,
        from_address=(sender or "")[:320].lower() or None,
        recipients=tuple(recipients),
        sent_at=sent_at,
        subject=(_header(message, "Subject") or "")[:500] or None,
        authentication_results="\n".join(results)[:4000] or None,
    )


def automatic_reason(message: Message, headers: Headers) -> str | None:
    """Why the message is an automatic reply or a delivery report, or None."""
    submitted = (_header(message, "Auto-Submitted") or "no").lower()
    if submitted != "no":
        return f"an automatic message (Auto-Submitted: {submitted})"
    if message.get("X-Autoreply") or message.get("X-Autorespond"):
        return "an automatic reply (X-Autoreply)"
    if (_header(message, "Precedence") or "").lower() in ("auto_reply", "junk"):
        return "an automatic reply (Precedence)"
    if message.get_content_type() == "multipart/report":
        return "a delivery or read report (multipart/report)"
    local = (headers.from_address or "").partition("@")[0]
    if local in _AUTOMATIC_SENDERS:
        return f"a bounce from {local}"
    return None


def kind_of(data: bytes) -> str | None:
    """The invoice kind the bytes are, by their first bytes; None for anything else."""
    head = data[:16]
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    text = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<"):
        return "xml"
    return None


def safe_name(given: str | None, kind: str, index: int) -> str:
    """The upload's name for an attachment: its last path part, only `A-Z a-z 0-9 . _ -`, no
    leading dots, at most MAX_NAME_CHARS, ending in its kind's extension."""
    name = re.split(r"[\\/]", _HIDDEN.sub("", given or ""))[-1]
    name = _SAFE.sub("_", name).lstrip(".")[:MAX_NAME_CHARS] or f"attachment-{index}"
    extension = EXTENSIONS[kind]
    if not name.lower().endswith(extension) and not (
        kind == "jpeg" and name.lower().endswith(".jpeg")
    ):
        name = f"{name[: MAX_NAME_CHARS - len(extension)]}{extension}"
    return name


def shown(given: str | None) -> str:
    return terminal_text((given or "(no name)")[:200])


def is_encrypted_pdf(data: bytes) -> bool:
    """A PDF with an /Encrypt dictionary (a password or permissions on it)."""
    return b"/Encrypt" in data


def read_content(raw: bytes, limit: int, headers: Headers | None = None) -> MailContent:
    """The message's headers and invoice attachments (module docstring); `limit`: the upload
    limit, for each attachment and for what a ZIP may expand to; `headers`: its claims when the
    caller read them already."""
    message = parse_parts(raw)
    if headers is None:
        headers = read_headers(message)
    content = MailContent(headers)
    automatic = automatic_reason(message, headers)
    if automatic:
        content.refused = f"{automatic}, not an invoice"
        return content
    parts = [part for part in message.walk() if not part.is_multipart()]
    has_html = any(part.get_content_type() == "text/html" for part in parts)
    candidates = [part for part in parts if _attached(part)]
    for index, part in enumerate(candidates, start=1):
        given = _filename(part)
        if len(content.attachments) >= MAX_ATTACHMENTS:
            content.notes.append(
                f"{shown(given)}: more than {MAX_ATTACHMENTS} invoice files in one message; "
                "the rest were not taken"
            )
            break
        try:
            data = part.get_payload(decode=True) or b""
        except Exception:  # noqa: BLE001 - a broken transfer encoding is the message's fault
            content.notes.append(f"{shown(given)}: its encoding cannot be read")
            continue
        _take(content, given, data, index, limit)
    if not content.attachments:
        why = "; ".join(content.notes)
        body = " (an HTML-only message)" if has_html and not candidates else ""
        content.refused = (
            f"no invoice attachment{body}: {why}"
            if why
            else f"no invoice attachment (PDF, XML, image or a ZIP of them){body}; the message "
            "body is never an invoice"
        )
    return content


def _attached(part: Message) -> bool:
    """Whether a part is an attachment: named, marked as one, or a file's type; an inline part
    the HTML body refers to (its Content-ID: a logo, a signature) belongs to the body."""
    disposition = part.get_content_disposition()
    if disposition != "attachment" and part.get("Content-ID"):
        return False
    return bool(
        part.get_filename()
        or disposition == "attachment"
        or part.get_content_maintype() in ("application", "image")
    )


def _take(content: MailContent, given: str | None, data: bytes, index: int, limit: int) -> None:
    kind = kind_of(data)
    if len(data) > limit:
        content.notes.append(
            f"{shown(given)}: {len(data)} bytes, over the upload limit of {limit} bytes"
        )
    elif kind is None:
        content.notes.append(f"{shown(given)}: not a PDF, XML, image or ZIP of them")
    elif kind == "zip":
        _take_zip(content, given, data, limit)
    elif kind == "pdf" and is_encrypted_pdf(data):
        content.notes.append(
            f"{shown(given)}: an encrypted PDF cannot be read; ask the supplier for one without "
            "a password"
        )
    else:
        content.attachments.append(
            Attachment(safe_name(given, kind, index), shown(given), kind, data)
        )


def _take_zip(content: MailContent, given: str | None, data: bytes, limit: int) -> None:
    """The invoice files of a ZIP, one level deep, or one sentence why none is taken."""
    where = shown(given)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        content.notes.append(f"{where}: not a readable ZIP ({type(exc).__name__})")
        return
    if len(members) > MAX_ZIP_MEMBERS:
        content.notes.append(f"{where}: {len(members)} files in one ZIP; at most {MAX_ZIP_MEMBERS}")
        return
    claimed = sum(m.file_size for m in members)
    bomb = next((m for m in members if m.file_size > MAX_ZIP_RATIO * max(m.compress_size, 1)), None)
    if bomb is not None or claimed > limit:
        content.notes.append(
            f"{where}: refused as a ZIP bomb (a member expands more than {MAX_ZIP_RATIO} times, "
            f"or all expand past the upload limit of {limit} bytes); nothing of it was unpacked"
        )
        return
    taken = 0
    for position, member in enumerate(members, start=1):
        name = f"{given or 'archive'}/{member.filename}"
        try:
            with archive.open(member) as handle:
                body = handle.read(limit + 1)
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError) as exc:
            # RuntimeError: a member with a password
            content.notes.append(f"{shown(name)}: cannot be unpacked ({type(exc).__name__})")
            continue
        taken += len(body)
        if len(body) > limit or taken > limit:
            content.notes.append(f"{where}: unpacks past the upload limit; the rest was not taken")
            return
        if kind_of(body) == "zip":
            content.notes.append(f"{shown(name)}: a ZIP inside a ZIP is not unpacked")
            continue
        _take(content, member.filename, body, position, limit)
