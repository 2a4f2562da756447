"""mime_split.py: a message cut at its delimiters reads exactly as the standard library's feed
parser reads it (headers, structure, every payload, every attachment's bytes and name), and what
the cutting does not know to read the same way goes to the feed parser."""

from __future__ import annotations

import email
import email.policy
import random
from email.message import EmailMessage, Message

import pytest

from invoice_pipelines.intake.domain import mime_split
from invoice_pipelines.intake.domain.mail_parts import read_content

LIMIT = 10 * 1024 * 1024
XML = b'<?xml version="1.0"?>\n<Invoice><ID>RE-1</ID></Invoice>\n' * 40
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 30 + b"\n%%EOF\n"


def _stdlib(raw: bytes) -> Message:
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def _shape(message: Message) -> list:
    """What the intake reads of a message: each part's headers, type, name and payload."""
    shape = []
    for part in message.walk():
        entry = [part.items(), part.get_content_type(), part.get_filename(), part.is_multipart()]
        if not part.is_multipart():
            entry += [part.get_payload(), part.get_payload(decode=True)]
        shape.append(entry)
    return shape


def _invoice_mail(linesep: str = "\r\n") -> bytes:
    mail = EmailMessage()
    mail["From"] = "Lieferant <rechnung@lieferant.example>"
    mail["To"] = "invoices+acme@kunde.example"
    mail["Subject"] = "Rechnung RE-1"
    mail["Message-ID"] = "<1@lieferant.example>"
    mail.set_content("Anbei unsere Rechnung.\n")
    mail.add_alternative("<p>Anbei unsere <b>Rechnung</b>.</p>", subtype="html")
    mail.add_attachment(XML, maintype="application", subtype="xml", filename="RE-1.xml")
    mail.add_attachment(PDF, maintype="application", subtype="pdf", filename="Rechnung März.pdf")
    mail.add_attachment(b"\x89PNG\r\n\x1a\n" + b"x" * 300, maintype="image", subtype="png",
                        filename="logo.png", cid="<logo@x>", disposition="inline")  # fmt: skip
    return mail.as_bytes(policy=email.policy.default.clone(linesep=linesep))


def _multipart(parts: list[str], boundary: str = "b1", *, head: str = "", tail: str = "--\n",
               preamble: str = "", epilogue: str = "") -> bytes:  # fmt: skip
    body = "".join(f"--{boundary}\n{part}\n" for part in parts)
    return (
        f'{head}Content-Type: multipart/mixed; boundary="{boundary}"\nSubject: x\n\n'
        f"{preamble}{body}--{boundary}{tail}{epilogue}"
    ).encode("utf-8", "surrogateescape")


ATTACHMENT = (
    'Content-Type: application/xml; name="a.xml"\nContent-Disposition: attachment; '
    'filename="a.xml"\nContent-Transfer-Encoding: base64\n\nPEludm9pY2UvPg==\n'
)

# read by cutting: each must come out as the feed parser reads it
PLAIN = {
    "an invoice e-mail, CRLF": _invoice_mail("\r\n"),
    "an invoice e-mail, LF": _invoice_mail("\n"),
    "a preamble and an epilogue": _multipart(
        ["Content-Type: text/plain\n\nhello", ATTACHMENT],
        preamble="This is a multi-part message in MIME format.\n\n",
        epilogue="\nbye\n",
    ),
    "delimiters with spaces after them": _multipart(
        ["\nplain", ATTACHMENT], tail="--  \t\n"
    ).replace(b"--b1\n", b"--b1 \t\n"),
    "a line that begins with the boundary but is not a delimiter": _multipart(
        ["Content-Type: text/plain\n\n--b1x is text\n--b1 and more", ATTACHMENT]
    ),
    "a part without headers (text/plain by default)": _multipart(["\njust text", ATTACHMENT]),
    "a part of headers only": _multipart(["Content-Type: text/plain", ATTACHMENT]),
    "a part whose body is one empty line": _multipart(["Content-Type: text/plain\n\n", ATTACHMENT]),
    "a boundary with spaces and brackets": _multipart([ATTACHMENT], boundary="a b(c)=?x'"),
    "an inner boundary that begins with the outer one": _multipart(
        [
            'Content-Type: multipart/alternative; boundary="b1x"\n\n--b1x\n\nplain\n'
            "--b1x\nContent-Type: text/html\n\n<p>html</p>\n--b1x--\n",
            ATTACHMENT,
        ]
    ),
    "no closing line break": _multipart([ATTACHMENT], tail="--"),
    "8-bit bytes in a body and a name": _multipart(
        [
            "Content-Type: text/plain; charset=latin-1\nContent-Transfer-Encoding: 8bit\n\nM\udce4rz",
            'Content-Type: application/pdf\nContent-Disposition: attachment; filename="M\udce4rz.pdf"'
            "\n\n%PDF-1.4 raw",
        ]
    ),  # fmt: skip
    "an RFC 2231 name": _multipart(
        [ATTACHMENT.replace('filename="a.xml"', "filename*=UTF-8''Rechnung%20M%C3%A4rz.xml")]
    ),
    "not multipart": b"Subject: x\nContent-Type: application/xml\n\n<Invoice/>\n",
    "a header folded over lines": _multipart([ATTACHMENT], head="X-Long: a\n  b\n\tc\n"),
}

