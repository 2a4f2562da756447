"""What QuickBooks' checks find, built without Dagster (metadata.CheckFinding): one rule each over
every organization, which the checks of `qbo_customers` and `qbo_bills` wrap into their results
(checks.py) and the commands that changed what a check reads report to the UI
(sync_commands.py, commands.py; resources/dagster_instance/dagster_ui.py), so the UI shows each check evaluated
on the materialization the command reported, or with what changed. What each means: checks.py."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from sqlalchemy import Engine

from invoice_pipelines.metadata import CheckFinding, Markdown, markdown_table
from invoice_pipelines.quickbooks.domain.company import company_switches
from invoice_pipelines.quickbooks.domain.watch import (
    bill_amount_differences,
    token_problems,
    waiting_bills,
)
from invoice_pipelines.resources.dagster_instance.dagster_ui import CheckEvent

CUSTOMERS, BILLS = "qbo_customers", "qbo_bills"
TOKEN_CHECK = "tokens_not_expiring"
COMPANY_CHECK = "company_switch"
BILLS_WAITING_CHECK = "bills_waiting"
BILL_AMOUNTS_CHECK = "bill_amounts_agree"


def tokens_finding(engine: Engine, system: Engine) -> CheckFinding:
    connections, problems = token_problems(system, datetime.now(UTC))
    return CheckFinding(
        passed=not problems,
        description=(
            f"All {connections} QuickBooks connection(s) have tokens for weeks to come."
            if not problems
            else f"{len(problems)} connection(s) need a person to reconnect QuickBooks soon."
        ),
        metadata={
            "connections": connections,
            "problems": len(problems),
            **(
                {"reconnect": Markdown(markdown_table(("organization", "why"), problems))}
                if problems
                else {}
            ),
        },
    )


def company_finding(engine: Engine, system: Engine) -> CheckFinding:
    switches = company_switches(engine, system)
    pending = [s for s in switches if s.import_done_at is None]
    rows = [
        (s.organization, s.old_realm_id, s.new_realm_id, f"{s.switched_at:%Y-%m-%d %H:%M}",
         s.switched_by, "done" if s.import_done_at else "pending")
        for s in switches
    ]  # fmt: skip
    metadata: dict[str, object] = {"switched": len(switches), "import_pending": len(pending)}
    if rows:
        columns = ("organization", "from", "to", "at (UTC)", "by", "import")
        metadata["switches"] = Markdown(markdown_table(columns, rows))
    return CheckFinding(
        passed=not pending,
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
) -> CheckFinding:
    """A check that lists what it found: passed when nothing, else the rows as a table."""
    metadata: dict[str, object] = {key: count}
    if rows:
        metadata[table] = Markdown(markdown_table(columns, rows))
    return CheckFinding(
        passed=count == 0,
        severity="WARN" if warn else "ERROR",
        description=fine if not count else found.format(count=count),
        metadata=metadata,
    )


def bills_waiting_finding(engine: Engine, system: Engine) -> CheckFinding:
    count, waiting = waiting_bills(system)  # the query `qbo-payables` lists
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


def bill_amounts_finding(engine: Engine, system: Engine) -> CheckFinding:
    count, rows = bill_amount_differences(system)
    return _listing(
        count,
        rows,
        fine="Every bill in QuickBooks has its supplier invoice's total.",
        found="{count} bill(s) in QuickBooks differ from their supplier invoice's total.",
        key="differing",
        table="bills",
        columns=("organization", "document", "number", "our total", "QBO's total"),
    )


# each check by its asset and name: evaluated by a run (or reported by a command) that changed
# what it reads; each takes the runtime and the system engine
FINDINGS: dict[str, dict[str, Callable[[Engine, Engine], CheckFinding]]] = {
    CUSTOMERS: {TOKEN_CHECK: tokens_finding, COMPANY_CHECK: company_finding},
    BILLS: {BILLS_WAITING_CHECK: bills_waiting_finding, BILL_AMOUNTS_CHECK: bill_amounts_finding},
}
# what a sync changes that another asset's checks read: the bill payment pull reads each bill's
# total and balance (bill_amounts_agree) and which bills are paid (bills_waiting's held ones)
CHECKS_ALSO_READ = {"bill_payments": BILLS}


def check_events(
    engine: Engine, system: Engine, asset: str, names: Iterable[str] | None = None
) -> list[CheckEvent]:
    """The checks of `asset` (all, or those `names`), evaluated now as a command reports them:
    over every organization, as their runs evaluate them (no partition)."""
    return [
        CheckEvent(asset, name, FINDINGS[asset][name](engine, system))
        for name in (FINDINGS.get(asset, {}) if names is None else names)
    ]
