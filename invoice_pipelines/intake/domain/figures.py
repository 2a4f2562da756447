"""What the intake's assets show of an organization, built without Dagster from the database, so
a run records it (intake/assets.py, as typed metadata) and a command that changed it reports the
same to the UI at once (resources/dagster_instance/dagster_ui.py): the supplier register as `supplier_register`
shows it (`register_figures`), and the organization's documents as `incoming_invoices` shows them
after any change (`documents_figures`: counts by status, shares, what waits for review and the
supplier notices of rejected documents). And what the register's two checks find
(`register_findings`, metadata.CheckFinding): its runs' checks wrap it (checks.py), the commands
that change the register report it beside the register (here, not beside the incoming checks'
findings in check_findings.py: `suppliers list` loads this module and no more of the intake)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from sqlalchemy import select

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.suppliers import Claim, compare, name_skeleton
from invoice_pipelines.db.incoming_status import validated
from invoice_pipelines.db.tables import incoming_invoices
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.intake.domain.incoming_invoices import (
    documents_in_review,
    organization_stats,
)
from invoice_pipelines.intake.domain.notice_states import rejected_documents
from invoice_pipelines.metadata import CheckFinding, Markdown, markdown_table
from invoice_pipelines.resources.dagster_instance.dagster_ui import (
    RECORDED_BY,
    AssetEvent,
    CheckEvent,
)
from invoice_pipelines.supplier_register import (
    load_register,
    own_party,
    register_counts,
    supplier_policy,
    supplier_rows,
)

SUPPLIER_REGISTER, INCOMING_INVOICES = "supplier_register", "incoming_invoices"
# the register's rows a materialization lists (the checks' tables are as long)
REGISTER_ROWS = 50
NOTICE_STATES = ("pending", "sent", "failed", "unknown")
TOLD_APART_CHECK = "suppliers_told_apart"
REGISTERED_CHECK = "booked_documents_from_registered_suppliers"


def _iban_shown(iban: str) -> str:
    return f"{iban[:4]} … {iban[-4:]}" if len(iban) > 8 else iban


def register_figures(conn, organization: Organization) -> dict[str, object]:
    """What the UI shows of one organization's register: counts, the policy, the suppliers."""
    rows = supplier_rows(conn, organization.id, active_only=True)
    table = markdown_table(
        ["id", "name", "VAT id", "IBANs", "notice address", "QBO vendor", "DATEV", "confirmed"],
        [
            (
                r["id"],
                r["name"],
                r["vat_id"] or "-",
                ", ".join(_iban_shown(a["iban"]) for a in r["bank_accounts"]) or "-",
                r["notice_email"] or "-",
                r["qbo_vendor_id"] or "-",
                r["datev_creditor_account"] or "-",
                f"by {r['confirmed_by']}" if r["confirmed_at"] else "no: no QuickBooks bill yet",
            )
            for r in rows
        ],
        limit=REGISTER_ROWS,
    )
    counts = register_counts(conn, organization.id)
    return {
        **{key.replace(" ", "_"): value for key, value in counts.items()},
        "policy": supplier_policy(organization),
        "suppliers_table": Markdown(table),
    }


def documents_figures(conn, organization_id: int) -> dict[str, object]:
    """The organization's documents as `incoming_invoices` shows them after its latest run,
    now: total, shares, counts by status, what waits for review and the notices' states."""
    stats = organization_stats(conn, organization_id)
    figures: dict[str, object] = {
        "total": stats["total"],
        "exported_rate_pct": float(stats["exported_rate"]),
        "passed_validation_rate_pct": float(stats["passed_validation_rate"]),
        "failed_rate_pct": float(stats["failed_rate"]),
    }
    for status, count in stats["by_status"].items():
        figures[f"count_{status.lower()}"] = count
    if stats["avg_processing_seconds"] is not None:
        figures["avg_processing_seconds"] = float(stats["avg_processing_seconds"])
    waiting, _docs = documents_in_review(conn, organization_id=organization_id, limit=1)
    figures["waiting_for_review"] = sum(waiting.values())
    notices, rejected = rejected_documents(conn, organization_id, limit=REGISTER_ROWS)
    for state in NOTICE_STATES:
        figures[f"notices_{state}"] = notices.get(state, 0)
    if rejected:
        figures["rejected_documents"] = Markdown(rejected_table(rejected))
    return figures


