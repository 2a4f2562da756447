"""The carrier's partitions: organization x fiscal year, a multi-partition of the organizations'
dynamic partitions and the calendar years from the year of INVOICE_PIPELINES_EXPORT_START_MONTH
up to the running one. A year is handed to an auditor once it is over; the running year's
carrier holds the year so far, as the organizations' data are (issue 85: the partitions ended
with the last complete year while a fresh demo's data are all of the running one, so its one
carrier held nothing of them but the customers)."""

from dagster import MultiPartitionsDefinition, TimeWindowPartitionsDefinition

from invoice_pipelines.lib.partitions import (
    ORGANIZATIONS_PARTITIONS_NAME,
    organizations_partitions,
)
from invoice_pipelines.settings import env

YEAR_DIMENSION = "fiscal_year"

fiscal_year_partitions = TimeWindowPartitionsDefinition(
    cron_schedule="0 0 1 1 *",
    start=f"{env('INVOICE_PIPELINES_EXPORT_START_MONTH')[:4]}",
    fmt="%Y",
    end_offset=1,  # the running year too
)

audit_partitions = MultiPartitionsDefinition(
    {
        ORGANIZATIONS_PARTITIONS_NAME: organizations_partitions,
        YEAR_DIMENSION: fiscal_year_partitions,
    }
)
