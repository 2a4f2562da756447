"""The organizations as a person reads them: `organizations list` and `show`, and the
`organizations` asset's table. Reads only (no Dagster): each organization's values, its state
(active, suspended with the reason, offboarded) and, for one, what it holds and its audit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, desc, func, select

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.organization_values import FIELDS
from invoice_pipelines.core.readiness import gaps, held_because, missing_text
from invoice_pipelines.db.tables import (
    audit_log,
    customers,
    incoming_invoices,
    organizations,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import UnknownOrganization, system_transaction
from invoice_pipelines.metadata import CheckFinding
from invoice_pipelines.tenants.domain.lifecycle import WAITING_STATUSES, state_of

READY_CHECK = "organizations_ready"  # the `organizations` asset's checks (tenants/assets.py)
HELD_CHECK = "no_uploads_held"
if TYPE_CHECKING:
    from invoice_pipelines.resources.files.uploads import Uploads

LIFECYCLE = ("suspended_at", "suspended_by", "suspension_reason", "offboarded_at", "offboarded_by")
AUDIT_SHOWN = 10


def list_organizations(system: Engine, state: str | None = None) -> list[dict[str, Any]]:
    """Every organization (slug order) with its values and state; `state`: only those in it."""
    with system_transaction(system) as conn:
        rows = conn.execute(
            select(
                organizations.c.id,
                *(organizations.c[name] for name in FIELDS),
                organizations.c.active,
                *(organizations.c[name] for name in LIFECYCLE),
            ).order_by(organizations.c.slug)
        ).mappings()
        listed = [{**row, "state": state_of(row)} for row in rows]
    return [row for row in listed if state is None or row["state"] == state]


def state_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(("active", "suspended", "offboarded", "inactive"), 0)
    for row in rows:
        counts[row["state"]] += 1
    return counts


def organization_facts(shown: dict[str, Any]) -> dict[str, object]:
    """What the `organizations` asset records of one organization (show_organization's answer),
    as plain values: a run's materialization and a command's report to Dagster alike."""
    facts: dict[str, object] = {
        "state": shown["state"],
        "name": shown["name"],
        "country": shown["country"],
        "vat_id": shown["vat_id"] or "",
        "datev": f"{shown['datev_berater_nr'] or '-'}/{shown['datev_mandant_nr'] or '-'} "
        f"{shown['datev_chart']}",
        "invoice_number_format": shown["invoice_number_format"],
        "uploads_waiting": shown["holds"]["uploads_waiting"],
        **(
            {"uploads_waiting_because": shown["holds"]["uploads_waiting_because"]}
            if shown["holds"].get("uploads_waiting_because")
            else {}
        ),
        "missing": missing_text(shown) or "nothing",
    }
    if shown.get("suspension_reason"):
        facts["suspension_reason"] = shown["suspension_reason"]
        facts["suspended_at"] = str(shown["suspended_at"])
        facts["suspended_by"] = shown.get("suspended_by") or ""
    if shown.get("offboarded_at"):
        facts["offboarded_at"] = str(shown["offboarded_at"])
    return facts


def show_organization(
    system: Engine, organization: Organization, uploads: Uploads | None = None
) -> dict[str, Any]:
    """One organization as it is now (read again by its id): its values, state, what it holds,
    and its latest audit rows. Gone since it was looked up: UnknownOrganization.

    `uploads`: its drop zone, whose files not registered yet count as waiting too (issue 85: a
    suspended organization's files are not registered until it is resumed, and were counted
    nowhere), with the suspension's reason when that is why they wait."""
    with system_transaction(system) as conn:
        row = (
            conn.execute(select(organizations).where(organizations.c.id == organization.id))
            .mappings()
            .first()
        )
        if row is None:
            raise UnknownOrganization(organization.slug)
        org = dict(row)
        held = {
            name: conn.execute(
                select(func.count()).where(table.c.organization_id == org["id"])
            ).scalar_one()
            for name, table in (
                ("customers", customers),
                ("sales_invoices", sales_invoices),
                ("incoming_invoices", incoming_invoices),
            )
        }
        held["uploads_waiting"] = conn.execute(
            select(func.count()).where(
                incoming_invoices.c.organization_id == org["id"],
                incoming_invoices.c.status.in_(WAITING_STATUSES),
            )
        ).scalar_one()
        audit = conn.execute(
            select(
                audit_log.c.created_at,
                audit_log.c.created_by,
                audit_log.c.action,
                audit_log.c.details,
            )
            .where(
                audit_log.c.organization_id == org["id"], audit_log.c.entity_type == "organization"
            )
            .order_by(desc(audit_log.c.id))
            .limit(AUDIT_SHOWN)
        ).mappings()
        audit_rows = [dict(row) for row in audit]
    if uploads is not None:
        held["uploads_waiting"] += len(uploads.list_inbox(org["slug"]))
        reason = waiting_reason(org, held["uploads_waiting"])
        if reason:
            held["uploads_waiting_because"] = reason
    values = {name: org[name] for name in (*FIELDS, "currency", "timezone")}
    lifecycle = {name: org[name] for name in LIFECYCLE if org[name] is not None}
    missing = [gap.sentence(org["slug"]) for gap in gaps(org)]
    return {
        "state": state_of(org),
        **values,
        **lifecycle,
        "missing": missing,
        "holds": held,
        "audit": audit_rows,
    }


def waiting_reason(org: dict[str, Any], waiting: int) -> str:
    """Why an organization's waiting uploads wait unread ("" when none wait or nothing holds
    them); `org` its row."""
    return held_because(Organization.from_row(org)) if waiting else ""


def held_finding(shown: dict[str, Any]) -> CheckFinding:
    """The `no_uploads_held` check of one organization: warns while files wait in its drop zone
    that nothing reads because it is suspended (or offboarded), with the reason and the way on."""
    holds = shown["holds"]
    because = holds.get("uploads_waiting_because")
    if not because:
        return CheckFinding(True, f"No upload of {shown['slug']} is held.")
    waiting = holds["uploads_waiting"]
    return CheckFinding(
        False,
        f"{waiting} upload(s) of {shown['slug']} wait unread, {because}; "
        f"`invoice-pipelines organizations resume {shown['slug']}` reads them.",
        metadata={"uploads_waiting": waiting, "because": because},
    )


def organization_findings(shown: dict[str, Any]) -> dict[str, CheckFinding]:
    """The `organizations` asset's checks of one organization, by name: what its run, a
    lifecycle job and a command report alike."""
    return {READY_CHECK: readiness_finding(shown), HELD_CHECK: held_finding(shown)}


def readiness_finding(shown: dict[str, Any]) -> CheckFinding:
    """The `organizations_ready` check of one organization (show_organization's answer): passes
    when it lacks nothing its runs need; else a warning naming each setting left out and what
    it holds back (core/readiness.py), never a failed run."""
    missing = shown["missing"]
    if not missing:
        return CheckFinding(True, f"{shown['slug']} has every setting its runs need.")
    return CheckFinding(
        False,
        "; ".join(missing) + ".",
        metadata={"missing": missing_text(shown)},
    )