# read by the feed parser: the cutting steps aside
ASIDE = {
    "a lone carriage return": _multipart(["Content-Type: text/plain\n\na\rb", ATTACHMENT]),
    "a line in the header block that is not a header": b"Subject: x\nnot a header\n\nbody\n",
    "no boundary parameter": b"Content-Type: multipart/mixed\n\n--b1\n\nx\n--b1--\n",
    "an empty boundary": b'Content-Type: multipart/mixed; boundary=""\n\n--\n\nx\n----\n',
    "no closing delimiter": _multipart([ATTACHMENT], tail="\n"),
    "no delimiter at all": b'Content-Type: multipart/mixed; boundary="b1"\n\nplain text\n',
    "an empty part": _multipart(["", ATTACHMENT]).replace(b"--b1\n\n--b1", b"--b1\n--b1"),
    "a forwarded message (message/rfc822)": _multipart(
        ["Content-Type: message/rfc822\n\nSubject: inner\nContent-Type: text/plain\n\nhi"]
    ),
    "a digest": _multipart(["\nSubject: inner\n\nhi"]).replace(
        b"multipart/mixed", b"multipart/digest"
    ),
    "nesting deeper than MAX_DEPTH": None,  # made below
}


def _nested(depth: int) -> bytes:
    inner = ATTACHMENT
    for level in range(depth):
        inner = (
            f'Content-Type: multipart/mixed; boundary="n{level}"\n\n--n{level}\n{inner}\n'
            f"--n{level}--\n"
        )
    return f"Subject: deep\n{inner}".encode()


ASIDE["nesting deeper than MAX_DEPTH"] = _nested(mime_split.MAX_DEPTH + 3)


@pytest.mark.parametrize("name", PLAIN)
def test_a_plainly_formed_message_is_cut_and_reads_as_the_feed_parser_reads_it(name):
    raw = PLAIN[name]
    assert mime_split.split(raw.decode("ascii", "surrogateescape")) is not None, "not cut"
    assert _shape(mime_split.parse_parts(raw)) == _shape(_stdlib(raw))


@pytest.mark.parametrize("name", ASIDE)
def test_what_the_cutting_cannot_read_the_same_way_goes_to_the_feed_parser(name):
    raw = ASIDE[name]
    assert mime_split.split(raw.decode("ascii", "surrogateescape")) is None, "was cut"
    assert _shape(mime_split.parse_parts(raw)) == _shape(_stdlib(raw))


def test_nesting_within_max_depth_is_cut():
    raw = _nested(mime_split.MAX_DEPTH)
    assert mime_split.split(raw.decode()) is not None
    assert _shape(mime_split.parse_parts(raw)) == _shape(_stdlib(raw))


def test_the_intake_reads_a_cut_messages_attachments():
    raw = PLAIN["an invoice e-mail, CRLF"]
    assert mime_split.split(raw.decode("ascii")) is not None
    content = read_content(raw, LIMIT)
    assert [(a.name, a.kind, a.data) for a in content.attachments] == [
        ("RE-1.xml", "xml", XML),
        ("Rechnung_M_rz.pdf", "pdf", PDF),
    ]  # the logo has a Content-ID and is no attachment: it belongs to the HTML body


def _damaged(rng: random.Random) -> bytes:
    """A message damaged at random: lines dropped, doubled, cut short, bytes, empty lines and
    delimiter-like lines put in."""
    base = rng.choice(list(PLAIN.values()) + [_nested(3)])
    lines = base.split(b"\n")
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(lines))
        action = rng.choice(["drop", "double", "cut", "byte", "empty", "delimiter"])
        if action == "drop":
            del lines[at]
        elif action == "double":
            lines.insert(at, lines[at])
        elif action == "cut":
            lines[at] = lines[at][: rng.randint(0, max(len(lines[at]) - 1, 0))]
        elif action == "byte":
            pos = rng.randint(0, len(lines[at]))
            put = bytes([rng.choice(b'\r-: \t\xe4\x00="')])
            lines[at] = lines[at][:pos] + put + lines[at][pos:]
        elif action == "empty":
            lines.insert(at, b"")
        else:
            lines.insert(at, rng.choice([b"--b1", b"--b1--", b"--n0", b"--b1x", b"-- b1"]))
        if not lines:
            lines = [b""]
    return b"\n".join(lines)


def test_a_damaged_message_reads_as_the_feed_parser_reads_it():
    """Whether cut or handed on, a damaged message's structure and payloads are the feed
    parser's; and most damage still leaves a message the cutting reads."""
    rng = random.Random(86)
    cut = 0
    for _ in range(600):
        raw = _damaged(rng)
        cut += mime_split.split(raw.decode("ascii", "surrogateescape")) is not None
        assert _shape(mime_split.parse_parts(raw)) == _shape(_stdlib(raw)), raw
    assert cut > 200
