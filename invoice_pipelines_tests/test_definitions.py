"""The code location loads, and its graph holds what the areas promise (catches accidental changes)."""

from dagster import Definitions

from invoice_pipelines.definitions import defs

EXPECTED_ASSETS = {
    "organization_overview",
    "incoming_invoice_stats",
    "intake_health",
    "batch_invoicing_stats",
}
EXPECTED_SENSORS = {"organizations_sensor", "upload_sensor", "batch_jobs_sensor"}
EXPECTED_SCHEDULES = {"intake_health_schedule", "fail_stuck_batch_jobs_schedule"}
EXPECTED_JOBS = {
    "intake_job",
    "retry_failed_invoices_job",
    "intake_health_job",
    "batch_invoicing_job",
    "fail_stuck_batch_jobs_job",
    "batch_job_control_job",
}


def test_definitions_are_loadable():
    Definitions.validate_loadable(defs)


def test_expected_objects_are_present():
    repo = defs.get_repository_def()
    assets = {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()}
    assert EXPECTED_ASSETS <= assets
    assert EXPECTED_SENSORS <= {s.name for s in repo.sensor_defs}
    assert EXPECTED_SCHEDULES <= {s.name for s in repo.schedule_defs}
    assert EXPECTED_JOBS <= {j.name for j in repo.get_all_jobs()}


def test_demo_sensors_and_schedules_start_running():
    from dagster import DefaultScheduleStatus, DefaultSensorStatus

    repo = defs.get_repository_def()
    for sensor in repo.sensor_defs:
        if sensor.name in EXPECTED_SENSORS:
            assert sensor.default_status == DefaultSensorStatus.RUNNING, sensor.name
    for schedule in repo.schedule_defs:
        if schedule.name in EXPECTED_SCHEDULES:
            assert schedule.default_status == DefaultScheduleStatus.RUNNING, schedule.name


def test_loading_the_code_location_warns_about_nothing():
    """Every run loads the code again: a warning here is printed into every run's log."""
    import subprocess
    import sys

    script = (
        "from invoice_pipelines.definitions import defs\n"
        "repo = defs.get_repository_def()\n"
        "repo.get_sensor_def('upload_sensor'); repo.get_sensor_def('batch_jobs_sensor')\n"
    )
    # -W error: any warning (BetaWarning, SupersessionWarning, deprecations) fails the import
    completed = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stderr == ""


def test_sensors_launch_their_jobs():
    repo = defs.get_repository_def()
    assert repo.get_sensor_def("upload_sensor").job_name == "intake_job"
    assert repo.get_sensor_def("batch_jobs_sensor").job_name == "batch_invoicing_job"
