"""What the checks of `incoming_invoices` find, built without Dagster (metadata.CheckFinding): one
rule and one set of queries each, which the intake run's checks and the scheduled ones wrap into
their results (checks.py, assets.py) and `incoming review` reports to the UI after it changed a
document (review_command.py, resources/dagster_instance/dagster_ui.py), so the UI shows every check evaluated on
the materialization the command reports. What each check means: checks.py."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import Engine

from invoice_pipelines.core.export_months import export_months
from invoice_pipelines.db.incoming_months import validated_outside_months
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.intake.domain.discounts import expiring_discounts
from invoice_pipelines.intake.domain.incoming_invoices import (
    documents_in_review,
    failed_documents,
    organization_stats,
    stuck_documents,
)
from invoice_pipelines.intake.domain.mailbox_status import provenance_figures
from invoice_pipelines.intake.domain.notice_states import rejected_documents
from invoice_pipelines.metadata import CheckFinding, Markdown, markdown_table

INCOMING_INVOICES = "incoming_invoices"
# the checks that judge an organization's documents (evaluated by the run that wrote them)
NO_FAILED = "no_failed_documents"
IN_REVIEW = "no_documents_waiting_for_review"
EXPORTABLE = "validated_invoices_exportable"
# the checks over every organization that watch what time does (a schedule, and every run)
STUCK_CHECK = "no_stuck_documents"
DISCOUNTS_CHECK = "discounts_not_expiring"
STUCK_AFTER = timedelta(minutes=5)
DISCOUNT_WARNING_DAYS = 3
TABLE_ROWS = 50
HOW_TO_REVIEW = (
    "invoice-pipelines incoming review --org ORG --id ID --version V [--set FIELD=VALUE ...] "
    "--confirm --by NAME, or review_incoming_invoice_job in the launchpad"
)


def failed_documents_table(failed: list[dict]) -> str:
    """A markdown table of FAILED documents: id, file, rule ids, first error message."""
    return markdown_table(
        ("id", "file", "rules", "message"),
        (
            (
                doc["id"],
                doc["filename"],
                ", ".join(doc["rules"]) or "-",
                doc["message"] if len(doc["message"]) <= 160 else doc["message"][:157] + "...",
            )
            for doc in failed
        ),
        limit=TABLE_ROWS,
    )


def no_failed_documents_finding(processed: int, failed: list[dict]) -> CheckFinding:
    metadata: dict[str, object] = {"processed": processed, "failed": len(failed)}
    if failed:
        metadata["failed_documents"] = Markdown(failed_documents_table(failed))
    return CheckFinding(
        passed=not failed,
        metadata=metadata,
        description=(
            f"{len(failed)} of {processed} documents of this run ended FAILED"
            if failed
            else f"all {processed} documents of this run were recorded without a FAILED verdict"
        ),
    )


def no_stuck_documents_finding(system: Engine) -> CheckFinding:
    with system_transaction(system) as conn:
        stuck = stuck_documents(conn, older_than=STUCK_AFTER)
    by_org: dict[str, int] = {}
    for doc in stuck:
        by_org[doc["slug"]] = by_org.get(doc["slug"], 0) + 1
    minutes = int(STUCK_AFTER.total_seconds() // 60)
    return CheckFinding(
        passed=not stuck,
        metadata={
            "stuck_documents": len(stuck),
            "by_organization": by_org,
            "oldest": [
                {"id": d["id"], "organization": d["slug"], "status": d["status"]}
                for d in stuck[:20]
            ],
        },
        description=f"{len(stuck)} documents waiting more than {minutes} minutes",
    )


def in_review_table(docs: list[dict], *, with_organization: bool = True) -> str:
    """A markdown table of documents in NEEDS_REVIEW: who sent what, since when and why."""
    header = ("id", "file", "invoice number", "supplier", "gross", "class", "since", "why")
    return markdown_table(
        (("organization",) if with_organization else ()) + header,
        (
            ((d["organization"],) if with_organization else ())
            + (
                d["id"],
                d["filename"] or "",
                d["invoice_number"] or "",
                d["seller_name"] or "",
                "" if d["gross_total"] is None else f"{d['gross_total']} {d['currency'] or ''}",
                ".".join(filter(None, (d["einvoice_class"], d["einvoice_reason"]))),
                d["status_changed_at"].strftime("%Y-%m-%d %H:%M") if d["status_changed_at"] else "",
                (f"{d['rule']}: " if d["rule"] else "") + d["why"][:160],
            )
            for d in docs
        ),
        align="lr" if with_organization else "r",
    )


def in_review_finding(count: int, docs: list[dict]) -> CheckFinding:
    """One organization's documents in review: `count` of them, the oldest `docs`."""
    metadata: dict[str, object] = {"in_review": count}
    if docs:
        metadata["documents_in_review"] = Markdown(
            in_review_table(docs, with_organization=False)
            + (f"\n\n(the oldest {len(docs)} of {count})" if count > len(docs) else "")
        )
    return CheckFinding(
        passed=not count,
        metadata=metadata,
        description=(
            f"{count} documents wait in NEEDS_REVIEW and are not booked until a person reviews "
            f"them: {HOW_TO_REVIEW}"
            if count
            else "no document waits for review"
        ),
    )


