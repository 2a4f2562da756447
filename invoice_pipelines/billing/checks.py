"""Asset checks that guard `sales_invoices`.

Both checks are ERROR: a gap in the numbers or totals that do not add up is broken data that a tax
auditor would find, never a matter of one bad input (bad orders end as failed batch items, and
the invoices written are still whole). Every batch invoicing run evaluates them for its
organization; `sales_invoices_checks_job` evaluates them for every organization on demand and
on its schedule (both at the end of this module).

- `gapless_invoice_numbers`: the organization's sequence numbers are 1, 2, ... with no gap and no
  duplicate, and the number sequence has handed out no number that no invoice carries.
- `reviewed_orders_invoiced` (daily, WARN): the daily work keeps up; no reviewed order dated
  before yesterday is still waiting for its invoice. WARN: late invoicing costs money, it does not
  break data.
- `totals_consistent`: per invoice, each line's net is quantity x price rounded to cents, the
  VAT breakdown has one row per (category, rate) with basis = sum of those lines and VAT = basis x
  rate rounded, and net, VAT and gross totals are the sums (`core/totals.py`).
"""

from collections.abc import Iterable
from datetime import date, timedelta

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    MetadataValue,
    ResourceParam,
    multi_asset_check,
)
from sqlalchemy import Engine

from invoice_pipelines.billing.domain.check_queries import SALES_INVOICES, SHOWN, audit_findings
from invoice_pipelines.scheduled_checks import scheduled_checks

gapless_numbers_spec = AssetCheckSpec(
    "gapless_invoice_numbers",
    asset=SALES_INVOICES,
    description="The organization's invoice sequence numbers run 1, 2, ... without gap or "
    "duplicate, up to the last number handed out. ERROR: a gap is a missing invoice to an auditor.",
)
totals_spec = AssetCheckSpec(
    "totals_consistent",
    asset=SALES_INVOICES,
    description="Every invoice's line nets, VAT breakdown per (category, rate) and net/VAT/gross "
    "totals agree with its lines (EN 16931 rounding). ERROR: the books would not balance.",
)


def gapless_numbers_result(
    found: dict, check_name: str = gapless_numbers_spec.name
) -> AssetCheckResult:
    notes = found.get("credit_notes") or {"invoices": 0, "highest": 0, "gaps": [], "duplicates": 0}
    passed = not (found["gaps"] or found["duplicates"] or notes["gaps"] or notes["duplicates"])
    metadata = {
        "invoices": MetadataValue.int(found["invoices"]),
        "highest_number": MetadataValue.int(found["highest"]),
        "gaps": MetadataValue.int(len(found["gaps"])),
        "duplicates": MetadataValue.int(found["duplicates"]),
        "first_gaps": MetadataValue.json(found["gaps"][:SHOWN]),
    }
    description = (
        f"{found['invoices']} invoices numbered 1..{found['highest']} without gap"
        if not (found["gaps"] or found["duplicates"])
        else f"{len(found['gaps'])} missing numbers, {found['duplicates']} duplicates"
    )
    if notes["invoices"] or notes["gaps"]:
        metadata.update(
            credit_notes=MetadataValue.int(notes["invoices"]),
            credit_note_gaps=MetadataValue.int(len(notes["gaps"])),
            credit_note_duplicates=MetadataValue.int(notes["duplicates"]),
            first_credit_note_gaps=MetadataValue.json(notes["gaps"][:SHOWN]),
        )
        description += (
            f"; {notes['invoices']} credit notes numbered 1..{notes['highest']} without gap"
            if not (notes["gaps"] or notes["duplicates"])
            else f"; credit notes: {len(notes['gaps'])} missing numbers, "
            f"{notes['duplicates']} duplicates"
        )
    return AssetCheckResult(
        check_name=check_name,
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        metadata=metadata,
        description=description,
    )


def totals_result(found: dict, scope: str, check_name: str = totals_spec.name) -> AssetCheckResult:
    wrong = found["wrong"]
    return AssetCheckResult(
        check_name=check_name,
        passed=not wrong,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "checked_invoices": MetadataValue.int(found["checked"]),
            "inconsistent_invoices": MetadataValue.int(len(wrong)),
            "scope": MetadataValue.text(scope),
            "first_problems": MetadataValue.json(wrong[:SHOWN]),
        },
        description=(
            f"{found['checked']} invoices ({scope}) add up"
            if not wrong
            else f"{len(wrong)} of {found['checked']} invoices ({scope}) do not add up"
        ),
    )


@multi_asset_check(
    specs=[
        AssetCheckSpec(
            "gapless_invoice_numbers_all_organizations",
            asset=SALES_INVOICES,
            description="gapless_invoice_numbers for every active organization at once (daily; each "
            "batch run shows the last audit's finding with when it was made).",
        ),
        AssetCheckSpec(
            "totals_consistent_all_organizations",
            asset=SALES_INVOICES,
            description="totals_consistent over every invoice of every active organization (daily; "
            "each batch run shows the last audit's finding with when it was made).",
        ),
        AssetCheckSpec(
            "reviewed_orders_invoiced",
            asset=SALES_INVOICES,
            description="Freshness of the daily work: no reviewed sales order dated before "
            "yesterday is still waiting for its invoice (WARN; daily, restated by each batch run).",
        ),
    ],
    description="The sales invoice checks over every organization and every invoice.",
)
def sales_invoices_audit(
    context: AssetCheckExecutionContext,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
):
    yield from audit_results(database, system_database)


# the audit's checks, which a batch run restates from the last audit (scheduled_checks.latest_or_now)
AUDIT_CHECKS = (
    "gapless_invoice_numbers_all_organizations",
    "totals_consistent_all_organizations",
    "reviewed_orders_invoiced",
)


def audit_results(engine: Engine, system: Engine) -> Iterable[AssetCheckResult]:
    """The audit over every active organization (found on the system engine `system`) and every
    invoice (read as its organization's on `engine`), one result per check."""
    before = date.today() - timedelta(days=1)
    found = audit_findings(engine, system, before)
    gaps, late = found.gaps, found.late
    yield AssetCheckResult(
        check_name="gapless_invoice_numbers_all_organizations",
        passed=not gaps,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "organizations": MetadataValue.int(found.organizations),
            "organizations_with_gaps": MetadataValue.json(gaps),
        },
        description=f"{len(gaps)} of {found.organizations} organizations have gaps or duplicates",
    )
    yield totals_result(
        {"checked": found.checked, "wrong": found.wrong},
        "every organization",
        check_name="totals_consistent_all_organizations",
    )
    yield AssetCheckResult(
        check_name="reviewed_orders_invoiced",
        passed=not late,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "waiting_orders": MetadataValue.int(sum(late.values())),
            "by_organization": MetadataValue.json(late),
        },
        description=f"{sum(late.values())} reviewed orders dated before {before} not invoiced yet",
    )


sales_invoices_checks_job, sales_invoices_checks_schedule = scheduled_checks(
    "sales_invoices_checks",
    [sales_invoices_audit],
    cron="30 2 * * *",
    job_description="Checks numbering and totals of every sales invoice of every organization.",
    schedule_description="Daily at 02:30 (Berlin): gapless numbers and consistent totals across all "
    "organizations, beside the per-run checks of batch_invoicing_job.",
)
