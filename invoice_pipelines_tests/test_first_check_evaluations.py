"""Issue 85, point 4: on a fresh demo 13 of 25 checks showed "Not evaluated" until their schedules
came round (hours later for the daily ones). The first tick of checks_first_evaluation_sensor
starts every area's scheduled checks' job once; the next ticks start none again."""

from dagster import DagsterInstance, SkipReason, build_sensor_context

from invoice_pipelines.definitions import defs
from invoice_pipelines.scheduled_checks import FIRST_EVALUATIONS_SENSOR


def test_every_scheduled_checks_job_is_started_once_at_the_start():
    sensor = defs.get_sensor_def(FIRST_EVALUATIONS_SENSOR)
    schedules = {s.job_name for s in defs.get_repository_def().schedule_defs}
    checks_jobs = {name for name in schedules if name.endswith("_checks_job")}
    assert len(checks_jobs) >= 6
    instance = DagsterInstance.ephemeral()
    with build_sensor_context(
        instance=instance, repository_def=defs.get_repository_def()
    ) as context:
        first = sensor(context)
    assert {r.job_name for r in first.run_requests} == checks_jobs
    assert all(r.run_key == f"{r.job_name}-first" for r in first.run_requests)
    with build_sensor_context(
        instance=instance, cursor=first.cursor, repository_def=defs.get_repository_def()
    ) as context:
        again = sensor(context)
    assert isinstance(again, SkipReason)