def way_out(doc: dict, first_month: str, last_month: str) -> str:
    """What to do about a VALIDATED document outside the export months, in one line."""
    month = doc["month"]
    if doc["side"] == "before":
        return (
            f"before the first export month {first_month}: restart the code location with "
            f"INVOICE_PIPELINES_EXPORT_START_MONTH={month}, then materialize "
            f"incoming_invoice_exports {month}|{doc['organization']}; or run "
            f"invoice-pipelines export --org {doc['organization']} --month {month} "
            "--direction incoming"
        )
    return (
        f"after the running month {last_month}: exported with {month} once that month begins "
        "(if the date is wrong, ask the supplier for a corrected invoice)"
    )


def not_exportable_table(docs: list[dict], first_month: str, last_month: str) -> str:
    return markdown_table(
        ("organization", "id", "file", "invoice number", "month", "way out"),
        (
            (
                d["organization"],
                d["id"],
                d["filename"],
                d["invoice_number"],
                d["month"],
                way_out(d, first_month, last_month),
            )
            for d in docs
        ),
        align="lr",
    )


def not_exportable_summary(count: int, first_month: str, last_month: str) -> str:
    return (
        f"{count} VALIDATED documents are dated outside the export months {first_month} to "
        f"{last_month}, so no export partition books them; for a month before {first_month} set "
        "INVOICE_PIPELINES_EXPORT_START_MONTH to it (then materialize that month) or run "
        "invoice-pipelines export --org ORG --month YYYY-MM --direction incoming"
    )


def exportable_finding(count: int, docs: list[dict], first: str, last: str) -> CheckFinding:
    """One organization's VALIDATED documents outside the export months `first` to `last`:
    `count` of them, the first `docs`."""
    metadata: dict[str, object] = {"not_exportable": count, "export_months": f"{first} to {last}"}
    if docs:
        metadata["not_exportable_documents"] = Markdown(
            not_exportable_table(docs, first, last)
            + (f"\n\n(the first {len(docs)} of {count})" if count > len(docs) else "")
        )
    return CheckFinding(
        passed=not count,
        metadata=metadata,
        description=(
            not_exportable_summary(count, first, last)
            if count
            else f"every VALIDATED document lies in an export month ({first} to {last})"
        ),
    )


def expiring_summary(found: list[dict], within_days: int) -> str:
    """'3 discounts worth 41.20 EUR expire within 3 days' (one sum per currency)."""
    worth: dict[str, Decimal] = defaultdict(Decimal)
    for d in found:
        worth[d["currency"] or "?"] += d["discount"]
    sums = " and ".join(f"{amount} {currency}" for currency, amount in sorted(worth.items()))
    noun = "discount" if len(found) == 1 else "discounts"
    verb = "expires" if len(found) == 1 else "expire"
    return f"{len(found)} {noun} worth {sums} {verb} within {within_days} days"


