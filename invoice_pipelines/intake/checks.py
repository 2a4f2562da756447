"""Asset checks that guard `incoming_invoices`.

Three judge a materialization and are evaluated by the intake run itself, for the run's
organization (`check_specs` of the asset, yielded with its materialization: the UI shows their
result on the latest materialization). All WARN and none blocking: a supplier's bad file or a
document held for a person is no reason to stop the run or hold anything downstream.

- `no_failed_documents`: the documents this run processed that ended FAILED, with file name and
  rule ids. A FAILED document is a supplier's bad file, not a broken pipeline: the run stays green
  for the documents it did record, and the asset shows the failure without opening a log.
- `no_documents_waiting_for_review`: the organization's documents in NEEDS_REVIEW after the run.
  Nothing is broken (they are held on purpose, and no export counts them as unbooked), but they
  are not booked until a person confirms or corrects them; the check names them, why each waits
  and how to review it.
- `validated_invoices_exportable`: the organization's VALIDATED documents dated outside every
  month the export assets have a partition for (before INVOICE_PIPELINES_EXPORT_START_MONTH, or
  after the running month). No export partition books them and nothing else would say so; the
  check names them and the way out.

Two watch what time does, not what a run wrote, so they run on a schedule across organizations
(`incoming_invoices_checks_schedule`, every 5 minutes) and their descriptions say so; every intake
run evaluates them too, beside its materialization (`scheduled_evaluations`: two cheap statements),
so the UI never shows them "Not evaluated" on the latest materialization:

- `no_stuck_documents`: documents waiting in UPLOADED/CREATED for more than 5 minutes. The upload
  sensor dispatches them again after 15 minutes, so a stuck document is a warning that recovery is
  under way, not data loss (ERROR is kept for broken data, as in billing's checks).
- `discounts_not_expiring`: early-payment discounts (Skonto) of booked incoming invoices whose last
  day is today or within the next 3 days: money left on the table unless someone pays. Nothing is
  broken, so WARN; the check names each invoice, its last day, the discount and the amount that
  settles it.

The supplier register's two (`supplier_register`, evaluated by its own materialization, WARN):
`suppliers_told_apart`, no two active suppliers share a name by what a person sees, and
`booked_documents_from_registered_suppliers`, the VALIDATED documents whose seller the register
does not agree with.
"""

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    MetadataValue,
    ResourceParam,
    asset_check,
)
from sqlalchemy import Engine, select

from invoice_pipelines.core.suppliers import Claim, compare, name_skeleton
from invoice_pipelines.db.incoming_status import validated
from invoice_pipelines.db.tables import incoming_invoices
from invoice_pipelines.db.tenancy import system_transaction
from invoice_pipelines.intake.discounts import expiring_discounts
from invoice_pipelines.intake.incoming_invoices import stuck_documents
from invoice_pipelines.metadata import markdown_table
from invoice_pipelines.scheduled_checks import evaluation, scheduled_checks
from invoice_pipelines.supplier_register import (
    load_register,
    own_party,
    supplier_rows,
)

INCOMING_INVOICES = "incoming_invoices"
STUCK_CHECK = "no_stuck_documents"
DISCOUNTS_CHECK = "discounts_not_expiring"
STUCK_AFTER = timedelta(minutes=5)
TABLE_ROWS = 50