def rejected_table(rows) -> str:
    """The organization's rejected documents and the state of each one's supplier notice."""
    return markdown_table(
        ("id", "file", "invoice number", "class", "notice to", "notice", "why not sent"),
        (
            (
                r.incoming_invoice_id,
                r.filename or "",
                r.invoice_number or "",
                ".".join(filter(None, (r.einvoice_class, r.einvoice_reason))),
                r.recipient or "(no address)",
                r.status,
                (r.error or "")[:160],
            )
            for r in rows
        ),
        align="r",
    )


def event(asset: str, organization: Organization, figures: dict, by: str) -> AssetEvent:
    """A command's report of what `asset` shows of the organization now, saying who changed it."""
    return AssetEvent(asset, organization.slug, {**figures, RECORDED_BY: by})


def _look_alikes(conn, organization_id: int) -> list[tuple]:
    names: dict[str, list] = defaultdict(list)
    for row in supplier_rows(conn, organization_id, active_only=True):
        for name in {row["name"], *row["other_names"]}:
            names[name_skeleton(name)].append((row["id"], name))
    return [
        tuple(found)
        for found in names.values()
        if len({supplier_id for supplier_id, _ in found}) > 1
    ]


def _unregistered(conn, organization: Organization) -> list[tuple]:
    """The VALIDATED documents whose seller the register does not agree with."""
    organization_id = organization.id
    t = incoming_invoices.c
    register = load_register(conn, organization_id)
    own = own_party(organization)
    found = []
    for row in conn.execute(
        select(t.id, t.seller_name, t.seller_vat_id).where(
            t.organization_id == organization_id, validated(organization_id=organization_id)
        )
    ):
        comparison = compare(register, Claim(row.seller_name, row.seller_vat_id), own)
        if comparison.supplier is None or not comparison.agrees:
            found.append((row.id, row.seller_name or "-", row.seller_vat_id or "-"))
    return found


def register_findings(conn, organization: Organization) -> dict[str, CheckFinding]:
    """What the register's two checks find for one organization, by check name."""
    pairs = _look_alikes(conn, organization.id)
    unregistered = _unregistered(conn, organization)
    return {
        TOLD_APART_CHECK: CheckFinding(
            passed=not pairs,
            description=f"{len(pairs)} groups of active suppliers share a name by what a person "
            "sees"
            if pairs
            else "every active supplier's name is told apart from the others'",
            metadata={
                "look_alike_groups": len(pairs),
                "groups": Markdown(
                    markdown_table(
                        ["suppliers (id: name)"],
                        [["; ".join(f"{i}: {n}" for i, n in group)] for group in pairs],
                        limit=REGISTER_ROWS,
                    )
                ),
            },
        ),
        REGISTERED_CHECK: CheckFinding(
            passed=not unregistered,
            description=f"{len(unregistered)} VALIDATED documents come from a supplier the "
            "register does not agree with"
            if unregistered
            else "every VALIDATED document comes from a supplier the register agrees with",
            metadata={
                "documents": len(unregistered),
                "waiting": Markdown(
                    markdown_table(
                        ["document", "seller", "VAT id"], unregistered, limit=REGISTER_ROWS
                    )
                ),
            },
        ),
    }


def register_check_events(conn, organization: Organization) -> list[CheckEvent]:
    """The register's checks evaluated now, as a command reports them beside the register."""
    return [
        CheckEvent(SUPPLIER_REGISTER, name, finding, organization.slug)
        for name, finding in register_findings(conn, organization).items()
    ]


def register_events(engine, organization: Organization, by: str) -> Iterator:
    """The register as `supplier_register` shows it after a change, with its two checks
    evaluated on it (the UI never shows its latest materialization unchecked), saying who
    changed it: what a change's `report` hears (a run records it, a command posts it). Read
    when iterated, so a report nobody listens to reads nothing."""
    with tenant_transaction(engine, organization.id) as conn:
        figures = register_figures(conn, organization)
        events = [event(SUPPLIER_REGISTER, organization, figures, by)]
        events += register_check_events(conn, organization)
    yield from events
