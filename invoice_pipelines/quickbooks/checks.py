"""QuickBooks' asset checks (tokens near expiry, a switched company not imported yet, bills
waiting for a person, bills QuickBooks has at another amount) and `qbo_checks_job` /
`qbo_checks_schedule`, which evaluate them daily for every organization. What each finds is
check_findings.py's, without Dagster: the commands that change what one reads report it too."""

from collections.abc import Callable

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetChecksDefinition,
    AssetKey,
    ResourceParam,
    asset_check,
)
from sqlalchemy import Engine

from invoice_pipelines.lib.asset_metadata import check_result
from invoice_pipelines.metadata import CheckFinding
from invoice_pipelines.quickbooks.assets import SYNC_ASSETS
from invoice_pipelines.quickbooks.domain.check_findings import (
    BILL_AMOUNTS_CHECK,
    BILLS_WAITING_CHECK,
    COMPANY_CHECK,
    FINDINGS,
    TOKEN_CHECK,
    bill_amounts_finding,
    bills_waiting_finding,
    company_finding,
    tokens_finding,
)
from invoice_pipelines.scheduled_checks import evaluation, scheduled_checks


def _finding_check(
    asset: str, name: str, finding: Callable[[Engine, Engine], CheckFinding], description: str
) -> AssetChecksDefinition:
    """The check `name` of the sync asset `asset`: `finding` over every organization."""

    @asset_check(asset=SYNC_ASSETS[asset], name=name, description=description)
    def check(
        context: AssetCheckExecutionContext,
        database: ResourceParam[Engine],
        system_database: ResourceParam[Engine],
    ):
        return check_result(finding(database, system_database))

    return check


qbo_tokens_check = _finding_check(
    "customers",
    TOKEN_CHECK,
    tokens_finding,
    "Warns weeks ahead when an organization's QuickBooks refresh token nears its "
    "100-day idle expiry (30 days ahead) or Intuit's hard maximum (60 days ahead), or a refresh "
    "was refused: a person must reconnect the company before syncing stops.",
)

qbo_company_check = _finding_check(
    "customers",
    COMPANY_CHECK,
    company_finding,
    "Warns while an organization connected to another QuickBooks company waits for "
    "that company's import: the first company's links are archived and no push runs until "
    "`qbo-import` (or each first sync) read the new company's customers, items and vendors; "
    "lists every organization's latest switch, from which company to which, when, by whom, and "
    "whether its import is done.",
)

qbo_bills_waiting_check = _finding_check(
    "bills",
    BILLS_WAITING_CHECK,
    bills_waiting_finding,
    "Over the organizations that book their supplier invoices in QuickBooks (an "
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

qbo_bill_amounts_check = _finding_check(
    "bills",
    BILL_AMOUNTS_CHECK,
    bill_amounts_finding,
    "Fails when a bill's total in QuickBooks (as the last push or bill-payment pull "
    "read it) is not its supplier invoice's gross total: someone changed the bill in QuickBooks.",
)


def check_evaluations(
    engine: Engine, system: Engine, asset: AssetKey
) -> list[AssetCheckEvaluation]:
    """The checks of `asset` (qbo_customers, qbo_bills) evaluated now (check_findings.py), as
    the events a run logs beside a materialization it logs itself, or after it changed what they
    read (a launchpad push of chosen bills)."""
    return [
        evaluation(check_result(finding(engine, system)), asset, check_name=name)
        for name, finding in FINDINGS[asset.to_user_string()].items()
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