no_failed_documents_spec = AssetCheckSpec(
    "no_failed_documents",
    asset=INCOMING_INVOICES,
    description="The documents of this intake run: none ended FAILED. WARN with the file names "
    "and rule ids of those that did (retry them with retry_failed_invoices_job once fixed).",
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


def no_failed_documents_result(processed: int, failed: list[dict]) -> AssetCheckResult:
    metadata = {
        "processed": MetadataValue.int(processed),
        "failed": MetadataValue.int(len(failed)),
    }
    if failed:
        metadata["failed_documents"] = MetadataValue.md(failed_documents_table(failed))
    return AssetCheckResult(
        check_name=no_failed_documents_spec.name,
        passed=not failed,
        severity=AssetCheckSeverity.WARN,
        metadata=metadata,
        description=(
            f"{len(failed)} of {processed} documents of this run ended FAILED"
            if failed
            else f"all {processed} documents of this run were recorded without a FAILED verdict"
        ),
    )


@asset_check(
    asset=INCOMING_INVOICES,
    name=STUCK_CHECK,
    description="Scheduled check (every 5 minutes, incoming_invoices_checks_schedule, and every "
    "intake run; all organizations): no document has waited in UPLOADED/CREATED for more than "
    "5 minutes.",
)
def no_stuck_documents(
    context: AssetCheckExecutionContext, database: ResourceParam[Engine]
) -> AssetCheckResult:
    return no_stuck_documents_result(database)


def no_stuck_documents_result(engine: Engine) -> AssetCheckResult:
    with system_transaction(engine) as conn:
        stuck = stuck_documents(conn, older_than=STUCK_AFTER)
    by_org: dict[str, int] = {}
    for doc in stuck:
        by_org[doc["slug"]] = by_org.get(doc["slug"], 0) + 1
    minutes = int(STUCK_AFTER.total_seconds() // 60)
    return AssetCheckResult(
        passed=not stuck,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "stuck_documents": MetadataValue.int(len(stuck)),
            "by_organization": MetadataValue.json(by_org),
            "oldest": MetadataValue.json(
                [
                    {"id": d["id"], "organization": d["slug"], "status": d["status"]}
                    for d in stuck[:20]
                ]
            ),
        },
        description=f"{len(stuck)} documents waiting more than {minutes} minutes",
    )


HOW_TO_REVIEW = (
    "invoice-pipelines incoming review --org ORG --id ID --version V [--set FIELD=VALUE ...] "
    "--confirm --by NAME, or review_incoming_invoice_job in the launchpad"
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


no_documents_waiting_for_review_spec = AssetCheckSpec(
    "no_documents_waiting_for_review",
    asset=INCOMING_INVOICES,
    description="After this intake run, no document of its organization waits in NEEDS_REVIEW: "
    "WARN with the documents a person has to confirm, correct or reject before they are booked, "
    "and why each waits.",
)


def no_documents_waiting_for_review_result(count: int, docs: list[dict]) -> AssetCheckResult:
    """The check for one organization: `count` documents in review, the oldest `docs` of them."""
    metadata = {"in_review": MetadataValue.int(count)}
    if docs:
        metadata["documents_in_review"] = MetadataValue.md(
            in_review_table(docs, with_organization=False)
            + (f"\n\n(the oldest {len(docs)} of {count})" if count > len(docs) else "")
        )
    return AssetCheckResult(
        check_name=no_documents_waiting_for_review_spec.name,
        passed=not count,
        severity=AssetCheckSeverity.WARN,
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


validated_invoices_exportable_spec = AssetCheckSpec(
    "validated_invoices_exportable",
    asset=INCOMING_INVOICES,
    description="After this intake run, every VALIDATED document of its organization is dated "
    "within the months incoming_invoice_exports has partitions for "
    "(INVOICE_PIPELINES_EXPORT_START_MONTH to the running month); WARN with the documents no "
    "export can book and the way out.",
)


def validated_invoices_exportable_result(
    count: int, docs: list[dict], first: str, last: str
) -> AssetCheckResult:
    """The check for one organization: `count` VALIDATED documents outside the export months
    `first` to `last`, the first `docs` of them."""
    metadata = {
        "not_exportable": MetadataValue.int(count),
        "export_months": MetadataValue.text(f"{first} to {last}"),
    }
    if docs:
        metadata["not_exportable_documents"] = MetadataValue.md(
            not_exportable_table(docs, first, last)
            + (f"\n\n(the first {len(docs)} of {count})" if count > len(docs) else "")
        )
    return AssetCheckResult(
        check_name=validated_invoices_exportable_spec.name,
        passed=not count,
        severity=AssetCheckSeverity.WARN,
        metadata=metadata,
        description=(
            not_exportable_summary(count, first, last)
            if count
            else f"every VALIDATED document lies in an export month ({first} to {last})"
        ),
    )


# evaluated by every intake run, in the order the asset yields them
INTAKE_RUN_CHECKS = (
    no_failed_documents_spec,
    no_documents_waiting_for_review_spec,
    validated_invoices_exportable_spec,
)


DISCOUNT_WARNING_DAYS = 3


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


def discounts_not_expiring_result(found: list[dict], within_days: int) -> AssetCheckResult:
    metadata = {"expiring_discounts": MetadataValue.int(len(found))}
    if found:
        metadata["discounts"] = MetadataValue.md(expiring_table(found))
    return AssetCheckResult(
        passed=not found,
        severity=AssetCheckSeverity.WARN,
        metadata=metadata,
        description=expiring_summary(found, within_days)
        if found
        else f"no early-payment discount of a booked invoice expires within {within_days} days",
    )


@asset_check(
    asset=INCOMING_INVOICES,
    name=DISCOUNTS_CHECK,
    description="Scheduled check (every 5 minutes, incoming_invoices_checks_schedule, and every "
    "intake run; all organizations): no early-payment discount (Skonto) of a booked incoming invoice runs out "
    f"today or within {DISCOUNT_WARNING_DAYS} days; WARN with each invoice, its last day, the "
    "discount and the amount to pay.",
)
def discounts_not_expiring(
    context: AssetCheckExecutionContext, database: ResourceParam[Engine]
) -> AssetCheckResult:
    return discounts_not_expiring_now(database)


def discounts_not_expiring_now(engine: Engine) -> AssetCheckResult:
    with system_transaction(engine) as conn:
        found = expiring_discounts(conn, date.today(), DISCOUNT_WARNING_DAYS)
    return discounts_not_expiring_result(found, DISCOUNT_WARNING_DAYS)


def scheduled_evaluations(engine: Engine) -> list[AssetCheckEvaluation]:
    """The two scheduled checks evaluated now (every organization; each one statement over the
    documents in the intake and the discounts of the coming days): what an intake run logs
    beside its materialization, so the UI does not show them "Not evaluated" on it until the
    next 5-minute tick (Dagster judges a check by the latest materialization)."""
    return [
        evaluation(no_stuck_documents_result(engine), INCOMING_INVOICES, check_name=STUCK_CHECK),
        evaluation(
            discounts_not_expiring_now(engine), INCOMING_INVOICES, check_name=DISCOUNTS_CHECK
        ),
    ]


incoming_invoices_checks_job, incoming_invoices_checks_schedule = scheduled_checks(
    "incoming_invoices_checks",
    [no_stuck_documents, discounts_not_expiring],
    cron="*/5 * * * *",
    job_description="Evaluates the scheduled checks of incoming_invoices, no_stuck_documents and "
    "discounts_not_expiring (all organizations); the intake run evaluates the others.",
    schedule_description="Every 5 minutes: warns when a document has waited in UPLOADED/CREATED "
    "for more than 5 minutes, and when an early-payment discount runs out within 3 days.",
)


SUPPLIER_REGISTER = "supplier_register"

told_apart_spec = AssetCheckSpec(
    "suppliers_told_apart",
    asset=SUPPLIER_REGISTER,
    description="No two active suppliers of the register share a name by what a person sees "
    "(confusables skeleton). WARN with the pairs: one supplier registered twice, or a look-alike.",
)
registered_spec = AssetCheckSpec(
    "booked_documents_from_registered_suppliers",
    asset=SUPPLIER_REGISTER,
    description="Every VALIDATED document not exported yet comes from a supplier the register "
    "agrees with. WARN with those that do not (their QuickBooks bills wait): register or confirm "
    "the supplier (invoice-pipelines suppliers add / change).",
)


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


def _unregistered(conn, organization_id: int) -> list[tuple]:
    """The VALIDATED documents whose seller the register does not agree with."""
    t = incoming_invoices.c
    register = load_register(conn, organization_id)
    own = own_party(conn, organization_id)
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


def register_checks(conn, organization_id: int) -> list[AssetCheckResult]:
    pairs = _look_alikes(conn, organization_id)
    unregistered = _unregistered(conn, organization_id)
    return [
        AssetCheckResult(
            check_name=told_apart_spec.name,
            asset_key=SUPPLIER_REGISTER,
            passed=not pairs,
            severity=AssetCheckSeverity.WARN,
            metadata={
                "look_alike_groups": len(pairs),
                "groups": MetadataValue.md(
                    markdown_table(
                        ["suppliers (id: name)"],
                        [["; ".join(f"{i}: {n}" for i, n in group)] for group in pairs],
                        limit=TABLE_ROWS,
                    )
                ),
            },
        ),
        AssetCheckResult(
            check_name=registered_spec.name,
            asset_key=SUPPLIER_REGISTER,
            passed=not unregistered,
            severity=AssetCheckSeverity.WARN,
            metadata={
                "documents": len(unregistered),
                "waiting": MetadataValue.md(
                    markdown_table(["document", "seller", "VAT id"], unregistered, limit=TABLE_ROWS)
                ),
            },
        ),
    ]
