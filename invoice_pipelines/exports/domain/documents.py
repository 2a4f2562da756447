"""The DATEV document package of a version: which invoice documents go in (read from the
database, before the rows are rendered, so each booking's Beleglink is known), and the ZIP with
DATEV's `document.xml` written beside the Buchungsstapel. The format's rules: datev_documents.py.

Incoming invoices: the original the supplier sent (the upload, from the upload store's archive).
Sales invoices: the PDF we wrote (the `facturx` document, from the document store).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, BinaryIO

from sqlalchemy import select

from invoice_pipelines.db.incoming_months import incoming_in_month
from invoice_pipelines.db.tables import (
    incoming_invoices,
    sales_invoice_documents,
    uploads,
)
from invoice_pipelines.exports.domain.datev_documents import (
    INDEX_NAME,
    LeftOut,
    PackedDocument,
    document_guid,
    document_index,
    extension_of,
    file_name,
    too_big,
)
from invoice_pipelines.exports.domain.plan import Booked
from invoice_pipelines.exports.domain.reads import sales_in_month
from invoice_pipelines.resources.files.files import Files


@dataclass(frozen=True)
class DocumentStores:
    """Where the documents are: the upload store (received originals) and the document store
    (the sales PDFs we wrote). An export given none writes no package and no Beleglink."""

    uploads: Any  # an upload store (resources.files.uploads.Uploads): read(key)
    documents: Files


class DocumentUnreadable(RuntimeError):
    """A document the database lists could not be read while the package was written: the
    export starts again without it (it is then recorded as left out, with this reason)."""

    def __init__(self, invoice_id: int, reason: str) -> None:
        super().__init__(f"the document of invoice {invoice_id} could not be read: {reason}")
        self.invoice_id = invoice_id
        self.reason = reason


@dataclass(frozen=True)
class _Source:
    invoice_id: int
    key: str | None
    filename: str | None
    content_type: str | None
    size: int | None
    sha256: str | None
    gone: str | None  # why the file is known to be gone (retention removed it)


@dataclass
class Package:
    """The documents a version packs (with where each is read from) and those it leaves out."""

    packed: list[tuple[PackedDocument, str, str]] = field(default_factory=list)  # doc, store, key
    left_out: list[LeftOut] = field(default_factory=list)
    links: dict[int, str] = field(default_factory=dict)  # invoice id -> GUID

    @property
    def notes(self) -> dict:
        """What the version's notes say about its package (nothing when it packs everything)."""
        if not self.left_out:
            return {}
        return {
            "documents_left_out": [
                {"invoice_id": d.invoice_id, "number": d.invoice_number, "reason": d.reason}
                for d in self.left_out
            ]
        }


def plan_package(
    conn, organization_id: int, period: str, direction: str, booked: Booked, unreadable: dict
) -> Package:
    """Which booked invoices' documents the package holds, from the database alone (one query):
    each gets its GUID; a document that is missing, gone, unreadable before or over DATEV's
    limits is left out with the reason (its bookings get no Beleglink)."""
    sources = _sources(conn, organization_id, period, direction)
    package = Package()
    packed_bytes = 0
    names: set[str] = set()
    for invoice, _ in booked:
        source = sources.get(invoice.id)
        reason = None
        if invoice.id in unreadable:
            reason = unreadable[invoice.id]
        elif source is None or not source.key:
            reason = (
                "no original of the supplier invoice is stored"
                if direction == "incoming"
                else "no PDF of the sales invoice has been written yet"
            )
        elif source.gone:
            reason = source.gone
        else:
            reason = too_big(source.size or 0, packed_bytes)
        if reason is not None:
            package.left_out.append(LeftOut(invoice.id, invoice.number, reason))
            continue
        guid = document_guid(organization_id, direction, invoice.id, source.sha256 or source.key)
        name = file_name(invoice.number, guid, extension_of(source.filename, source.content_type))
        if name in names:  # the same number and the same GUID block: the whole GUID then
            name = f"{guid}.{name.rsplit('.', 1)[1]}"
        names.add(name)
        store = "uploads" if direction == "incoming" else "documents"
        doc = PackedDocument(guid, name, invoice.id, invoice.number, source.size or 0)
        package.packed.append((doc, store, source.key))
        package.links[invoice.id] = guid
        packed_bytes += doc.size
    return package


def linked(booked: Booked, links: dict[int, str]) -> Booked:
    """The bookings with their document's GUID as Beleglink where the package has it."""
    if not links:
        return booked
    return [
        (inv, [replace(b, document_link=links[inv.id]) for b in rows] if inv.id in links else rows)
        for inv, rows in booked
    ]


def _sources(conn, organization_id: int, period: str, direction: str) -> dict[int, _Source]:
    if direction == "incoming":
        t, u = incoming_invoices.c, uploads.c
        rows = conn.execute(
            select(
                t.id,
                u.storage_key,
                u.filename,
                u.content_type,
                u.size_bytes,
                u.content_hash,
                u.purged_at,
            )  # fmt: skip
            .select_from(incoming_invoices)
            .join(uploads, uploads.c.id == t.upload_id)
            .where(incoming_in_month(organization_id, period))
        )
        return {
            r.id: _Source(
                r.id,
                r.storage_key,
                r.filename,
                r.content_type,
                r.size_bytes,
                r.content_hash,
                _purged(r.purged_at),
            )  # fmt: skip
            for r in rows
        }
    d = sales_invoice_documents.c
    rows = conn.execute(
        select(d.sales_invoice_id, d.storage_key, d.size_bytes, d.sha256).where(
            d.organization_id == organization_id,
            d.kind == "facturx",
            d.status == "generated",
            d.sales_invoice_id.in_(sales_in_month(organization_id, period)),
        )
    )
    return {
        r.sales_invoice_id: _Source(
            r.sales_invoice_id,
            r.storage_key,
            None,
            "application/pdf",
            r.size_bytes,
            r.sha256,
            None,
        )  # fmt: skip
        for r in rows
    }


def _purged(when) -> str | None:
    if when is None:
        return None
    return f"the original was removed by archive retention on {when.date().isoformat()}"


def write_package(store: Files, key: str, package: Package, stores: DocumentStores) -> str:
    """The ZIP: every packed document under its name, and `document.xml` listing each once.
    Documents are stored as they are (PDFs are compressed already); the index is deflated."""
    generated_at = datetime.now(UTC).replace(tzinfo=None)

    def fill(handle: BinaryIO) -> None:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
            for doc, where, source_key in package.packed:
                try:
                    data = (
                        stores.uploads.read(source_key)
                        if where == "uploads"
                        else stores.documents.read(source_key)
                    )
                except Exception as exc:  # a file the database lists, gone or unreadable
                    raise DocumentUnreadable(doc.invoice_id, _reason(exc)) from exc
                archive.writestr(_entry(doc.name, generated_at), data)
            archive.writestr(
                _entry(INDEX_NAME, generated_at),
                document_index([doc for doc, _, _ in package.packed], generated_at),
                compress_type=zipfile.ZIP_DEFLATED,
            )

    return store.write_with(key, fill)


def _entry(name: str, when: datetime) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=when.timetuple()[:6])
    info.external_attr = 0o644 << 16
    return info


def _reason(exc: Exception) -> str:
    if isinstance(exc, FileNotFoundError):
        return "the stored file is missing"
    return f"the stored file could not be read ({type(exc).__name__})"
