"""Duplicate uploads as a person sees them (issue 56). A file dropped again with the same bytes as
an earlier upload makes no document of its own (`uploads.status = duplicate`): it leaves the drop
zone like any other file, so it is listed with the incoming invoice it duplicates (id, number,
supplier, status) where a person looks: `incoming uploads`, under that invoice in `incoming list`
and `incoming show`, and in the `uploads` observation of the sensor tick that registered it."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection, Engine

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tables import incoming_invoices, uploads
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.metadata import markdown_table

_CHUNK = 1000


def _columns():
    u, t = uploads.c, incoming_invoices.c
    return (
        u.id.label("upload_id"),
        u.filename,
        u.status.label("upload_status"),
        u.created_at,
        t.id.label("incoming_invoice_id"),
        t.invoice_number,
        t.seller_name,
        t.seller_vat_id,
        t.status,
    )


def _joined():
    return uploads.outerjoin(
        incoming_invoices, incoming_invoices.c.id == uploads.c.incoming_invoice_id
    )


def duplicates_of_uploads(
    conn: Connection, organization_id: int, upload_ids: Sequence[int]
) -> list[dict]:
    """The given uploads that are duplicates, each with the invoice it duplicates, in id order."""
    found: list[dict] = []
    ids = sorted(set(upload_ids))
    for i in range(0, len(ids), _CHUNK):
        found += [
            dict(r)
            for r in conn.execute(
                select(*_columns())
                .select_from(_joined())
                .where(
                    uploads.c.organization_id == organization_id,
                    uploads.c.id.in_(ids[i : i + _CHUNK]),
                    uploads.c.status == "duplicate",
                )
                .order_by(uploads.c.id)
            ).mappings()
        ]
    return found


def duplicates_of_documents(
    conn: Connection, organization_id: int, document_ids: Sequence[int]
) -> dict[int, list[dict]]:
    """Each document's duplicate uploads (file name, upload id, when), oldest first; one statement
    per thousand documents, found through the organization's content-hash index."""
    found: dict[int, list[dict]] = {i: [] for i in document_ids}
    ids = sorted(found)
    u, t = uploads.c, incoming_invoices.c
    for i in range(0, len(ids), _CHUNK):
        for row in conn.execute(
            select(t.id, u.id.label("upload_id"), u.filename, u.created_at)
            .select_from(
                incoming_invoices.join(
                    uploads,
                    and_(
                        u.organization_id == t.organization_id,
                        u.content_hash == t.content_hash,
                        u.incoming_invoice_id == t.id,
                    ),
                )
            )
            .where(
                t.organization_id == organization_id,
                t.id.in_(ids[i : i + _CHUNK]),
                u.status == "duplicate",
            )
            .order_by(t.id, u.id)
        ):
            found[row.id].append(
                {"upload_id": row.upload_id, "filename": row.filename, "at": row.created_at}
            )
    return found


def list_uploads(
    engine: Engine, org: Organization, *, duplicates_only: bool = False, limit: int = 200
) -> list[dict]:
    """The organization's uploads, newest first, each with the incoming invoice it made or (a
    duplicate) the one it duplicates."""
    query = (
        select(*_columns())
        .select_from(_joined())
        .where(uploads.c.organization_id == org.id)
        .order_by(uploads.c.id.desc())
        .limit(limit)
    )
    if duplicates_only:
        query = query.where(uploads.c.status == "duplicate")
    with tenant_transaction(engine, org.id) as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def invoice_named(row: dict) -> str:
    """'incoming invoice 12 (RE-1 from ACME GmbH, VALIDATED)': the invoice an upload made or
    duplicates, as far as it is read."""
    if row.get("incoming_invoice_id") is None:
        return "no incoming invoice"
    number = row.get("invoice_number") or "number not read yet"
    supplier = row.get("seller_name") or row.get("seller_vat_id") or "supplier not read yet"
    return (
        f"incoming invoice {row['incoming_invoice_id']} ({number} from {supplier}, {row['status']})"
    )


def duplicates_table(rows: list[dict], limit: int = 50) -> str:
    """The `uploads` observation's table of the duplicates a tick registered."""
    return markdown_table(
        ("upload", "file", "duplicates", "number", "supplier", "status"),
        (
            (
                r["upload_id"],
                r["filename"],
                r["incoming_invoice_id"],
                r["invoice_number"] or "(not read yet)",
                r["seller_name"] or r["seller_vat_id"] or "(not read yet)",
                r["status"],
            )
            for r in rows
        ),
        align="rlr",
        limit=limit,
    )
