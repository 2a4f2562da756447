"""The housekeeping jobs and schedules as Dagster runs them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    Failure,
    build_schedule_context,
    instance_for_test,
    job,
    op,
)
from dagster._core.storage.runs.schema import RunsTable
from sqlalchemy import select, update

from invoice_pipelines.db.tables import organizations
from invoice_pipelines.db.tenancy import system_transaction
from invoice_pipelines.housekeeping.jobs import archive_retention_job, dagster_run_retention_job
from invoice_pipelines.housekeeping.schedules import (
    ORGANIZATIONS_PER_RUN,
    archive_retention_schedule,
    organization_batches,
)
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.file_stores import LocalFileStore
from invoice_pipelines.resources.files.upload_stores import LocalUploadStore
from invoice_pipelines_tests.housekeeping.helpers import LAST_EXPIRED, at, old_upload


def _resources(db, tmp_path) -> dict:
    return {
        "database": Database(url=db.url),
        "system_database": SystemDatabase(url=db.url),
        "upload_store": LocalUploadStore(root=str(tmp_path / "uploads")),
        "export_store": LocalFileStore(root=str(tmp_path / "exports")),
    }


def test_the_job_removes_what_is_due_and_fails_naming_a_refused_organization(db, tmp_path):
    resources = _resources(db, tmp_path)
    good = db.new_organization()
    bad = db.new_organization(settings={"retention": {"exports_years": 7}})
    due = old_upload(db, resources["upload_store"].uploads(), good, uploaded=at(LAST_EXPIRED - 1))
    kept = old_upload(db, resources["upload_store"].uploads(), bad, uploaded=at(LAST_EXPIRED - 1))

    result = archive_retention_job.execute_in_process(
        run_config={
            "ops": {
                "purge_archived_files": {"config": {"organizations": [good["slug"], bad["slug"]]}}
            }
        },
        resources=resources,
        raise_on_error=False,
    )
    assert not result.success
    failure = result.failure_data_for_node("purge_archived_files").error.message
    assert (
        f"Failure: 1 of 2 organizations refused: {bad['slug']}: Organization {bad['slug']!r}: "
        "settings retention.exports_years is 7 years" in failure
    )
    assert failure.strip().endswith(f"(done nonetheless: {good['slug']})")
    # what was done is on the failure, since a failed op records no output
    figures = result.failure_data_for_node("purge_archived_files").user_failure_data.metadata
    assert figures["uploads_removed"].value == 1
    assert figures["refused"].value == 1
    # the good organization was done all the same
    assert not (tmp_path / "uploads" / due["key"]).exists()
    assert (tmp_path / "uploads" / kept["key"]).exists()


def test_the_schedule_batches_every_organization_including_deactivated_ones(db):
    gone = db.new_organization()
    with system_transaction(db.engine, write=True) as conn:
        conn.execute(
            update(organizations).where(organizations.c.id == gone["id"]).values(active=False)
        )
        # (suspended ones, other tests', are left out: test_suspended_get_nothing.py)
        slugs = list(
            conn.scalars(
                select(organizations.c.slug)
                .where(organizations.c.suspended_at.is_(None))
                .order_by(organizations.c.id)
            )
        )
    with build_schedule_context(
        resources={"database": Database(url=db.url), "system_database": SystemDatabase(url=db.url)},
        scheduled_execution_time=datetime(2026, 11, 23, 2, 30, tzinfo=UTC),
    ) as context:
        requests = archive_retention_schedule(context)
    batches = [
        r.run_config["ops"]["purge_archived_files"]["config"]["organizations"] for r in requests
    ]
    assert [slug for batch in batches for slug in batch] == slugs  # each once, gone included
    assert [r.run_key for r in requests] == [f"2026-11-23-batch-{n}" for n in range(len(batches))]
    sizes = [len(b) for b in organization_batches([str(n) for n in range(1201)])]
    assert sizes == [ORGANIZATIONS_PER_RUN, ORGANIZATIONS_PER_RUN, 1201 - 2 * ORGANIZATIONS_PER_RUN]


@op
def say_hello(context) -> None:
    context.log.info("hello")


@job
def hello_job():
    say_hello()


@op
def refuse(context) -> None:
    raise Failure("no")


@job
def failing_job():
    refuse()


def _age(instance: DagsterInstance, run_id: str, days: int) -> None:
    """Date a run back by setting its timestamps directly, as if it ran `days` ago."""
    when = (datetime.now(UTC) - timedelta(days=days)).replace(tzinfo=None)
    with instance.run_storage.connect() as conn:
        conn.execute(
            update(RunsTable)
            .where(RunsTable.c.run_id == run_id)
            .values(create_timestamp=when, update_timestamp=when)
        )


def test_old_runs_go_with_their_logs_but_each_jobs_last_success_stays():
    with instance_for_test() as instance:
        old_hello = [hello_job.execute_in_process(instance=instance).run_id for _ in range(2)]
        old_failure = failing_job.execute_in_process(instance=instance, raise_on_error=False).run_id
        recent = hello_job.execute_in_process(instance=instance).run_id
        running = instance.create_run_for_job(hello_job, status=DagsterRunStatus.STARTED).run_id
        ages = [200, 150, 100, 300]
        for age, run_id in zip(ages, [*old_hello, old_failure, running], strict=True):
            _age(instance, run_id, age)
        _age(instance, recent, 5)
        # hello_job's last success is the recent run, so its two old ones go; failing_job never
        # succeeded: its old failure goes; the old running run is not finished: it stays
        dry = dagster_run_retention_job.execute_in_process(
            instance=instance,
            run_config={"ops": {"delete_old_dagster_runs": {"config": {"dry_run": True}}}},
        )
        assert dry.output_for_node("delete_old_dagster_runs") == 3
        assert len(instance.get_run_records()) == 6

        done = dagster_run_retention_job.execute_in_process(instance=instance)
        assert done.output_for_node("delete_old_dagster_runs") == 3
        left = {r.dagster_run.run_id for r in instance.get_run_records()}
        assert left == {recent, running, dry.run_id, done.run_id}
        assert all(instance.all_logs(run_id) == [] for run_id in [*old_hello, old_failure])

        # with no recent success, a job's newest old success is kept
        only_old = hello_job.execute_in_process(instance=instance).run_id
        _age(instance, only_old, 95)
        instance.delete_run(recent)
        again = dagster_run_retention_job.execute_in_process(instance=instance)
        assert again.output_for_node("delete_old_dagster_runs") == 0
        assert instance.get_run_by_id(only_old) is not None


def test_keep_days_below_one_is_refused():
    result = dagster_run_retention_job.execute_in_process(
        run_config={"ops": {"delete_old_dagster_runs": {"config": {"keep_days": 0}}}},
        raise_on_error=False,
    )
    assert not result.success
    message = result.failure_data_for_node("delete_old_dagster_runs").error.message
    assert "keep_days and max_runs must be at least 1" in message
