"""The carrier's asset: `audit_data_carrier`, one organization and fiscal year a partition
(partitions.py). Materializing a partition writes the year's tax-audit data carrier
(audit/domain/carrier.py) into the export store under `<org>/audit/<year>/<run id>/`: every
materialization is a carrier of its own, as the database stood when it was written. Its check
`carrier_complete` is evaluated by the run itself: it fails when a file the tables name is
missing from its store or is not what was stored."""

import tempfile
import warnings
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    BackfillPolicy,
    BetaWarning,
    MaterializeResult,
    MetadataValue,
    MultiPartitionKey,
    MultiToSingleDimensionPartitionMapping,
    ResourceParam,
    asset,
)
from sqlalchemy import Engine

from invoice_pipelines.audit.domain.carrier import CarrierResult, write_carrier
from invoice_pipelines.audit.partitions import YEAR_DIMENSION, audit_partitions
from invoice_pipelines.catalog import OWNERS
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.lib.refusals import partition_organization
from invoice_pipelines.metadata import markdown_table
from invoice_pipelines.resources.files.files import Files
from invoice_pipelines.resources.files.uploads import Uploads

CHECK = "carrier_complete"


def _partition(key) -> tuple[str, int]:
    if not isinstance(key, MultiPartitionKey):
        key = audit_partitions.get_partition_key_from_str(str(key))
    dims = key.keys_by_dimension
    return dims[ORGANIZATIONS_PARTITIONS_NAME], int(dims[YEAR_DIMENSION])


def _store(export_store: Files, folder: Path, prefix: str) -> str:
    """The carrier's files into the export store under `prefix`; where its index.xml is."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        export_store.write(f"{prefix}/{path.relative_to(folder).as_posix()}", [path.read_bytes()])
    return export_store.location(f"{prefix}/index.xml")


def _metadata(result: CarrierResult, index: str) -> dict:
    tables = markdown_table(
        ("table", "rows"),
        ((name, t.rows) for name, t in result.tables.items()),
        align="lr",
    )
    return {
        "organization": result.organization,
        "fiscal_year": result.year,
        "index_xml": MetadataValue.path(index),
        "files": result.files,
        "tables": MetadataValue.md(tables),
        "missing": len(result.missing),
        "changed": len(result.changed),
    }


def _check(result: CarrierResult) -> AssetCheckResult:
    problems = [f"missing: {p}" for p in result.missing] + [
        f"changed since stored: {p}" for p in result.changed
    ]
    return AssetCheckResult(
        check_name=CHECK,
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        description="Every file the tables name is in the carrier, as it was stored."
        if not problems
        else f"{len(problems)} file(s) the tables name are missing or changed.",
        metadata={"problems": MetadataValue.json(problems[:100])} if problems else {},
    )


with warnings.catch_warnings():
    warnings.simplefilter("ignore", BetaWarning)
    UPSTREAM_ORGANIZATION = MultiToSingleDimensionPartitionMapping(
        partition_dimension_name=ORGANIZATIONS_PARTITIONS_NAME
    )

    @asset(
        partitions_def=audit_partitions,
        deps=[
            AssetDep("incoming_invoices", partition_mapping=UPSTREAM_ORGANIZATION),
            AssetDep("sales_invoices", partition_mapping=UPSTREAM_ORGANIZATION),
        ],
        backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=1),
        group_name="audit",
        kinds={"python", "sql", "xml"},
        owners=OWNERS,
        check_specs=[
            AssetCheckSpec(
                CHECK,
                asset="audit_data_carrier",
                description="Fails when a file the carrier's tables name (an original, a "
                "document, a letter, a DATEV export file) is missing from its store or no longer "
                "has the SHA-256 recorded when it was stored.",
            )
        ],
        description="One organization's fiscal year as a tax-audit data carrier (GoBD Z3, "
        "§ 147 (6) AO): index.xml in the description standard (GDPdU DTD 1.5) with the DTD "
        "beside it, one flat file per table (invoices with lines, VAT and history, customers, "
        "suppliers and their changes, DATEV bookings, payments, dunning notices, the audit "
        "trail), the originals and documents, and a SHA-256 manifest, in the export store.",
    )
    def audit_data_carrier(
        context: AssetExecutionContext,
        database: ResourceParam[Engine],
        system_database: ResourceParam[Engine],
        upload_store: ResourceParam[Uploads],
        document_store: ResourceParam[Files],
        export_store: ResourceParam[Files],
    ):
        stores = {
            "upload_store": upload_store,
            "document_store": document_store,
            "export_store": export_store,
        }
        slug, year = _partition(context.partition_key)
        # its data stay open to the auditor after offboarding, for the retention's years
        organization = partition_organization(
            system_database, context, offboarded=True, slug_of=lambda key: _partition(key)[0]
        )
        with tempfile.TemporaryDirectory(prefix="carrier-") as scratch:
            folder = Path(scratch) / "carrier"
            result = write_carrier(database, stores, organization, year, folder)
            index = _store(export_store, folder, f"{slug}/audit/{year}/{context.run.run_id}")
        for problem in result.missing + result.changed:
            context.log.warning(f"{slug} {year}: {problem} is missing or changed")
        return MaterializeResult(metadata=_metadata(result, index), check_results=[_check(result)])
