"""A registered supplier's page read with the layout a person confirmed for it (issue 84), in the
intake's recording transaction: a text or OCR reading whose seller the organization's register
knows as a supplier with a learned layout (intake/domain/supplier_layouts.py) is read again from
its stored text with the layout's values first (parse.reread_with_layout); every rule and proof
judges it as before, so it is VALIDATED only when the invoice's own sums prove it, and its
findings say that a learned layout was used (IP-LAYOUT-01). The layouts are looked up by the
organization and the supplier the organization's own register names: never another's."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.engine import Connection

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.rules import Finding
from invoice_pipelines.core.suppliers import compare
from invoice_pipelines.db.tables import supplier_layouts
from invoice_pipelines.einvoice.read import ParseOutcome
from invoice_pipelines.intake.domain.formats.text import TextField
from invoice_pipelines.intake.domain.formats.text.learned_layout import read_placements
from invoice_pipelines.intake.domain.parse import reread_with_layout
from invoice_pipelines.intake.domain.supplier_checks import claim_of
from invoice_pipelines.intake.domain.supplier_layouts import Layout, current_layouts
from invoice_pipelines.supplier_register import load_register, own_party

log = logging.getLogger(__name__)

LAYOUT_USED = "IP-LAYOUT-01"


def _used(layout: Layout, learned: dict[str, TextField]) -> Finding:
    return Finding(
        LAYOUT_USED,
        f"{', '.join(sorted(learned))} read by the layout {layout.confirmed_by} confirmed for "
        f"this supplier (version {layout.version}, from incoming invoice "
        f"{layout.incoming_invoice_id}); the invoice's own sums judged it as every reading",
        severity="warning",
        stage="extract",
    )


def read_with_learned_layouts(
    conn: Connection, organization: Organization, outcomes: dict[int, ParseOutcome]
) -> dict[int, ParseOutcome]:
    """Each outcome read from a page whose seller is a supplier of this organization's register
    with a learned layout, read again with it first (parse.reread_with_layout: every rule and
    proof as before); the others as they were. Reads nothing when no outcome was read from a
    page, and no register when the organization has no layout."""
    from_page = {
        doc_id: o
        for doc_id, o in outcomes.items()
        if o.invoice is not None
        and o.status in ("VALIDATED", "NEEDS_REVIEW")
        and o.raw.get("extraction") in ("text", "ocr")
    }
    organization_id = organization.id
    if not from_page or not _has_layouts(conn, organization_id):
        return outcomes
    register = load_register(conn, organization_id)
    own = own_party(organization)
    suppliers = {}
    for doc_id, outcome in from_page.items():
        comparison = compare(register, claim_of(outcome.invoice), own)
        if comparison.supplier is not None and comparison.supplier.id > 0:
            suppliers[doc_id] = comparison.supplier.id
    layouts = current_layouts(conn, organization_id, suppliers.values())
    read = dict(outcomes)
    for doc_id, supplier_id in suppliers.items():
        layout = layouts.get(supplier_id)
        if layout is None or not layout.placements:
            continue
        try:
            read[doc_id] = _read_again(from_page[doc_id], layout)
        except Exception:  # the general reading stands: one document's layout never stops the rest
            log.exception("document %s: its supplier's learned layout could not be used", doc_id)
    return read


def _read_again(outcome: ParseOutcome, layout: Layout) -> ParseOutcome:
    learned = read_placements(outcome.raw["text"], list(layout.placements), TextField)
    if not learned:
        return outcome
    again = reread_with_layout(outcome, learned, _used(layout, learned))
    if again is None:
        return outcome
    again.raw["learned_layout"] = {
        "supplier_id": layout.supplier_id,
        "version": layout.version,
        "fields": sorted(learned),
    }
    return again


def _has_layouts(conn: Connection, organization_id: int) -> bool:
    t = supplier_layouts.c
    found = conn.execute(select(t.id).where(t.organization_id == organization_id).limit(1)).first()
    return found is not None
