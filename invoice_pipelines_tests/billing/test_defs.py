"""The Dagster side of billing: queue sensor, launchpad config, stuck-job schedule, control job, stats."""

import json
from datetime import timedelta
from decimal import Decimal

from dagster import (
    DagsterInstance,
    Definitions,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
    job,
    materialize,
    op,
)
from sqlalchemy import update

from invoice_pipelines.billing.defs import (
    BATCH_JOB_TAG,
    batch_invoicing_job,
    batch_invoicing_stats,
    batch_job_control_job,
    batch_jobs_sensor,
    defs,
    fail_stuck_batch_jobs_job,
    fail_stuck_batch_jobs_schedule,
)
from invoice_pipelines.billing.invoicing import claim_batch_job, process_batch_job
from invoice_pipelines.billing.queue import enqueue_sales_orders, get_batch_job, local_runner_name
from invoice_pipelines.db.tables import batch_jobs, items
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.resources.database import Database
from invoice_pipelines.tenants.partitions import ORGANIZATION_TAG
from invoice_pipelines_tests.billing.shop import make_shop


def resources(db) -> dict:
    return {"database": Database(url=db.url)}


def tick(db, instance, cursor=None):
    context = build_sensor_context(instance=instance, cursor=cursor, resources=resources(db))
    return batch_jobs_sensor(context), context


def requests_for(result, job_ids):
    return [
        r
        for r in getattr(result, "run_requests", []) or []
        if int(r.tags[BATCH_JOB_TAG]) in job_ids
    ]


def test_a_pending_job_gets_exactly_one_run_request_tagged_with_its_organization(db):
    shop = make_shop(db)
    job_id = enqueue_sales_orders(db.engine, shop.org["slug"], order_ids=shop.add_orders(1))
    # a job `batch-invoice --wait` processes itself is not the sensor's business
    enqueue_sales_orders(
        db.engine, shop.org_id, order_ids=shop.add_orders(1), runner=local_runner_name()
    )
    instance = DagsterInstance.ephemeral()

    result, context = tick(db, instance)
    [request] = requests_for(result, {job_id})
    assert request.run_key == f"batch-job-{job_id}"
    assert request.tags[ORGANIZATION_TAG] == shop.org["slug"]
    assert request.run_config["ops"]["process_batch_invoicing"]["config"]["batch_job_id"] == job_id
    assert len(requests_for(result, set(range(job_id + 1, job_id + 10)))) == 0

    # the next tick, while the run is still queued: nothing new for this job
    again, _ = tick(db, instance, cursor=result.cursor)
    assert requests_for(again, {job_id}) == []
    assert json.loads(result.cursor)["last_id"] >= job_id


def test_a_job_committed_late_below_the_cursor_is_still_launched(db):
    shop = make_shop(db)
    job_id = enqueue_sales_orders(db.engine, shop.org_id, order_ids=shop.add_orders(1))
    cursor = json.dumps({"last_id": job_id + 1000, "launched": {}})
    result, _ = tick(db, DagsterInstance.ephemeral(), cursor=cursor)
    assert [r.run_key for r in requests_for(result, {job_id})] == [f"batch-job-{job_id}"]


def test_nothing_pending_is_a_skip(db):
    make_shop(db)
    instance = DagsterInstance.ephemeral()
    result, _ = tick(db, instance)
    while not isinstance(result, SkipReason):  # other tests' jobs: launch them all first
        result, _ = tick(db, instance, cursor=result.cursor)
    assert "no pending batch jobs" in result.skip_message


@op
def explode():
    raise RuntimeError("killed")


@job
def dies():
    explode()


def test_a_processing_job_whose_run_died_is_resumed_once(db):
    shop = make_shop(db)
    job_id = enqueue_sales_orders(db.engine, shop.org_id, order_ids=shop.add_orders(2))
    with instance_for_test() as instance:
        dead = dies.execute_in_process(instance=instance, raise_on_error=False)
        claim_batch_job(
            db.engine, get_batch_job(db.engine, job_id), dead.run_id
        )  # claimed, then the run died
        result, _ = tick(db, instance, cursor=json.dumps({"last_id": job_id}))
        [request] = requests_for(result, {job_id})
        assert request.run_key == f"batch-job-{job_id}-resume-{dead.run_id}"

        resumed = batch_invoicing_job.execute_in_process(
            run_config=request.run_config,
            resources=resources(db),
            instance=instance,
            tags=request.tags,
        )
        assert resumed.success
        assert get_batch_job(db.engine, job_id).status == "completed"
        assert len(shop.invoices()) == 2


