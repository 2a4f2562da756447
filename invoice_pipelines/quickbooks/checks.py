"""QuickBooks' asset checks (tokens near expiry, a switched company not imported yet, bills
waiting for a person, bills QuickBooks has at another amount) and `qbo_checks_job` / `qbo_checks_schedule`, which evaluate them daily for
every organization."""

from datetime import UTC, datetime

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    MetadataValue,
    ResourceParam,
    asset_check,
)
from sqlalchemy import Engine

from invoice_pipelines.metadata import markdown_table
from invoice_pipelines.quickbooks.assets import SYNC_ASSETS
from invoice_pipelines.quickbooks.company import company_switches
from invoice_pipelines.quickbooks.watch import (
    bill_amount_differences,
    token_problems,
    waiting_bills,
)
from invoice_pipelines.scheduled_checks import evaluation, scheduled_checks

TOKEN_CHECK = "tokens_not_expiring"
COMPANY_CHECK = "company_switch"
BILLS_WAITING_CHECK = "bills_waiting"
BILL_AMOUNTS_CHECK = "bill_amounts_agree"


@asset_check(
    asset=SYNC_ASSETS["customers"],
    name=TOKEN_CHECK,
    description="Warns weeks ahead when an organization's QuickBooks refresh token nears its "
    "100-day idle expiry (30 days ahead) or Intuit's hard maximum (60 days ahead), or a refresh "
    "was refused: a person must reconnect the company before syncing stops.",
)
def qbo_tokens_check(context: AssetCheckExecutionContext, database: ResourceParam[Engine]):
    return tokens_result(database)


def tokens_result(engine: Engine) -> AssetCheckResult:
    connections, problems = token_problems(engine, datetime.now(UTC))
    return AssetCheckResult(
        passed=not problems,
        severity=AssetCheckSeverity.WARN,
        description=(
            f"All {connections} QuickBooks connection(s) have tokens for weeks to come."
            if not problems
            else f"{len(problems)} connection(s) need a person to reconnect QuickBooks soon."
        ),
        metadata={
            "connections": connections,
            "problems": len(problems),
            **(
                {"reconnect": MetadataValue.md(markdown_table(("organization", "why"), problems))}
                if problems
                else {}
            ),
        },
    )


@asset_check(
    asset=SYNC_ASSETS["customers"],
    name=COMPANY_CHECK,
    description="Warns while an organization connected to another QuickBooks company waits for "
    "that company's import: the first company's links are archived and no push runs until "
    "`qbo-import` (or each first sync) read the new company's customers, items and vendors; "
    "lists every organization's latest switch, from which company to which, when, by whom, and "
    "whether its import is done.",
)
def qbo_company_check(context: AssetCheckExecutionContext, database: ResourceParam[Engine]):
    return company_result(database)


def company_result(engine: Engine) -> AssetCheckResult:
    switches = company_switches(engine)
    pending = [s for s in switches if s.import_done_at is None]
    rows = [
        (s.organization, s.old_realm_id, s.new_realm_id, f"{s.switched_at:%Y-%m-%d %H:%M}",
         s.switched_by, "done" if s.import_done_at else "pending")
        for s in switches
    ]  # fmt: skip
    metadata: dict = {"switched": len(switches), "import_pending": len(pending)}
    if rows:
        columns = ("organization", "from", "to", "at (UTC)", "by", "import")
        metadata["switches"] = MetadataValue.md(markdown_table(columns, rows))
    return AssetCheckResult(
        passed=not pending,
        severity=AssetCheckSeverity.WARN,
        description=(
            "; ".join(s.said() for s in pending)
            if pending
            else "No organization waits for the import of a QuickBooks company it switched to."
        ),
        metadata=metadata,
    )


def _listing(
    count: int,
    rows: list[tuple],
    *,
    fine: str,
    found: str,
    key: str,
    table: str,
    columns: tuple[str, ...],
    warn: bool = False,
) -> AssetCheckResult:
    """A check that lists what it found: passed when nothing, else the rows as a table."""
    metadata: dict = {key: count}
    if rows:
        metadata[table] = MetadataValue.md(markdown_table(columns, rows))
    return AssetCheckResult(
        passed=count == 0,
        severity=AssetCheckSeverity.WARN if warn else AssetCheckSeverity.ERROR,
        description=fine if not count else found.format(count=count),
        metadata=metadata,
    )


