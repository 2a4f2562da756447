"""Housekeeping's jobs with their ops and configs: `archive_retention_job` (archived uploads and
export files past their organization's retention) and `dagster_run_retention_job` (finished
Dagster runs and their event logs after `keep_days`)."""

from dagster import (
    Config,
    Failure,
    MetadataValue,
    OpExecutionContext,
    ResourceParam,
    in_process_executor,
    job,
    op,
)
from pydantic import Field
from sqlalchemy import Engine

from invoice_pipelines.db.tenancy import find_organizations
from invoice_pipelines.housekeeping.dagster_runs import RunRetentionResult, purge_runs
from invoice_pipelines.housekeeping.domain.archive import (
    COUNTED,
    OrganizationOutcome,
    purge_archives,
)
from invoice_pipelines.lib.partitions import REQUESTED_BY_HELP, who_asked
from invoice_pipelines.lib.refusals import PartitionRefusals
from invoice_pipelines.metadata import markdown_table
from invoice_pipelines.resources.files.files import Files
from invoice_pipelines.resources.files.uploads import Uploads

DEFAULT_KEEP_DAYS = 90


class ArchiveRetentionConfig(Config):
    organizations: list[str] = Field(
        default_factory=list,
        description="Organization slugs or ids to look at; empty: every organization, "
        "deactivated ones included.",
    )
    dry_run: bool = Field(
        default=False, description="Count what is due without removing or marking anything."
    )
    requested_by: str = Field(
        default="", description="Who asked for it (audit log). " + REQUESTED_BY_HELP
    )


def _metadata(outcomes: list[OrganizationOutcome]) -> dict:
    metadata = {
        "organizations": MetadataValue.int(len(outcomes)),
        **{name: MetadataValue.int(sum(getattr(o, name) for o in outcomes)) for name in COUNTED},
        "refused": MetadataValue.int(sum(1 for o in outcomes if o.refused)),
        "failed": MetadataValue.int(sum(1 for o in outcomes if o.errors)),
    }
    touched = [o for o in outcomes if o.changed or o.refused or o.errors or o.uploads_kept_in_work]
    if touched:
        metadata["by_organization"] = MetadataValue.md(
            markdown_table(
                (
                    "organization",
                    "uploads removed",
                    "missing",
                    "kept (in work)",
                    "of them FAILED",
                    "exports removed",
                    "missing",
                    "problem",
                ),
                (
                    (
                        o.slug,
                        o.uploads_removed,
                        o.uploads_missing,
                        o.uploads_kept_in_work,
                        o.uploads_kept_failed,
                        o.exports_removed,
                        o.exports_missing,
                        o.refused or "; ".join(o.errors[:3]),
                    )
                    for o in touched[:100]
                ),
                align="lrrrrrr",
            )
        )
    return metadata


@op(
    description="Removes archived uploads and export files whose retention period is over (the "
    "organization's settings, never below the legal 10 years, counted from the end of the "
    "document's calendar year), marks their rows and writes an audit log row per organization."
)
def purge_archived_files(
    context: OpExecutionContext,
    config: ArchiveRetentionConfig,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
    upload_store: ResourceParam[Uploads],
    export_store: ResourceParam[Files],
) -> dict:
    # the organizations named (all of them when none is), found once
    found, unknown = find_organizations(system_database, config.organizations or None)
    outcomes = purge_archives(
        database, system_database, upload_store, export_store, found, unknown=unknown,
        dry_run=config.dry_run, run_id=context.run.run_id,
        requested_by=who_asked(config.requested_by, context.run.tags),
    )  # fmt: skip
    refusals = PartitionRefusals([o.slug for o in outcomes], context.log.error, "organizations")
    for line in filter(None, (o.sentence() for o in outcomes)):
        context.log.info(line)
    for o in outcomes:
        refusals.refuse_each(o.slug, o.problems())
    metadata = _metadata(outcomes)  # a failure carries the figures of the organizations done
    refusals.raise_if_any(metadata)
    context.add_output_metadata(metadata)
    return {o.slug: o.as_dict() for o in outcomes if o.changed}


@job(
    executor_def=in_process_executor,
    description="Archive retention: removes archived uploads and export files past the "
    "retention period their organization sets (config: organizations, empty for all; dry_run).",
)
def archive_retention_job():
    purge_archived_files()


class RunRetentionConfig(Config):
    keep_days: int = Field(
        default=DEFAULT_KEEP_DAYS,
        description="Delete finished runs (and their event logs) created more than this many "
        "days ago; each job's last successful run is kept.",
    )
    max_runs: int = Field(
        default=10_000, description="Look at most at this many old runs in one run (oldest first)."
    )
    dry_run: bool = Field(default=False, description="Count what would be deleted, delete nothing.")


@op(
    description="Deletes finished Dagster runs older than keep_days with their event logs, "
    "keeping the last successful run of every job; queued and running runs are never touched."
)
def delete_old_dagster_runs(context: OpExecutionContext, config: RunRetentionConfig) -> int:
    if config.keep_days < 1 or config.max_runs < 1:
        raise Failure("keep_days and max_runs must be at least 1.", allow_retries=False)
    result = purge_runs(
        context.instance, config.keep_days, max_runs=config.max_runs, dry_run=config.dry_run,
        protect={context.run.run_id},
    )  # fmt: skip
    context.log.info(result.sentence())
    context.add_output_metadata(_run_metadata(result))
    for error in result.errors:
        context.log.error(error)
    if result.errors:
        raise Failure(result.failure(), allow_retries=False)
    return result.deleted


def _run_metadata(result: RunRetentionResult) -> dict:
    return {
        "cutoff": MetadataValue.text(result.cutoff.isoformat()),
        "runs_deleted": MetadataValue.int(result.deleted),
        "kept_last_success": MetadataValue.int(len(result.kept_last_success)),
        "more_left": MetadataValue.bool(result.more_left),
        "errors": MetadataValue.int(len(result.errors)),
        "dry_run": MetadataValue.bool(result.dry_run),
    }


@job(
    executor_def=in_process_executor,
    description="Dagster run retention: deletes finished runs and their event logs after "
    "keep_days (default 90), keeping each job's last successful run.",
)
def dagster_run_retention_job():
    delete_old_dagster_runs()
