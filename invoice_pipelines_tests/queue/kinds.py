"""The queue as definitions.py builds it, for tests: every area's registered kinds, the queue's
Definitions built from them, and its sensors."""

from dagster import Definitions

from invoice_pipelines.areas import queue_kinds
from invoice_pipelines.queue.defs import OP, build_defs

ALL_KINDS = tuple(kind.load() for kind in queue_kinds())
QUEUE: Definitions = build_defs(ALL_KINDS)


def _sensor(name: str):
    return next(s for s in QUEUE.sensors if s.name == name)


batch_jobs_sensor = _sensor("batch_jobs_sensor")
invoice_batch_jobs_sensor = _sensor("invoice_batch_jobs_sensor")
__all__ = ["ALL_KINDS", "OP", "QUEUE", "batch_jobs_sensor", "invoice_batch_jobs_sensor"]
