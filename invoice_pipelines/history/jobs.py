"""The history import on the launchpad: `history_import_job`, one organization's past invoices
from files the run's machine can read (config: organization, the files' paths). The same work as
`invoice-pipelines history import` (history/domain/importing.py); the run coordinator tags it with its
organization from the op's `organization` config, so it queues behind that organization's other
runs."""

from pathlib import Path

from dagster import (
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

from invoice_pipelines.history.domain.importing import HistoryReport, import_history
from invoice_pipelines.lib.partitions import REQUESTED_BY_HELP, who_asked
from invoice_pipelines.lib.refusals import OrganizationConfig

SHOWN = 50  # refusals listed in the failure's metadata
NAMED = 10  # refusals named in its message


class HistoryImportConfig(OrganizationConfig):
    sales: list[str] = Field(
        default_factory=list, description="Sales invoice CSV files (docs/exports.md layout)."
    )
    supplier: list[str] = Field(
        default_factory=list, description="Supplier invoice CSV files (docs/exports.md layout)."
    )
    einvoices: list[str] = Field(
        default_factory=list,
        description="Folders of Factur-X/ZUGFeRD PDFs and XRechnung CII/UBL XML files.",
    )
    requested_by: str = Field(
        default="", description="Who imports (the invoices' origin). " + REQUESTED_BY_HELP
    )


@op(
    description="Imports an organization's past sales and supplier invoices as history "
    "(exported in their months, never rendered, sent, pushed or dunned); fails naming every "
    "refused row, after importing the others."
)
def import_history_files(
    context: OpExecutionContext,
    config: HistoryImportConfig,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
) -> dict:
    report = import_history(
        database, config.named_organization(system_database),
        sales=[_path(p) for p in config.sales], supplier=[_path(p) for p in config.supplier],
        einvoices=[_path(p) for p in config.einvoices],
        by=who_asked(config.requested_by, context.run.tags),
    )  # fmt: skip
    metadata = _metadata(report)
    for warning in report.warnings:
        context.log.warning(warning)
    for refusal in report.refused:
        context.log.error(str(refusal))
    if report.refused:
        raise _failure(report, metadata)
    context.add_output_metadata(metadata)
    return report.to_json_dict()


def _failure(report: HistoryReport, metadata: dict) -> Failure:
    """The run's failure: the refusals in its message and listed in its metadata."""
    listed = MetadataValue.md("\n".join(f"- {r}" for r in report.refused[:SHOWN]))
    return Failure(
        report.refused_sentence(NAMED),
        metadata={**metadata, "refusals": listed},
        allow_retries=False,
    )


def _metadata(report: HistoryReport) -> dict:
    return {
        "imported_sales": MetadataValue.int(report.imported["sales"]),
        "imported_supplier": MetadataValue.int(report.imported["supplier"]),
        "already_there": MetadataValue.int(sum(report.already.values())),
        "refused": MetadataValue.int(len(report.refused)),
        "seconds": MetadataValue.float(round(report.seconds, 2)),
    }


def _path(value: str) -> Path:
    return Path(value)


@job(
    executor_def=in_process_executor,
    description="Onboarding: imports an organization's past invoices from CSV files and "
    "e-invoices (config: organization, sales, supplier, einvoices); then backfill its exports.",
)
def history_import_job():
    import_history_files()