@asset_check(
    asset=SYNC_ASSETS["bills"],
    name=BILLS_WAITING_CHECK,
    description="Over the organizations that book their supplier invoices in QuickBooks (an "
    "expense account set; the others keep them for DATEV), evaluated by every bill push run, the "
    "daily qbo_checks_schedule and the commands that change what it lists: warns when supplier "
    "invoices wait to become QuickBooks bills for something a "
    "person sets up: a vendor to create (or the organization's permission to create vendors), "
    "an expense account, a tax code or an exchange rate; or for a person's decision: an invoice "
    "with more lines than a bill takes, a paid bill whose document is back in review or failed "
    "(not deleted), a supplier registered by its first invoice that no person has confirmed; "
    "or for the import of a QuickBooks company the organization switched to; lists each with "
    "its finding.",
)
def qbo_bills_waiting_check(context: AssetCheckExecutionContext, database: ResourceParam[Engine]):
    return bills_waiting_result(database)


def bills_waiting_result(engine: Engine) -> AssetCheckResult:
    count, waiting = waiting_bills(engine)  # the query `qbo-payables` lists
    return _listing(
        count,
        [row.cells() for row in waiting],
        fine="No supplier invoice waits to become a QuickBooks bill.",
        found="{count} supplier invoice(s) wait for a vendor, an account, a setting, a "
        "person's decision or confirmation, or a company's import.",
        key="waiting",
        table="documents",
        columns=("organization", "document", "number", "supplier", "waits for", "why"),
        warn=True,
    )


@asset_check(
    asset=SYNC_ASSETS["bills"],
    name=BILL_AMOUNTS_CHECK,
    description="Fails when a bill's total in QuickBooks (as the last push or bill-payment pull "
    "read it) is not its supplier invoice's gross total: someone changed the bill in QuickBooks.",
)
def qbo_bill_amounts_check(context: AssetCheckExecutionContext, database: ResourceParam[Engine]):
    return bill_amounts_result(database)


def bill_amounts_result(engine: Engine) -> AssetCheckResult:
    count, rows = bill_amount_differences(engine)
    return _listing(
        count,
        rows,
        fine="Every bill in QuickBooks has its supplier invoice's total.",
        found="{count} bill(s) in QuickBooks differ from their supplier invoice's total.",
        key="differing",
        table="bills",
        columns=("organization", "document", "number", "our total", "QBO's total"),
    )


# each check by what it reads: evaluated by a run (or recorded by a command) that changed that
CHECKS = {
    SYNC_ASSETS["customers"].key: {TOKEN_CHECK: tokens_result, COMPANY_CHECK: company_result},
    SYNC_ASSETS["bills"].key: {
        BILLS_WAITING_CHECK: bills_waiting_result,
        BILL_AMOUNTS_CHECK: bill_amounts_result,
    },
}


def check_evaluations(engine: Engine, asset: AssetKey) -> list[AssetCheckEvaluation]:
    """The checks of `asset` (qbo_customers, qbo_bills) evaluated now, as the events a run logs
    beside a materialization it logs itself, or a command records on the instance after it
    changed what they read (`DagsterInstance.report_runless_asset_event`, each): `qbo-payables`
    setting an account or a rate, `suppliers confirm`, a launchpad push of chosen bills."""
    return [
        evaluation(result(engine), asset, check_name=name) for name, result in CHECKS[asset].items()
    ]


qbo_checks_job, qbo_checks_schedule = scheduled_checks(
    "qbo_checks",
    [qbo_tokens_check, qbo_company_check, qbo_bills_waiting_check, qbo_bill_amounts_check],
    cron="15 6 * * *",
    job_description="Checks every organization's QuickBooks tokens for coming expiry, the "
    "supplier invoices waiting to become bills, the bills QuickBooks has at another amount and "
    "the companies switched to whose import is pending.",
    schedule_description="Daily at 06:15 (Berlin): QuickBooks tokens that expire soon, supplier "
    "invoices that wait to become bills, bills whose amount differs from QuickBooks'.",
)
