"""The audit area's scheduled check: `archive_unchanged` on the carrier's asset, over every active
organization, daily (`archive_checks_job`, `archive_checks_schedule`): the files stored in the
running and the last year are read again and hashed, each organization's whole audit chain is
recomputed and compared with every head anchored in the export store (audit/domain/verify.py, what
`audit-verify` runs), then the rows written since are sealed and the new head anchored. Its
metadata records each organization's chain head (position, hash, key id) too."""

from datetime import UTC, datetime

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
    ResourceParam,
    asset_check,
)
from sqlalchemy import Engine

from invoice_pipelines.audit.assets import audit_data_carrier
from invoice_pipelines.audit.domain.seal_keys import seal_keyring
from invoice_pipelines.audit.domain.verify import verify_archive
from invoice_pipelines.db.tenancy import active_organizations
from invoice_pipelines.resources.files.files import Files
from invoice_pipelines.resources.files.uploads import Uploads
from invoice_pipelines.scheduled_checks import scheduled_checks
from invoice_pipelines.settings import ConfigError

SHOWN = 50


@asset_check(
    asset=audit_data_carrier,
    name="archive_unchanged",
    description="Scheduled check (daily, archive_checks_schedule, all organizations): every "
    "original and document stored in the running and the last year still has the SHA-256 "
    "recorded when it was stored, and no audit row was removed or changed (the chain of hashes "
    "over each organization's audit rows, register history and recorded hashes, compared with the "
    "heads anchored in the export store). ERROR naming each file and row; then the audit rows "
    "written since are sealed.",
)
def archive_unchanged(
    context: AssetCheckExecutionContext,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
    upload_store: ResourceParam[Uploads],
    document_store: ResourceParam[Files],
    export_store: ResourceParam[Files],
) -> AssetCheckResult:
    stores = {
        "upload_store": upload_store,
        "document_store": document_store,
        "export_store": export_store,  # where the chain heads are anchored
    }
    this_year = datetime.now(UTC).year
    problems: list[str] = []
    heads: dict[str, dict] = {}
    checked = 0
    try:
        # the system side's: read once for every organization
        keyring = seal_keyring(database.dialect.name)
    except ConfigError as exc:
        context.log.error(str(exc))
        return _keys_refused(str(exc))
    for organization in active_organizations(system_database):
        slug = organization.slug
        for year in (this_year - 1, this_year):
            # the chain is the organization's, not a year's: checked, sealed, anchored once
            current = year == this_year
            report = verify_archive(
                database, stores, organization, year, seal=current, keyring=keyring, chain=current
            )
            checked += report.files_checked
            problems += [f"{slug}: {p}" for p in report.problems]
        problems += [f"{slug}: {p}" for p in report.chain.problems]
        heads[slug] = {
            "position": report.chain.head_position,
            "hash": report.chain.head_hash,
            "key_id": report.chain.head_key_id,
        }
    for problem in problems[:SHOWN]:
        context.log.error(problem)
    return AssetCheckResult(
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        description="Every stored file as it was stored; every audit chain whole."
        if not problems
        else f"{len(problems)} file(s) or audit row(s) changed, missing or removed.",
        metadata={
            "files_checked": checked,
            "problems": MetadataValue.json(problems[:SHOWN]),
            "chain_heads": MetadataValue.json(heads),
        },
    )


def _keys_refused(sentence: str) -> AssetCheckResult:
    """No key the check may seal with: nothing checked, and the sentence says what to set."""
    return AssetCheckResult(
        passed=False,
        severity=AssetCheckSeverity.ERROR,
        description=sentence,
        metadata={
            "files_checked": 0,
            "problems": MetadataValue.json([sentence]),
            "chain_heads": MetadataValue.json({}),
        },
    )


archive_checks_job, archive_checks_schedule = scheduled_checks(
    "archive_checks",
    [archive_unchanged],
    cron="40 3 * * *",
    job_description="Re-reads every organization's stored originals and documents of the running "
    "and last year and recomputes its audit chain; seals the audit rows written since.",
    schedule_description="Daily at 03:40: the archive and the audit trail unchanged, all "
    "organizations.",
)
