"""The queue as definitions.py builds it, for tests: every area's registered kinds, the queue's
Definitions built from them, and its sensors."""

from dagster import Definitions

from invoice_pipelines.billing import defs as billing
from invoice_pipelines.delivery import defs as delivery
from invoice_pipelines.documents import defs as documents
from invoice_pipelines.queue.defs import OP, build_defs

ALL_KINDS = (*billing.QUEUE_KINDS, *documents.QUEUE_KINDS, *delivery.QUEUE_KINDS)
QUEUE: Definitions = build_defs(ALL_KINDS)


def _sensor(name: str):
    return next(s for s in QUEUE.sensors if s.name == name)


batch_jobs_sensor = _sensor("batch_jobs_sensor")
invoice_batch_jobs_sensor = _sensor("invoice_batch_jobs_sensor")
__all__ = ["ALL_KINDS", "OP", "QUEUE", "batch_jobs_sensor", "invoice_batch_jobs_sensor"]
