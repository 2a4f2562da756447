"""Dagster side of the batch-job queue (its jobs in dagster_jobs.py, sensors in sensors.py, the
schedule in schedules.py), built from the kinds the areas bring (`queue.known_kinds.Kinds`:
`definitions.py` hands the one value to `build_defs`, and binds it as the `batch_kinds` resource
the queue's other ops read): the queue imports no area.

- `invoice_batch_job` runs one job of a kind the queue runs itself (documents, credit notes): a
  queued one, or a new request checked and queued in the run (its launchpad config is the union of
  the kinds' requests); `invoice_batch_jobs_sensor` launches one run per pending job once the
  invoicing job it follows has finished, and resumes a job whose run failed. A kind whose work
  waits on an outside service's rate limit (`JobKind.waits_on`: communications, on the mail
  provider) has the same pair of its own, `<kind>_batch_job` and `<kind>_batch_jobs_sensor`,
  whose op is in that service's pool: its runs are in the service's lane
  (lib/run_coordinator.py), so an hour of sending never holds the organization's documents.
- `batch_jobs_sensor` launches the job of a kind that has its own Dagster job (invoicing:
  `batch_invoicing_job`, which materializes billing's `sales_invoices`), one run per pending job,
  built from what the kind names (`OwnJob`: the job, the op and its config): the organization's
  partition, tagged with it and the batch job (and the bulk lane's tags for bulk work); it
  resumes a processing job whose run failed.
- `fail_stuck_batch_jobs_job` (every 10 minutes) and `batch_job_control_job` (cancel, retry the
  failed items) serve every kind.
"""

from dagster import Definitions

from invoice_pipelines.queue.dagster_jobs import (
    batch_job_control_job,
    build_queue_job,
    by_service,
    fail_stuck_batch_jobs_job,
)
from invoice_pipelines.queue.domain.known_kinds import KINDS_RESOURCE, Kinds
from invoice_pipelines.queue.schedules import fail_stuck_batch_jobs_schedule
from invoice_pipelines.queue.sensors import build_own_jobs_sensor, build_queue_sensor


def build_defs(known: Kinds) -> Definitions:
    """The queue's jobs, sensors and schedule for the given kinds (every kind is loaded here). The
    queue's jobs close over them; its other ops (stuck jobs, cancel and retry) read the same value
    as the `batch_kinds` resource, bound here (definitions.py binds the same value for every run,
    billing's among them)."""
    kinds = [known[name] for name in known]
    run_here = [k for k in kinds if k.own_job is None]
    own = [k for k in kinds if k.own_job is not None]
    jobs, sensors = [fail_stuck_batch_jobs_job, batch_job_control_job], []
    for names, group in by_service(run_here):
        jobs.append(build_queue_job(known, group, names))
        sensors.append(build_queue_sensor(group, names))
    if own:
        sensors.append(build_own_jobs_sensor(own))
    return Definitions(
        jobs=jobs,
        sensors=sensors,
        schedules=[fail_stuck_batch_jobs_schedule],
        resources={KINDS_RESOURCE: known},
    )
