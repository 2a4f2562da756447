"""The carrier's partitions: organization x fiscal year, a multi-partition of the organizations'
dynamic partitions and the calendar years up to the last complete one (a year is handed to an
auditor once it is over), from the year of INVOICE_PIPELINES_EXPORT_START_MONTH."""

from dagster import MultiPartitionsDefinition, TimeWindowPartitionsDefinition

from invoice_pipelines.settings import env
from invoice_pipelines.tenants.partitions import (
    ORGANIZATIONS_PARTITIONS_NAME,
    organizations_partitions,
)

YEAR_DIMENSION = "fiscal_year"

fiscal_year_partitions = TimeWindowPartitionsDefinition(
    cron_schedule="0 0 1 1 *",
    start=f"{env('INVOICE_PIPELINES_EXPORT_START_MONTH')[:4]}",
    fmt="%Y",
)

audit_partitions = MultiPartitionsDefinition(
    {
        ORGANIZATIONS_PARTITIONS_NAME: organizations_partitions,
        YEAR_DIMENSION: fiscal_year_partitions,
    }
)
