"""What the `incoming` commands show: an organization's incoming invoices by status and month with
their class and findings, one document in full, and the organization's intake policy."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.engine import Engine

from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.audit_log import checked_who_and_why, record_policy_change
from invoice_pipelines.db.incoming_status import ACCEPTED, in_intake, validated
from invoice_pipelines.db.tables import (
    incoming_invoices,
    incoming_reviews,
    processing_errors,
    uploads,
)
from invoice_pipelines.db.tenancy import change_settings, tenant_transaction
from invoice_pipelines.einvoice.classes import POLICY_SETTING, checked_policy
from invoice_pipelines.intake.domain.discounts import discounts_of, running_discount
from invoice_pipelines.intake.domain.duplicate_uploads import duplicates_of_documents
from invoice_pipelines.intake.domain.mailbox_status import provenance
from invoice_pipelines.intake.domain.notice_states import notices_of
from invoice_pipelines.intake.domain.payments import payments_of

LIST_COLUMNS = (
    "id",
    "status",
    "processing_version",
    "einvoice_class",
    "einvoice_reason",
    "format",
    "invoice_number",
    "type_code",
    "seller_name",
    "seller_vat_id",
    "issue_date",
    "due_date",
    "currency",
    "net_total",
    "tax_total",
    "gross_total",
    "amount_due",
)


def _findings(conn, ids: list[int]) -> dict[int, list[dict]]:
    """Each document's findings of its latest processing (the version that wrote them last), of
    those that still hold (a confirmation in review resolves its review findings: `_resolved`)."""
    found: dict[int, list[dict]] = {i: [] for i in ids}
    latest: dict[int, int] = {}
    e = processing_errors.c
    for row in conn.execute(
        select(
            e.incoming_invoice_id, e.processing_version, e.stage, e.rule_id, e.severity, e.message
        )
        .where(e.incoming_invoice_id.in_(ids), e.resolved_at.is_(None))
        .order_by(e.incoming_invoice_id, e.processing_version.desc(), e.id)
    ):
        version = latest.setdefault(row.incoming_invoice_id, row.processing_version or 0)
        if (row.processing_version or 0) != version:
            continue
        found[row.incoming_invoice_id].append(
            {
                "stage": row.stage,
                "rule": row.rule_id,
                "severity": row.severity,
                "message": row.message,
            }
        )
    return found


def _resolved(conn, document_id: int) -> list[dict]:
    """The document's findings that no longer hold: what they said, who resolved them and when."""
    e = processing_errors.c
    return [
        dict(r)
        for r in conn.execute(
            select(
                e.rule_id.label("rule"),
                e.severity,
                e.message,
                e.resolved_by,
                e.resolved_at,
            )
            .where(e.incoming_invoice_id == document_id, e.resolved_at.is_not(None))
            .order_by(e.id)
        ).mappings()
    ]


