"""Housekeeping's sensor: `dead_runs_sensor` reports runs whose process is gone as failed."""

from dagster import DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from invoice_pipelines.housekeeping.dead_runs import mark_dead_runs

DEAD_RUNS_INTERVAL_SECONDS = 60


@sensor(
    name="dead_runs_sensor",
    minimum_interval_seconds=DEAD_RUNS_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Every minute: runs in flight (STARTED, STARTING, CANCELING) whose process is gone "
    "without recording their end are reported failed (cancelled) with the reason, so no run "
    "stays 'Started' and no backfill waits for one. Needed under the DefaultRunLauncher, which "
    "Dagster's run monitoring cannot ask about its runs; with another launcher it does nothing.",
)
def dead_runs_sensor(context: SensorEvaluationContext):
    result = mark_dead_runs(context.instance)
    for run_id, job_name, pid in result.marked:
        context.log.warning(f"run {run_id} ({job_name}): its process {pid} is gone; marked failed")
    for error in result.errors:
        context.log.error(error)
    return SkipReason(result.summary())
