"""The queue as definitions.py builds it, for tests: every area's kinds (`areas.kinds()`), the
queue's Definitions built from them, and its sensors."""

from dagster import Definitions

from invoice_pipelines.areas import kinds
from invoice_pipelines.queue.dagster_jobs import OP
from invoice_pipelines.queue.defs import build_defs

QUEUE: Definitions = build_defs(kinds())


def _sensor(name: str):
    return next(s for s in QUEUE.sensors if s.name == name)


batch_jobs_sensor = _sensor("batch_jobs_sensor")
invoice_batch_jobs_sensor = _sensor("invoice_batch_jobs_sensor")
# communications wait on the mail provider: a job, op and sensor of their own (the mail lane)
communications_batch_jobs_sensor = _sensor("communications_batch_jobs_sensor")
COMMUNICATIONS_OP = "process_communications_batch_job"
__all__ = [
    "COMMUNICATIONS_OP",
    "OP",
    "QUEUE",
    "batch_jobs_sensor",
    "communications_batch_jobs_sensor",
    "invoice_batch_jobs_sensor",
]
