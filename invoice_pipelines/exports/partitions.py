"""The exports' partitions: organization x month, a multi-partition of the organizations' dynamic
partitions and a monthly partition that ends with the last complete month (or the running one,
INVOICE_PIPELINES_EXPORT_RUNNING_MONTH=provisional)."""

from dagster import MonthlyPartitionsDefinition, MultiPartitionsDefinition

from invoice_pipelines.exports.domain.job import running_month_mode
from invoice_pipelines.lib.partitions import (
    ORGANIZATIONS_PARTITIONS_NAME,
    organizations_partitions,
)
from invoice_pipelines.settings import env

MONTH_DIMENSION = "month"


# A month is exported once it is over: the partitions end with the last complete month, so no
# schedule or backfill books the running month. INVOICE_PIPELINES_EXPORT_RUNNING_MONTH=provisional
# adds the running month (end_offset=1), exported as provisional (exports/pipeline.run_export).
def month_partitions_for(mode: str) -> MonthlyPartitionsDefinition:
    """The export months: up to the last complete one ("closed"), or up to the running one
    ("provisional")."""
    return MonthlyPartitionsDefinition(
        start_date=env("INVOICE_PIPELINES_EXPORT_START_MONTH"),
        fmt="%Y-%m",
        end_offset=1 if mode == "provisional" else 0,
    )


month_partitions = month_partitions_for(running_month_mode())


export_partitions = MultiPartitionsDefinition(
    {ORGANIZATIONS_PARTITIONS_NAME: organizations_partitions, MONTH_DIMENSION: month_partitions}
)
