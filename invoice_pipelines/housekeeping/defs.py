"""Housekeeping area: archive retention of uploads and export files, Dagster run retention.

Each kind in its module (jobs.py, schedules.py, sensors.py). Two jobs, each with a daily schedule
at a quiet hour (Europe/Berlin):

- `archive_retention_job` removes archived uploads and export files whose retention period (the
  organization's `settings["retention"]`, never below the legal 10 years) is over; the schedule
  (02:30) launches one run per ORGANIZATIONS_PER_RUN organizations, deactivated ones included.
- `dagster_run_retention_job` deletes finished Dagster runs and their event logs after
  `keep_days` (default 90), keeping each job's last successful run; its schedule runs at 02:15.

- `dead_runs_sensor` (every minute) reports runs whose process is gone without recording their
  end as failed (dead_runs.py): Dagster's run monitoring does not notice them under the
  DefaultRunLauncher, and a backfill would wait on them for good.

Both schedules start RUNNING in the demo, because they cannot remove anything there: the demo's
uploads and exports are new (the earliest a file can go is 1 January of the 11th year after it),
and its runs are younger than 90 days. Sensor and schedule ticks are purged by the daemon itself
(the `retention:` block in dagster.yaml); dynamic partitions of deactivated organizations
are removed by `organizations_sensor` (tenants/sensors.py).
"""

from dagster import Definitions

from invoice_pipelines.housekeeping.jobs import archive_retention_job, dagster_run_retention_job
from invoice_pipelines.housekeeping.schedules import (
    archive_retention_schedule,
    dagster_run_retention_schedule,
)
from invoice_pipelines.housekeeping.sensors import dead_runs_sensor

defs = Definitions(
    jobs=[archive_retention_job, dagster_run_retention_job],
    schedules=[archive_retention_schedule, dagster_run_retention_schedule],
    sensors=[dead_runs_sensor],
)