def test_launchpad_request_enqueues_and_processes_in_one_run(db):
    shop = make_shop(db)
    orders = shop.add_orders(3)
    with instance_for_test() as instance:
        result = batch_invoicing_job.execute_in_process(
            run_config={
                "ops": {
                    "process_batch_invoicing": {
                        "config": {
                            "organization": shop.org["slug"],
                            "order_ids": orders,
                            "invoice_date": "2026-12-01",
                            "due_days": 30,
                            "chunk_size": 2,
                        }
                    }
                }
            },
            resources=resources(db),
            instance=instance,
        )
        assert result.success
        output = result.output_for_node("process_batch_invoicing")
        assert (output["status"], output["successful"]) == ("completed", 3)
        job_row = get_batch_job(db.engine, output["id"])
        assert job_row.runner == result.run_id and job_row.created_by == "launchpad"
        assert [i["invoice_number"] for i in shop.invoices()] == [
            f"RE-2026-{n:06d}" for n in (1, 2, 3)
        ]
        assert shop.invoices()[0]["due_date"].isoformat() == "2026-12-31"
        [stats] = result.get_asset_materialization_events()
        assert stats.partition == shop.org["slug"]
        assert stats.materialization.metadata["orders_invoiced_today"].value == 3
        # taken by this run: the sensor does not launch another one
        sensor_result, _ = tick(db, instance)
        assert requests_for(sensor_result, {output["id"]}) == []


def test_launchpad_customer_lines_and_bad_requests(db):
    shop = make_shop(db)
    ok = batch_invoicing_job.execute_in_process(
        run_config={
            "ops": {
                "process_batch_invoicing": {
                    "config": {
                        "organization": str(shop.org_id),
                        "customers": [
                            {
                                "customer_id": shop.customer_ids[0],
                                "lines": [
                                    {
                                        "item_id": shop.item_ids["BOOK"],
                                        "quantity": "2",
                                        "unit_price": "10.00",
                                    }
                                ],
                            }
                        ],
                    }
                }
            }
        },
        resources=resources(db),
    )
    assert ok.success
    assert [i["gross_total"] for i in shop.invoices()] == [Decimal("21.40")]  # 20.00 + 7 %
    for config, message in [
        ({"organization": "no-such-org", "order_ids": [1]}, "no organization"),
        ({"organization": shop.org["slug"]}, "nothing to invoice"),
        ({}, "give batch_job_id"),
    ]:
        bad = batch_invoicing_job.execute_in_process(
            run_config={"ops": {"process_batch_invoicing": {"config": config}}},
            resources=resources(db),
            raise_on_error=False,
        )
        assert not bad.success
        assert message in str(bad.get_step_failure_events()[0].event_specific_data.error.message)


def test_stuck_job_schedule_fails_jobs_without_progress(db):
    shop = make_shop(db)
    job_id = enqueue_sales_orders(db.engine, shop.org_id, order_ids=shop.add_orders(2))
    claim_batch_job(db.engine, get_batch_job(db.engine, job_id), "a-run-that-hangs")
    with tenant_transaction(db.engine, shop.org_id, write=True) as conn:
        conn.execute(
            update(batch_jobs)
            .where(batch_jobs.c.id == job_id)
            .values(heartbeat_at=utcnow() - timedelta(minutes=31))
        )
    [request] = fail_stuck_batch_jobs_schedule.evaluate_tick(build_schedule_context()).run_requests
    assert fail_stuck_batch_jobs_schedule.cron_schedule == "*/10 * * * *"
    result = fail_stuck_batch_jobs_job.execute_in_process(
        run_config=request.run_config, resources=resources(db)
    )
    assert job_id in result.output_for_node("fail_stuck_batch_jobs")
    job_row = get_batch_job(db.engine, job_id)
    assert job_row.status == "failed" and "no progress" in job_row.failure_reason
    # configurable: a 60-minute limit leaves a 31-minute-old job alone
    other = enqueue_sales_orders(db.engine, shop.org_id, order_ids=shop.add_orders(1))
    claim_batch_job(db.engine, get_batch_job(db.engine, other), "slow-run")
    with tenant_transaction(db.engine, shop.org_id, write=True) as conn:
        conn.execute(
            update(batch_jobs)
            .where(batch_jobs.c.id == other)
            .values(heartbeat_at=utcnow() - timedelta(minutes=31))
        )
    fail_stuck_batch_jobs_job.execute_in_process(
        run_config={"ops": {"fail_stuck_batch_jobs": {"config": {"stuck_after_minutes": 60}}}},
        resources=resources(db),
    )
    assert get_batch_job(db.engine, other).status == "processing"


