"""A code location of one period sensor over a job that does nothing, for the test that lets
Dagster's own sensor daemon tick it (test_period_runs_daemon.py): October 2026's month-end, the
organizations one a run, two runs a tick, the clock on November 3rd."""

from datetime import UTC, datetime

from dagster import Definitions, EnvVar, RunRequest, job, op

from invoice_pipelines.exports.sensors import MONTH_END, previous_month
from invoice_pipelines.lib.partitions import partition_range_tags
from invoice_pipelines.lib.sensors import period_runs_sensor
from invoice_pipelines.resources.database.engines import SystemDatabase

SENSOR = "test_period_sensor"


@op
def nothing() -> None:
    pass


@job
def nothing_job() -> None:
    nothing()


def _run(tick: datetime, run_key: str, first: str, last: str) -> RunRequest:
    return RunRequest(run_key=run_key, tags=partition_range_tags(first, last))


defs = Definitions(
    jobs=[nothing_job],
    sensors=[
        period_runs_sensor(
            name=SENSOR,
            job=nothing_job,
            cadence=MONTH_END,
            period=previous_month,
            run_request=_run,
            organizations_per_run_at_least=1,
            description="October 2026's runs, two a tick",
            runs_per_tick=2,
            clock=lambda: datetime(2026, 11, 3, tzinfo=UTC),
        )
    ],
    resources={"system_database": SystemDatabase(url=EnvVar("INVOICE_PIPELINES_DB_URL"))},
)