def expiring_table(found: list[dict]) -> str:
    return markdown_table(
        ("organization", "id", "invoice number", "supplier", "last day", "Skonto", "pay"),
        (
            (
                d["slug"],
                d["id"],
                d["invoice_number"] or "",
                d["seller_name"] or "",
                d["last_day"].isoformat(),
                f"{d['percent']} % = {d['discount']} {d['currency'] or ''}",
                f"{d['pay']} {d['currency'] or ''}",
            )
            for d in found
        ),
        align="lr",
        limit=TABLE_ROWS,
    )


def discounts_finding(found: list[dict], within_days: int) -> CheckFinding:
    metadata: dict[str, object] = {"expiring_discounts": len(found)}
    if found:
        metadata["discounts"] = Markdown(expiring_table(found))
    return CheckFinding(
        passed=not found,
        metadata=metadata,
        description=expiring_summary(found, within_days)
        if found
        else f"no early-payment discount of a booked invoice expires within {within_days} days",
    )


def discounts_now_finding(system: Engine) -> CheckFinding:
    with system_transaction(system) as conn:
        found = expiring_discounts(conn, date.today(), DISCOUNT_WARNING_DAYS)
    return discounts_finding(found, DISCOUNT_WARNING_DAYS)


@dataclass(frozen=True)
class JudgedDocuments:
    """What the three checks that judge an organization's documents read, read once: a run
    records some of it as the asset's metadata too."""

    processed: int
    failed: list[dict]
    in_review: int
    in_review_docs: list[dict]
    outside: int
    outside_docs: list[dict]
    first_month: str
    last_month: str

    def findings(self) -> dict[str, CheckFinding]:
        """Each check's finding, by its name, in the order the asset declares them."""
        return {
            NO_FAILED: no_failed_documents_finding(self.processed, self.failed),
            IN_REVIEW: in_review_finding(self.in_review, self.in_review_docs),
            EXPORTABLE: exportable_finding(
                self.outside, self.outside_docs, self.first_month, self.last_month
            ),
        }


def judge_documents(
    conn, organization_id: int, processed: int, changed_ids: list[int]
) -> JudgedDocuments:
    """An organization's documents after `processed` of them changed (`changed_ids`: those that
    may have ended FAILED): what the judging checks read."""
    first, last = export_months()
    outside_count, outside = validated_outside_months(
        conn, first, last, organization_id=organization_id, limit=TABLE_ROWS
    )
    waiting, waiting_docs = documents_in_review(
        conn, organization_id=organization_id, limit=TABLE_ROWS
    )
    return JudgedDocuments(
        processed=processed,
        failed=failed_documents(conn, organization_id, changed_ids),
        in_review=sum(waiting.values()),
        in_review_docs=waiting_docs,
        outside=outside_count,
        outside_docs=outside,
        first_month=first,
        last_month=last,
    )


def scheduled_findings(system: Engine) -> dict[str, CheckFinding]:
    """The two checks over every organization, evaluated now (each one statement) on the system
    engine `system`."""
    return {
        STUCK_CHECK: no_stuck_documents_finding(system),
        DISCOUNTS_CHECK: discounts_now_finding(system),
    }


@dataclass
class RunFindings:
    """What an intake run's materialization shows, read after the run in one transaction: the
    organization's figures, the run's documents as the three judging checks see them, the
    documents rejected, and where those that came by e-mail came from."""

    stats: dict
    judged: JudgedDocuments
    rejected: list
    emailed: object


def run_findings(
    engine: Engine,
    organization_id: int,
    processed: int,
    failures: list[int],
    document_ids: list[int],
) -> RunFindings:
    """The findings of an intake run that processed `processed` documents (`failures`: the ids
    of those that FAILED) of those it was given (`document_ids`)."""
    with tenant_transaction(engine, organization_id) as conn:
        return RunFindings(
            stats=organization_stats(conn, organization_id),
            # some of what the checks read is recorded too (judge_documents)
            judged=judge_documents(conn, organization_id, processed, sorted(failures)),
            rejected=rejected_documents(conn, organization_id, limit=TABLE_ROWS),
            # the message's claims, not more
            emailed=provenance_figures(conn, organization_id, list(document_ids)),
        )
