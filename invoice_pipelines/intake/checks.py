"""Asset checks that guard `incoming_invoices`.

- `no_failed_documents` (WARN), evaluated by every intake run: the documents this run processed
  that ended FAILED, with file name and rule ids. A FAILED document is a supplier's bad file, not a
  broken pipeline, so WARN: the run stays green for the documents it did record, and the asset
  shows the failure without opening a log.
- `no_stuck_documents` (WARN), on a schedule, across organizations: documents waiting in
  UPLOADED/CREATED for more than 5 minutes. The upload sensor dispatches them again after 15
  minutes, so a stuck document is a warning that recovery is under way, not data loss (ERROR is
  kept for broken data, as in billing's checks).
"""

from datetime import timedelta

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    MetadataValue,
    asset_check,
)

from invoice_pipelines.db.tenancy import system_transaction
from invoice_pipelines.intake.documents import stuck_documents
from invoice_pipelines.metadata import markdown_table
from invoice_pipelines.resources.database import Database

INCOMING_INVOICES = "incoming_invoices"
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
    name="no_stuck_documents",
    description="No document has waited in UPLOADED/CREATED for more than 5 minutes (all "
    "organizations). Runs every 5 minutes (incoming_invoices_checks_schedule).",
)
def no_stuck_documents(context: AssetCheckExecutionContext, database: Database) -> AssetCheckResult:
    with system_transaction(database.get_engine()) as conn:
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