def list_documents(
    engine: Engine,
    org: Organization,
    *,
    status: str | None = None,
    month: str | None = None,
    limit: int = 200,
    today: date | None = None,
) -> list[dict]:
    """The organization's incoming invoices (newest first), each with its file name, class, the
    findings of its latest processing, the early-payment discount a payment today still
    earns (`discount`: last day, percent, discount, amount to pay; None when there is none) and
    what was paid (`payment`, intake/domain/payments.py; None when it never went to QuickBooks)."""
    t = incoming_invoices.c
    query = (
        select(*(t[name] for name in LIST_COLUMNS), uploads.c.filename)
        .select_from(incoming_invoices.outerjoin(uploads, uploads.c.id == t.upload_id))
        .where(t.organization_id == org.id)
        .order_by(t.id.desc())
        .limit(limit)
    )
    if status == Status.VALIDATED.value:
        query = query.where(validated(organization_id=org.id))
    elif status and status not in ACCEPTED:
        query = query.where(in_intake([status]))
    elif status:
        # EXPORTED: most of an organization's documents, found walking its ids newest first
        query = query.where(t.status == status)
    if month:
        year, number = (int(part) for part in month.split("-"))
        start = date(year, number, 1)
        end = date(year + number // 12, number % 12 + 1, 1)
        query = query.where(t.issue_date >= start, t.issue_date < end)
    with tenant_transaction(engine, org.id) as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
        ids = [r["id"] for r in rows]
        findings = _findings(conn, ids) if rows else {}
        notices = notices_of(conn, ids) if rows else {}
        discounts = discounts_of(conn, ids)
        duplicates = duplicates_of_documents(conn, org.id, ids)
        payments = payments_of(conn, ids) if rows else {}
    for row in rows:
        row["payment"] = payments.get(row["id"])
        row["discount"] = running_discount(discounts.get(row["id"], ()), today or date.today())
        row["findings"] = findings.get(row["id"], [])
        # the supplier's notice of a rejection: recipient, status (pending, sent, failed, ...)
        row["notice"] = notices.get(row["id"])
        # the same bytes dropped again: no document of their own, listed with this one
        row["duplicate_uploads"] = duplicates.get(row["id"], [])
    return rows


def show_document(
    engine: Engine, org: Organization, document_id: int, *, today: date | None = None
) -> dict | None:
    """One document: its values, its verdict, the findings of its latest processing, every
    review of it, its discount steps (`discounts`), the one a payment today still earns, and
    what was paid (`payment`, with each payment's day and amount)."""
    t = incoming_invoices.c
    with tenant_transaction(engine, org.id) as conn:
        row = (
            conn.execute(
                select(*(t[name] for name in LIST_COLUMNS), t.raw_json, uploads.c.filename)
                .select_from(incoming_invoices.outerjoin(uploads, uploads.c.id == t.upload_id))
                .where(t.organization_id == org.id, t.id == int(document_id))
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        document = {k: v for k, v in dict(row).items() if k != "raw_json"}
        raw = row["raw_json"] or {}
        document["verdict"] = raw.get("verdict")
        # a page's reading: which of its sums hold and the amounts none proves (proofs.py)
        document["proofs"] = raw.get("proofs")
        # read with the supplier's layout a person confirmed: which version, which fields
        document["learned_layout"] = raw.get("learned_layout")
        document["findings"] = _findings(conn, [row["id"]])[row["id"]]
        document["resolved_findings"] = _resolved(conn, row["id"])
        document["duplicate_uploads"] = duplicates_of_documents(conn, org.id, [row["id"]])[
            row["id"]
        ]
        document["notice"] = notices_of(conn, [row["id"]]).get(row["id"])
        document["payment_terms"] = (
            (raw.get("invoice") or {}) if isinstance(raw, dict) else {}
        ).get("payment_terms")
        document["discounts"] = discounts_of(conn, [row["id"]])[row["id"]]
        document["discount"] = running_discount(document["discounts"], today or date.today())
        document["payment"] = payments_of(conn, [row["id"]], each=True).get(row["id"])
        # how the original came, when by e-mail (the message's claims, never trusted alone)
        document["source"] = provenance(conn, org.id, [row["id"]]).get(row["id"])
        r = incoming_reviews.c
        document["reviews"] = [
            dict(x)
            for x in conn.execute(
                select(r.action, r.field, r.old_value, r.new_value, r.reviewed_by, r.reviewed_at)
                .where(r.incoming_invoice_id == row["id"])
                .order_by(r.id)
            ).mappings()
        ]
    return document


def set_policy(
    engine: Engine,
    org: Organization,
    changes: dict[str, str],
    *,
    by: str | None = None,
    reason: str | None = None,
) -> dict[str, str]:
    """The organization's intake policy after `changes` (class or hybrid_mismatch -> action);
    ValueError (PolicyError) names the first unknown key or action, and nothing is stored. The
    policy decides which documents are booked without a person, so a switch names who and why
    (`by`, `reason`: a ValueError without them) and is audited with the policy before and after,
    in its transaction; changes to what it is already change nothing and record nothing."""
    if not changes:
        return checked_policy(dict(org.settings.get(POLICY_SETTING) or {}))
    who, why = checked_who_and_why(by, reason, "the intake policy")
    checked: list[dict[str, str]] = []

    def changed(settings: dict) -> dict:
        stored = dict(settings.get(POLICY_SETTING) or {})
        checked.append(checked_policy({**stored, **changes}))  # refuses before anything is written
        return {**settings, POLICY_SETTING: {**stored, **changes}}

    with tenant_transaction(engine, org.id, write=True) as conn:
        before, after = change_settings(conn, org.id, changed)
        if after is not before:
            stored = before.get(POLICY_SETTING) or None
            record_policy_change(
                conn, org.id, POLICY_SETTING, stored, after[POLICY_SETTING], by=who, reason=why
            )
    return checked[0]
