"""The Dagster code location: every area's definitions, the batch-job queue built from every area's
kinds, and the resources the areas make, all taken from the one list of areas (`areas.py`) the
console script builds from too.

The resources are fixed here, from the environment of the code location: run config (the
launchpad) cannot change any of their fields (see `resources/fixed.py` for why).
"""

from dagster import Definitions, FilesystemIOManager, in_process_executor

from invoice_pipelines.areas import AREAS, for_runs, kinds, resources
from invoice_pipelines.catalog import with_code_references
from invoice_pipelines.queue.defs import build_defs
from invoice_pipelines.queue.domain.known_kinds import KINDS_RESOURCE
from invoice_pipelines.resources.fixed import fixed_at_code_location
from invoice_pipelines.scheduled_checks import first_evaluations_sensor


def checks_jobs(merged: Definitions) -> list:
    """The jobs of the areas' scheduled checks (`scheduled_checks`, each `<name>_checks_job`)."""
    return [job for job in merged.jobs or [] if job.name.endswith("_checks_job")]


def build_definitions() -> Definitions:
    # endpoints and secrets (and the limits beside them) come from the code location only: a
    # person who may launch runs must not send the SMTP password or the QuickBooks tokens elsewhere
    bound = {
        name: fixed_at_code_location(for_runs(resource)) for name, resource in resources().items()
    }
    # Dagster's default IO manager too: its base_dir would let a run write (and a later step
    # unpickle) outputs in a folder of the launcher's choosing
    bound["io_manager"] = fixed_at_code_location(FilesystemIOManager())
    # the kinds each area brings to the queue, one read-only value: the queue is built from it,
    # and every run gets it as a resource (a plain value: it has no config a run could set), as
    # every command gets it in `args.resources`
    batch_kinds = kinds()
    bound[KINDS_RESOURCE] = batch_kinds
    queue = build_defs(batch_kinds)
    merged = Definitions.merge(
        *(area.load_definitions() for area in AREAS if area.definitions is not None),
        queue,
    )
    # every asset links to the function or module that defines it ("View source" in the catalog)
    assets = with_code_references(list(merged.assets or []))
    return Definitions(
        assets=assets,
        asset_checks=merged.asset_checks,
        jobs=merged.jobs,
        # every area's scheduled checks evaluated once at the start, not only when their
        # schedules come round (scheduled_checks.py)
        sensors=[*merged.sensors, first_evaluations_sensor(checks_jobs(merged))],
        schedules=merged.schedules,
        resources=bound,
        # every job's steps run in its run's process, the backfills' and the UI's Materialize
        # (Dagster's asset job) included: the run process starts warm (code_server.py), while
        # Dagster's default executor starts a fresh interpreter for every step, which made a
        # backfill of exports cost 5-10x its work (issue 55)
        executor=in_process_executor,
    )


defs = build_definitions()
