"""Dagster run retention: delete finished runs (and with them their event logs) after some days.

Dagster keeps every run and every event of it forever; on PostgreSQL `event_logs` grows without
bound. Sensor and schedule ticks are purged by the daemon itself (the instance's `retention:`
block in dagster.yaml); runs are not, so this does it:

- only finished runs (success, failure, cancelled) created before the cutoff; queued or running
  runs are never touched, however old;
- the last successful run of every job stays, so the UI still says when each job last worked;
- `DagsterInstance.delete_run` removes the run and its event log (materializations and
  observations recorded by it included: the asset's history shortens with it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

FINISHED = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]
PAGE = 500


@dataclass
class RunRetentionResult:
    cutoff: datetime
    deleted: int = 0
    kept_last_success: list[str] = field(default_factory=list)  # run ids kept for their job
    errors: list[str] = field(default_factory=list)
    more_left: bool = False  # stopped at max_runs; the next run goes on
    dry_run: bool = False

    def sentence(self) -> str:
        """What the run did, in one line for its log."""
        return (
            f"runs created before {self.cutoff:%Y-%m-%d %H:%M} UTC: "
            f"{'would delete' if self.dry_run else 'deleted'} {self.deleted}, kept "
            f"{len(self.kept_last_success)} last successful run(s)"
            + ("; more are left for the next run" if self.more_left else "")
        )

    def failure(self) -> str:
        """What failed, for the run's failure ("" when nothing did)."""
        if not self.errors:
            return ""
        return f"{len(self.errors)} run(s) could not be deleted: " + "; ".join(self.errors[:5])


def purge_runs(
    instance: DagsterInstance,
    keep_days: int,
    *,
    max_runs: int = 10_000,
    dry_run: bool = False,
    now: datetime | None = None,
    protect: set[str] | None = None,
) -> RunRetentionResult:
    """Delete finished runs created more than `keep_days` days before `now`, oldest first, at most
    `max_runs` of them; `protect` names runs never to delete (the run doing this)."""
    if keep_days < 1:
        raise ValueError(f"keep_days must be at least 1, got {keep_days}")
    now = now or datetime.now(UTC)
    result = RunRetentionResult(now - timedelta(days=keep_days), dry_run=dry_run)
    keep: dict[str, str | None] = {}  # job name -> its last successful run id
    protected = set(protect or ())
    # read the candidates first, then delete: a cursor is a run id, and paging on from a run
    # that was just deleted finds nothing
    candidates: list[tuple[str, str]] = []
    cursor = None
    while len(candidates) < max_runs + 1:
        records = instance.get_run_records(
            filters=RunsFilter(statuses=FINISHED, created_before=result.cutoff),
            limit=min(PAGE, max_runs + 1 - len(candidates)),
            ascending=True,
            cursor=cursor,
        )
        if not records:
            break
        candidates += [(r.dagster_run.run_id, r.dagster_run.job_name) for r in records]
        cursor = records[-1].dagster_run.run_id
    result.more_left = len(candidates) > max_runs
    for run_id, job_name in candidates[:max_runs]:
        if job_name not in keep:
            keep[job_name] = _last_success(instance, job_name)
        if run_id == keep[job_name]:
            result.kept_last_success.append(run_id)
            continue
        if run_id in protected:
            continue
        if dry_run:
            result.deleted += 1
            continue
        try:
            instance.delete_run(run_id)
            result.deleted += 1
        except Exception as exc:  # one run that cannot be deleted does not stop the others
            result.errors.append(f"run {run_id}: {type(exc).__name__}: {exc}")
    return result


def _last_success(instance: DagsterInstance, job_name: str) -> str | None:
    records = instance.get_run_records(
        filters=RunsFilter(job_name=job_name, statuses=[DagsterRunStatus.SUCCESS]), limit=1
    )
    return records[0].dagster_run.run_id if records else None
