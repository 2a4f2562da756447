"""The DATEV document package: a ZIP of an organization's month of invoice documents with
DATEV's document index `document.xml`, which DATEV's document import (DATEV Belegtransfer, the
XML interface online) files in Belege online, each document under its GUID; the Buchungsstapel's
Beleglink column (`BEDI "<GUID>"`) points a booking at it. Plain Python: the GUIDs, the file
names, the limits and the index; the exports area reads the documents and writes the ZIP.

Where each rule comes from is in docs/exports.md ("DATEV document package").
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import quoteattr

# uuid5 namespace of our document GUIDs: the same document of the same organization gets the same
# GUID in every export (a re-export links the same document), nothing else ever gets it
GUID_NAMESPACE = uuid.UUID("6f1c1d3e-3b0a-5d7e-9a52-4b0f2d1e8c77")

INDEX_NAME = "document.xml"  # exactly this name, exactly once per package
INDEX_NAMESPACE = "http://xml.datev.de/bedi/tps/document/v06.0"
INDEX_SCHEMA = "Document_v060.xsd"
INDEX_VERSION = "6.0"
GENERATING_SYSTEM = "invoice_pipelines"

# A package (the ZIP) may not exceed 465 MB; one document file 20 MB. A document over either is
# left out of the package, recorded with the reason, and its bookings get no Beleglink.
MAX_PACKAGE_BYTES = 465 * 1024 * 1024
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
# file names: ASCII letters, digits, '-' and '_' only, at most 64 characters before the extension
MAX_NAME_STEM = 64
EXTENSIONS = {"application/pdf": "pdf", "application/xml": "xml", "text/xml": "xml"}
_NOT_IN_NAMES = re.compile(r"[^A-Za-z0-9_-]+")


def document_guid(organization_id: int, direction: str, invoice_id: int, sha256: str) -> str:
    """The GUID of one document: derived from the organization, the invoice and the document's
    bytes (their SHA-256), so the same document keeps it in every version and a changed one
    gets a new one. Upper case, 36 characters (the Beleglink takes at most 36)."""
    name = f"{organization_id}/{direction}/{invoice_id}/{sha256.lower()}"
    return str(uuid.uuid5(GUID_NAMESPACE, name)).upper()


def extension_of(filename: str | None, content_type: str | None = None) -> str:
    """The file's extension in the package: the original's own (pdf, xml, ...), else from its
    content type, else pdf."""
    if filename and "." in filename:
        ext = _NOT_IN_NAMES.sub("", filename.rsplit(".", 1)[1]).lower()
        if ext and len(ext) <= 5:
            return ext
    return EXTENSIONS.get((content_type or "").split(";")[0].strip().lower(), "pdf")


def file_name(number: str | None, guid: str, extension: str) -> str:
    """The document's name in the package: the invoice number in DATEV's safe characters, then
    the GUID's first block (two invoices may share a number; the GUID keeps names unique)."""
    stem = _NOT_IN_NAMES.sub("-", number or "").strip("-_")
    tail = guid.split("-")[0]
    stem = f"{stem[: MAX_NAME_STEM - len(tail) - 1]}_{tail}" if stem else guid
    return f"{stem}.{extension}"


@dataclass(frozen=True)
class PackedDocument:
    """One document in the package: its GUID, its name in the ZIP and the invoice it belongs to."""

    guid: str
    name: str
    invoice_id: int
    invoice_number: str | None
    size: int


@dataclass(frozen=True)
class LeftOut:
    """A document that is not in the package, and why (too big, missing, unreadable)."""

    invoice_id: int
    invoice_number: str | None
    reason: str


def too_big(size: int, packed_bytes: int) -> str | None:
    """Why a document of `size` bytes cannot join a package already holding `packed_bytes`, or
    None when it fits."""
    if size > MAX_DOCUMENT_BYTES:
        return (
            f"the document has {size} bytes, more than the {MAX_DOCUMENT_BYTES} a DATEV "
            "document may have"
        )
    if packed_bytes + size > MAX_PACKAGE_BYTES:
        return (
            f"the package would exceed the {MAX_PACKAGE_BYTES} bytes a DATEV document "
            "package may have"
        )
    return None


def document_index(documents: Sequence[PackedDocument], generated_at: datetime) -> bytes:
    """`document.xml`: one <document guid=...> per file, each with its file as
    <extension xsi:type="File" name=...>, in UTF-8."""
    entries: Iterable[str] = (
        f"    <document guid={quoteattr(d.guid)}>\n"
        f'      <extension xsi:type="File" name={quoteattr(d.name)}/>\n'
        "    </document>\n"
        for d in documents
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<archive xmlns="{INDEX_NAMESPACE}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:schemaLocation="{INDEX_NAMESPACE} {INDEX_SCHEMA}" version="{INDEX_VERSION}" '
        f'generatingSystem="{GENERATING_SYSTEM}">\n'
        f"  <header>\n    <date>{generated_at:%Y-%m-%dT%H:%M:%S}</date>\n  </header>\n"
        "  <content>\n" + "".join(entries) + "  </content>\n</archive>\n"
    ).encode("utf-8")
