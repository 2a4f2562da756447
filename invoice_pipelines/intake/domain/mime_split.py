"""A message's MIME structure without the standard library's feed parser where the message is
plainly formed, and by that parser wherever it is not (issue 86: the mailbox reader's own time).

The feed parser reads a message line by line: every line of a base64 attachment is checked against
the boundaries of every multipart around it, and each message's boundary is compiled into a
pattern of its own. That is most of what reading an e-mailed invoice costs the reader. Here a
multipart body is cut at its delimiter lines with `str.find`, and only the header blocks go through
the standard parser (compat32, the policy `mail_parts` reads with). The result is the same tree of
`Message` objects, with the same headers and the same payload strings, so that everything after it
(`walk`, `get_payload(decode=True)`, `get_filename`) is the standard library's own.

Anything this does not know to be read the same way goes to the feed parser instead (`split`
returns None): a lone carriage return, a header block with a line that is not a header, a multipart
without a boundary, a delimiter or closing delimiter missing, an empty part, a `message/*` part or
`multipart/digest` (parts that are messages themselves), nesting deeper than `MAX_DEPTH`.
`invoice_pipelines_tests/intake/test_mime_split.py` compares both on well-formed and hostile
messages.
"""

from __future__ import annotations

import email
import email.policy
import re
from email.message import Message
from email.parser import HeaderParser

MAX_DEPTH = 8
# the line that ends a header block: an empty line
_BLANK = re.compile(r"\n\r?\n")
_HEADERS = HeaderParser(policy=email.policy.compat32)


def parse_parts(raw: bytes) -> Message:
    """The message's structure, as `email.message_from_bytes(raw, policy=compat32)` gives it."""
    text = raw.decode("ascii", "surrogateescape")  # what the bytes parser does first, too
    message = split(text)
    if message is None:
        return email.message_from_string(text, policy=email.policy.compat32)
    return message


def split(text: str, depth: int = 0) -> Message | None:
    """`text` (a message or a part) as a Message, or None where the feed parser must read it."""
    if depth == 0 and text.count("\r") != text.count("\r\n"):
        return None  # a lone carriage return: the feed parser breaks the line there
    if text.startswith(("\n", "\r\n")):
        head, body = "", text[1:] if text[0] == "\n" else text[2:]
    else:
        blank = _BLANK.search(text)
        head, body = (
            (text, "") if blank is None else (text[: blank.start() + 1], text[blank.end() :])
        )
    message = _HEADERS.parsestr(head)
    if message.get_payload():  # a line in the header block that is not a header
        return None
    maintype = message.get_content_maintype()
    if maintype == "message":
        return None
    if maintype != "multipart":
        message.set_payload(body)
        return message
    boundary = message.get_boundary()
    if depth >= MAX_DEPTH or message.get_content_subtype() == "digest" or not boundary:
        return None
    pieces = _pieces(body, "--" + boundary)
    if pieces is None:
        return None
    parts = []
    for piece in pieces:
        part = split(piece, depth + 1)
        if part is None:
            return None
        parts.append(part)
    message.set_payload(parts)
    return message


def _pieces(body: str, delimiter: str) -> list[str] | None:
    """The texts between a multipart body's delimiter lines, each without the line break before
    the next delimiter (it belongs to the delimiter); None unless there is a first delimiter, a
    closing one and no empty part."""
    pieces: list[str] = []
    start: int | None = None  # where the current piece begins (after a delimiter line)
    at = 0 if body.startswith(delimiter) else _next(body, delimiter, 0)
    while at != -1:
        end_of_line = body.find("\n", at)
        line = body[at : len(body) if end_of_line == -1 else end_of_line + 1]
        rest = line[len(delimiter) :].rstrip("\r\n")
        closing = rest.startswith("--")
        if (rest[2:] if closing else rest).strip(" \t") == "":
            if start is not None:
                before = 2 if body[at - 2 : at] == "\r\n" else 1
                if at - before <= start:
                    return None  # an empty part (the feed parser reads it its own way)
                pieces.append(body[start : at - before])
            if closing:
                return pieces or None
            if end_of_line == -1:
                return None
            start = end_of_line + 1
        at = _next(body, delimiter, at + 1)
    return None  # no closing delimiter


def _next(body: str, delimiter: str, after: int) -> int:
    """Where the next line that begins with the delimiter begins, or -1."""
    found = body.find("\n" + delimiter, max(after - 1, 0))
    return -1 if found == -1 else found + 1