def test_control_job_cancels_and_retries(db):
    shop = make_shop(db)
    pending = enqueue_sales_orders(db.engine, shop.org_id, order_ids=shop.add_orders(1))
    result = batch_job_control_job.execute_in_process(
        run_config={
            "ops": {"control_batch_job": {"config": {"batch_job_id": pending, "action": "cancel"}}}
        },
        resources=resources(db),
    )
    assert result.output_for_node("control_batch_job")["status"] == "cancelled"

    blocked = shop.add_order([("BOOK", 1)])
    shop.set_active(items, shop.item_ids["BOOK"], False)
    done = process_batch_job(
        db.engine, enqueue_sales_orders(db.engine, shop.org_id, order_ids=[blocked])
    )
    shop.set_active(items, shop.item_ids["BOOK"], True)
    result = batch_job_control_job.execute_in_process(
        run_config={
            "ops": {
                "control_batch_job": {"config": {"batch_job_id": done.id, "action": "retry_failed"}}
            }
        },
        resources=resources(db),
    )
    retry_id = result.output_for_node("control_batch_job")["retry_job_id"]
    assert get_batch_job(db.engine, retry_id).status == "pending"  # the sensor launches it
    bad = batch_job_control_job.execute_in_process(
        run_config={
            "ops": {"control_batch_job": {"config": {"batch_job_id": done.id, "action": "explode"}}}
        },
        resources=resources(db),
        raise_on_error=False,
    )
    assert not bad.success


def test_stats_asset_reports_todays_batch_work(db):
    shop = make_shop(db)
    process_batch_job(
        db.engine, enqueue_sales_orders(db.engine, shop.org_id, order_ids=shop.add_orders(2))
    )
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("organizations", [shop.org["slug"]])
        result = materialize(
            [batch_invoicing_stats],
            partition_key=shop.org["slug"],
            instance=instance,
            resources=resources(db),
        )
        [event] = result.get_asset_materialization_events()
        metadata = event.materialization.metadata
        assert metadata["jobs_today"].value == 1
        assert metadata["orders_invoiced_today"].value == 2
        assert metadata["failed_items_today"].value == 0
        assert metadata["average_duration_seconds"].value >= 0


def test_definitions_load_with_the_database_resource():
    merged = Definitions.merge(defs, Definitions(resources={"database": Database()}))
    Definitions.validate_loadable(merged)
    assert merged.resolve_job_def("batch_invoicing_job").executor_def.name == "in_process"
    assert merged.resolve_sensor_def("batch_jobs_sensor").default_status.value == "RUNNING"
    assert (
        merged.resolve_schedule_def("fail_stuck_batch_jobs_schedule").default_status.value
        == "RUNNING"
    )


def test_more_pending_jobs_than_one_page_are_all_launched(db):
    """Jobs launched but not yet started must not hide newer ones behind the page limit."""
    from dagster import DagsterInstance, build_sensor_context

    from invoice_pipelines.billing.defs import batch_jobs_sensor
    from invoice_pipelines.billing.queue import enqueue_sales_orders
    from invoice_pipelines.resources.database import Database

    org = db.new_organization()
    ids = [enqueue_sales_orders(db.engine, org["slug"], order_ids=[1]) for _ in range(130)]
    instance = DagsterInstance.ephemeral()
    seen: set[int] = set()
    cursor = None
    for _ in range(3):
        context = build_sensor_context(
            instance=instance, cursor=cursor, resources={"database": Database(url=db.url)}
        )
        result = batch_jobs_sensor(context)
        for request in getattr(result, "run_requests", None) or []:
            job_id = int(request.run_key.removeprefix("batch-job-"))
            assert job_id not in seen, "a job was requested twice"
            seen.add(job_id)
        cursor = context.cursor if not hasattr(result, "cursor") else result.cursor
    assert set(ids) <= seen
