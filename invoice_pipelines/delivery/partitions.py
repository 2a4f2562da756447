"""The delivery area's own partitions: the Peppol monthly report's organization x month."""

from dagster import MonthlyPartitionsDefinition, MultiPartitionsDefinition

from invoice_pipelines.core.export_months import START_MONTH_SETTING
from invoice_pipelines.lib.partitions import (
    ORGANIZATIONS_PARTITIONS_NAME,
    organizations_partitions,
)
from invoice_pipelines.settings import env

MONTH_DIMENSION = "month"

# a month is reported once it is over (the same months the exports have)
report_partitions = MultiPartitionsDefinition(
    {
        ORGANIZATIONS_PARTITIONS_NAME: organizations_partitions,
        MONTH_DIMENSION: MonthlyPartitionsDefinition(
            start_date=env(START_MONTH_SETTING), fmt="%Y-%m", end_offset=0
        ),
    }
)
