"""A registered supplier's layout, learned from what a person confirmed, per organization
(`supplier_layouts`, migration 0061; the placements themselves: formats/text/learned_layout.py).

- Learning (`learn_layout`, in the transaction of a confirmation in review): where the values the
  person confirmed stand on the document's page, for the supplier the register knows it by; a
  layout that differs from the supplier's last one is a new version (new rows, never an update),
  audited with who confirmed it and the document.
- Reading: intake/domain/layout_reading.py (a module of its own: learning, showing and
  forgetting never load the page reader).
- Showing and forgetting (`layout_versions`, `forget_layout`): a forgotten layout is a version
  without fields, the older ones kept.

Every query names the organization and the supplier: a layout is never read for another
organization, whatever supplier of the same name or VAT id it has.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from invoice_pipelines.db.audit_log import record_audit_entries
from invoice_pipelines.db.tables import supplier_layouts
from invoice_pipelines.intake.domain.formats.text.learned_layout import (
    FIELDS,
    Placement,
    learn_placements,
)

FORGOTTEN = "forgotten"
# the document's columns a confirmation confirms, by the field the layout keeps
_COLUMNS = {
    "number": "invoice_number",
    "issue_date": "issue_date",
    "due_date": "due_date",
    "net_total": "net_total",
    "tax_total": "tax_total",
    "gross_total": "gross_total",
    "amount_due": "amount_due",
}
_PLACEMENT = ("label", "direction", "lines_below", "column_offset", "skip", "page", "region")


@dataclass(frozen=True)
class Layout:
    """One version of a supplier's layout: its placements (none: forgotten), who confirmed it,
    when, and from which document."""

    supplier_id: int
    version: int
    placements: tuple[Placement, ...]
    confirmed_by: str
    confirmed_at: Any
    incoming_invoice_id: int | None


def _placement(row) -> Placement:
    return Placement(
        row.field,
        row.label,
        row.direction,
        row.lines_below,
        row.column_offset,
        row.skip,
        row.page,
        row.region,
    )


def _layouts(rows: Iterable) -> list[Layout]:
    versions: dict[tuple[int, int], list] = {}
    for row in rows:
        versions.setdefault((row.supplier_id, row.version), []).append(row)
    return [
        Layout(
            supplier_id,
            version,
            tuple(_placement(r) for r in found if r.direction != FORGOTTEN),
            found[0].confirmed_by,
            found[0].confirmed_at,
            found[0].incoming_invoice_id,
        )
        for (supplier_id, version), found in sorted(versions.items())
    ]


def current_layouts(
    conn: Connection, organization_id: int, supplier_ids: Iterable[int]
) -> dict[int, Layout]:
    """The last version of each of these suppliers' layouts in this organization (a forgotten
    one holds no placements); suppliers without one are not in it. One statement."""
    ids = sorted(set(supplier_ids))
    if not ids:
        return {}
    t = supplier_layouts.c
    last = (
        select(t.supplier_id, func.max(t.version).label("version"))
        .where(t.organization_id == organization_id, t.supplier_id.in_(ids))
        .group_by(t.supplier_id)
        .subquery()
    )
    rows = conn.execute(
        select(supplier_layouts)
        .join(last, (t.supplier_id == last.c.supplier_id) & (t.version == last.c.version))
        .where(t.organization_id == organization_id)
        .order_by(t.supplier_id, t.id)
    ).all()
    return {layout.supplier_id: layout for layout in _layouts(rows)}


def layout_versions(conn: Connection, organization_id: int, supplier_id: int) -> list[Layout]:
    """Every version of the supplier's layout in this organization, oldest first."""
    t = supplier_layouts.c
    rows = conn.execute(
        select(supplier_layouts)
        .where(t.organization_id == organization_id, t.supplier_id == supplier_id)
        .order_by(t.version, t.id)
    ).all()
    return _layouts(rows)


def _write_version(
    conn: Connection,
    organization_id: int,
    supplier_id: int,
    placements: list[Placement],
    *,
    by: str,
    document_id: int | None,
    action: str,
    details: dict,
) -> int:
    t = supplier_layouts.c
    version = 1 + (
        conn.execute(
            select(func.coalesce(func.max(t.version), 0)).where(
                t.organization_id == organization_id, t.supplier_id == supplier_id
            )
        ).scalar_one()
    )
    common = {
        "organization_id": organization_id,
        "supplier_id": supplier_id,
        "version": version,
        "confirmed_by": by,
        "incoming_invoice_id": document_id,
    }
    rows = [
        {
            **common,
            "field": p.field,
            "label": p.label,
            "direction": p.direction,
            "lines_below": p.lines_below,
            "column_offset": p.column,
            "skip": p.skip,
            "page": p.page,
            "region": p.region,
        }
        for p in placements
    ] or [{**common, "field": "*", "label": None, "direction": FORGOTTEN}]
    conn.execute(insert(supplier_layouts), rows)
    record_audit_entries(
        conn,
        organization_id,
        by,
        action,
        "supplier",
        [supplier_id],
        {"version": version, "incoming_invoice_id": document_id, **details},
    )
    return version


def confirmed_values(row: dict) -> dict[str, Any]:
    """What a person confirmed of a document, by the fields a layout keeps: its columns as
    confirmed (with the person's corrections) and the IBAN as it was read."""
    values = {name: row.get(column) for name, column in _COLUMNS.items()}
    read = (row.get("raw_json") or {}).get("invoice") or {}
    values["iban"] = read.get("iban")
    return values


def learn_layout(
    conn: Connection, organization_id: int, supplier_id: int | None, row: dict, *, by: str
) -> int | None:
    """In the transaction of a person's confirmation of the document `row` (its columns as
    confirmed): where the confirmed values stand on its page, kept as the supplier's layout when
    it differs from the last one (a new version, audited as `supplier.layout_learned`). The new
    version, or None: no registered supplier, a document not read from a page, or nothing new."""
    raw = row.get("raw_json") or {}
    text = raw.get("text")
    if supplier_id is None or raw.get("extraction") not in ("text", "ocr") or not text:
        return None
    placements = learn_placements(text, confirmed_values(row))
    if not placements:
        return None
    learned = [placements[name] for name in FIELDS if name in placements]
    known = current_layouts(conn, organization_id, [supplier_id]).get(supplier_id)
    if known is not None and set(known.placements) == set(learned):
        return None
    return _write_version(
        conn,
        organization_id,
        supplier_id,
        learned,
        by=by,
        document_id=row["id"],
        action="supplier.layout_learned",
        details={"fields": {p.field: p.to_json_dict() for p in learned}},
    )


def forget_layout(
    conn: Connection, organization_id: int, supplier_id: int, *, by: str, reason: str
) -> int | None:
    """Forget the supplier's layout: a version without fields (the older ones kept), audited as
    `supplier.layout_forgotten` with who and why. Its version, or None when there is none to
    forget."""
    known = current_layouts(conn, organization_id, [supplier_id]).get(supplier_id)
    if known is None or not known.placements:
        return None
    return _write_version(
        conn,
        organization_id,
        supplier_id,
        [],
        by=by,
        document_id=None,
        action="supplier.layout_forgotten",
        details={"reason": reason, "forgotten_version": known.version},
    )
