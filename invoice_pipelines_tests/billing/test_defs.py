"""The Dagster side of billing: sales_invoices and its checks, queue sensor, launchpad config,
stuck-job schedule, control job."""

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from dagster import (
    DagsterInstance,
    DagsterInvalidConfigError,
    Definitions,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    job,
    op,
    validate_run_config,
)
from sqlalchemy import func, select, update

from invoice_pipelines.areas import kinds
from invoice_pipelines.billing.area import AREA as BILLING
from invoice_pipelines.billing.checks import AUDIT_CHECKS
from invoice_pipelines.billing.defs import defs as billing_defs
from invoice_pipelines.billing.domain.invoicing import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_WORKERS,
    claim_batch_job,
    process_batch_job,
)
from invoice_pipelines.billing.domain.invoicing_kinds import enqueue_sales_orders
from invoice_pipelines.db.tables import (
    audit_log,
    batch_jobs,
    invoice_number_sequences,
    items,
    organizations,
    sales_invoices,
    sales_orders,
)
from invoice_pipelines.db.tenancy import find_organization, system_transaction, tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.lib.partitions import ORGANIZATION_TAG, ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.lib.run_coordinator import BULK_RUN_TAGS
from invoice_pipelines.queue.dagster import BATCH_JOB_TAG
from invoice_pipelines.queue.dagster_jobs import batch_job_control_job, fail_stuck_batch_jobs_job
from invoice_pipelines.queue.defs import build_defs
from invoice_pipelines.queue.domain.jobs import get_batch_job
from invoice_pipelines.queue.domain.requests import DEFAULT_DUE_DAYS, local_runner_name
from invoice_pipelines.queue.schedules import fail_stuck_batch_jobs_schedule
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.scheduled_checks import EVALUATED_AT
from invoice_pipelines_tests.billing.shop import make_shop
from invoice_pipelines_tests.checked_latest import assert_checked_latest
from invoice_pipelines_tests.queue.kinds import batch_jobs_sensor

# billing's definitions with the queue's for billing's kinds (which need the database only), as
# definitions.py merges them; the queue's binds those kinds as the `batch_kinds` resource
KINDS = kinds([BILLING])
defs = Definitions.merge(billing_defs, build_defs(KINDS))


def resources(db) -> dict:
    return {
        "database": Database(url=db.url),
        "system_database": SystemDatabase(url=db.url),
        "batch_kinds": KINDS,
    }


def batch_config(request: dict | None = None, **settings) -> dict:
    config = {**({"request": request} if request is not None else {}), **settings}
    return {"ops": {"sales_invoices": {"config": config}}}


def run_batch(db, slug: str, run_config=None, *, instance=None, raise_on_error=True, tags=None):
    """batch_invoicing_job for one organization's partition, resolved as the code location does."""
    instance = instance or DagsterInstance.ephemeral()
    if not instance.has_dynamic_partition(ORGANIZATIONS_PARTITIONS_NAME, slug):
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [slug])
    resolved = Definitions.merge(defs, Definitions(resources=resources(db))).resolve_job_def(
        "batch_invoicing_job"
    )
    return resolved.execute_in_process(
        run_config=run_config,
        instance=instance,
        partition_key=slug,
        raise_on_error=raise_on_error,
        tags=tags,
    )


def materialized(result) -> dict:
    """What the sales_invoices asset page shows for the run."""
    [event] = result.asset_materializations_for_node("sales_invoices")
    return {k: v.value for k, v in event.metadata.items()}


def checks_of(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def refusal(result) -> str:
    """The one sentence a refused run shows; refused runs carry no chained trace."""
    assert not result.success
    [failure] = result.get_step_failure_events()
    data = failure.event_specific_data
    assert data.error.cause is None and data.error.context is None
    assert data.user_failure_data is not None
    return data.user_failure_data.description


def tick(db, instance, cursor=None, *, partitions=True):
    """One sensor tick; with `partitions`, organizations_sensor has added every organization's
    partition before it (as it does within 30 s of an organization's creation)."""
    if partitions:
        with system_transaction(db.engine) as conn:
            slugs = conn.execute(select(organizations.c.slug)).scalars().all()
        known = set(instance.get_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME))
        instance.add_dynamic_partitions(
            ORGANIZATIONS_PARTITIONS_NAME, [s for s in slugs if s not in known]
        )
    with build_sensor_context(instance=instance, cursor=cursor, resources=resources(db)) as context:
        return batch_jobs_sensor(context), context


def requests_for(result, job_ids):
    return [
        r
        for r in getattr(result, "run_requests", []) or []
        if int(r.tags[BATCH_JOB_TAG]) in job_ids
    ]


def test_a_pending_job_gets_exactly_one_run_request_tagged_with_its_organization(fresh_db):
    # the sensor looks over every organization: a database of its own (the shared one holds
    # other tests' pending jobs, more than one page of them at times)
    db = fresh_db
    shop = make_shop(db)
    job_id = enqueue_sales_orders(
        db.engine, find_organization(db.engine, shop.org["slug"]), order_ids=shop.add_orders(1)
    )
    # a job `batch-invoice --wait` processes itself is not the sensor's business
    enqueue_sales_orders(
        db.engine,
        find_organization(db.engine, shop.org_id),
        order_ids=shop.add_orders(1),
        runner=local_runner_name(),
    )
    instance = DagsterInstance.ephemeral()

    result, context = tick(db, instance)
    [request] = requests_for(result, {job_id})
    assert request.run_key == f"batch-job-{job_id}"
    assert request.tags[ORGANIZATION_TAG] == shop.org["slug"]
    assert request.partition_key == shop.org["slug"]
    # built by the queue's sensor from what the kind names (`OwnJob`: job, op, config; bulk)
    assert request.job_name == "batch_invoicing_job"
    config = request.run_config["ops"]["sales_invoices"]["config"]
    assert config == {"request": {"queued_job": {"batch_job_id": job_id}}}
    assert request.tags[BATCH_JOB_TAG] == str(job_id)
    assert {k: request.tags[k] for k in BULK_RUN_TAGS} == BULK_RUN_TAGS
    validated = validate_run_config(
        Definitions.merge(defs, Definitions(resources=resources(db))).resolve_job_def(
            "batch_invoicing_job"
        ),
        request.run_config,
    )
    # the rest of the op's config keeps its defaults
    assert {
        k: validated["ops"]["sales_invoices"]["config"][k] for k in ("chunk_size", "workers")
    } == {"chunk_size": DEFAULT_CHUNK_SIZE, "workers": DEFAULT_WORKERS}
    assert len(requests_for(result, set(range(job_id + 1, job_id + 10)))) == 0

    # the next tick, while the run is still queued: nothing new for this job
    again, _ = tick(db, instance, cursor=result.cursor)
    assert requests_for(again, {job_id}) == []
    assert json.loads(result.cursor)["last_id"] >= job_id


def test_a_job_waits_for_its_organizations_partition_without_holding_back_others(fresh_db):
    """A job of an organization organizations_sensor has not added yet is not requested (its run
    would fail on an unknown partition) and is launched once the partition exists; other
    organizations' jobs go ahead meanwhile. Requests carry Dagster's partition tag."""
    # the sensor looks over every organization: a database of its own (the shared one holds
    # other tests' pending jobs, more than one page of them at times)
    db = fresh_db
    early, late = make_shop(db), make_shop(db)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [early.org["slug"]])
    waiting = enqueue_sales_orders(
        db.engine, find_organization(db.engine, late.org["slug"]), order_ids=late.add_orders(1)
    )
    ready = enqueue_sales_orders(
        db.engine, find_organization(db.engine, early.org["slug"]), order_ids=early.add_orders(1)
    )

    first, _ = tick(db, instance, partitions=False)
    assert requests_for(first, {waiting}) == []
    [request] = requests_for(first, {ready})
    assert request.partition_key == early.org["slug"]
    assert request.tags["dagster/partition"] == early.org["slug"]

    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [late.org["slug"]])
    second, _ = tick(db, instance, cursor=first.cursor, partitions=False)
    [request] = requests_for(second, {waiting})
    assert request.tags[ORGANIZATION_TAG] == request.tags["dagster/partition"] == late.org["slug"]
    assert requests_for(second, {ready}) == []  # requested once


def test_a_job_committed_late_below_the_cursor_is_still_launched(fresh_db):
    # the sensor looks over every organization: a database of its own (the shared one holds
    # other tests' pending jobs, more than one page of them at times)
    db = fresh_db
    shop = make_shop(db)
    job_id = enqueue_sales_orders(
        db.engine, find_organization(db.engine, shop.org_id), order_ids=shop.add_orders(1)
    )
    cursor = json.dumps({"last_id": job_id + 1000, "launched": {}})
    result, _ = tick(db, DagsterInstance.ephemeral(), cursor=cursor)
    assert [r.run_key for r in requests_for(result, {job_id})] == [f"batch-job-{job_id}"]


def test_nothing_pending_is_a_skip(fresh_db):
    # the sensor looks over every organization: a database of its own (the shared one holds
    # other tests' pending jobs, more than one page of them at times)
    db = fresh_db
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


def test_a_processing_job_whose_run_died_is_resumed_once(fresh_db):
    # the sensor looks over every organization: a database of its own (the shared one holds
    # other tests' pending jobs, more than one page of them at times)
    db = fresh_db
    shop = make_shop(db)
    job_id = enqueue_sales_orders(
        db.engine, find_organization(db.engine, shop.org_id), order_ids=shop.add_orders(2)
    )
    with DagsterInstance.ephemeral() as instance:
        dead = dies.execute_in_process(instance=instance, raise_on_error=False)
        claim_batch_job(
            db.engine,
            find_organization(db.engine, shop.org_id),
            get_batch_job(db.engine, job_id),
            dead.run_id,
        )  # claimed, then the run died
        result, _ = tick(db, instance, cursor=json.dumps({"last_id": job_id}))
        [request] = requests_for(result, {job_id})
        assert request.run_key == f"batch-job-{job_id}-resume-{dead.run_id}"

        resumed = run_batch(
            db,
            request.partition_key,
            request.run_config,
            instance=instance,
            tags=request.tags,
        )
        assert resumed.success
        assert get_batch_job(db.engine, job_id).status == "completed"
        assert len(shop.invoices()) == 2


@pytest.mark.parametrize(
    ("tags", "created_by", "expected"),
    [
        ({"dagster/sensor_name": "invoice_batch_jobs_sensor"}, None, "dagster"),
        ({"dagster/schedule_name": "nightly", "dagster/user": "carla"}, None, "carla"),
        ({"dagster/user": "carla"}, "anna", "anna"),
        ({}, "  ", "launchpad"),
    ],
)
def test_the_job_records_who_asked(db, tags, created_by, expected):
    # the audit trail of a batch job names the person, else what started the run
    shop = make_shop(db)
    request = {"order_ids": shop.add_orders(1)}
    if created_by is not None:
        request["created_by"] = created_by
    with DagsterInstance.ephemeral() as instance:
        result = run_batch(
            db,
            shop.org["slug"],
            batch_config({"sales_orders": request}),
            instance=instance,
            tags=tags,
        )
        job_row = get_batch_job(db.engine, materialized(result)["batch_job_id"])
    assert job_row.created_by == expected


def test_launchpad_request_enqueues_and_processes_in_one_run(db):
    shop = make_shop(db)
    orders = shop.add_orders(3)
    with DagsterInstance.ephemeral() as instance:
        result = run_batch(
            db,
            shop.org["slug"],
            batch_config(
                {
                    "sales_orders": {
                        "order_ids": orders,
                        "invoice_date": "2026-12-01",
                        "due_days": 30,
                    }
                },
                chunk_size=2,
            ),
            instance=instance,
        )
        assert result.success
        output = materialized(result)
        assert (output["status"], output["invoiced"]) == ("completed", 3)
        job_row = get_batch_job(db.engine, output["batch_job_id"])
        assert job_row.runner == result.run_id and job_row.created_by == "launchpad"
        assert [i["invoice_number"] for i in shop.invoices()] == [
            f"RE-2026-{n:06d}" for n in (1, 2, 3)
        ]
        assert shop.invoices()[0]["due_date"].isoformat() == "2026-12-31"
        # a single job with nothing else numbering beside it never falls back
        assert output["fallbacks"] == 0
        [event] = result.get_asset_materialization_events()
        assert event.partition == shop.org["slug"]
        assert output["orders_invoiced_today"] == 3 and output["jobs_today"] == 1
        assert output["invoiced_amounts"]["EUR"]["gross"] == str(
            sum((i["gross_total"] for i in shop.invoices()), Decimal("0"))
        )
        # the run checked what it wrote, and says so on the asset
        checks = checks_of(result)
        assert checks["gapless_invoice_numbers"].passed
        assert checks["totals_consistent"].passed
        assert checks["totals_consistent"].metadata["checked_invoices"].value == 3
        # and observed the orders it read
        [seen] = [
            e.event_specific_data.asset_observation
            for e in result.all_events
            if e.event_type_value == "ASSET_OBSERVATION"
        ]
        assert seen.asset_key.to_user_string() == "sales_orders"
        assert seen.metadata["orders_invoiced"].value == 3
        # this organization's customers only, though other tests' organizations share the database
        assert seen.metadata["customers"].value == len(shop.customer_ids)
        # taken by this run: the sensor does not launch another one
        sensor_result, _ = tick(db, instance)
        assert requests_for(sensor_result, {output["batch_job_id"]}) == []


def test_launchpad_customer_lines(db):
    shop = make_shop(db)
    ok = run_batch(
        db,
        shop.org["slug"],
        batch_config(
            {
                "customer_lines": {
                    "customers": [
                        {
                            "customer_id": shop.customer_ids[0],
                            "lines": [
                                {
                                    "item_id": shop.item_ids["BOOK"],
                                    "quantity": "2",
                                    "unit_price": "10.00",
                                },
                                {
                                    "description": "Setup",
                                    "unit_price": "100.00",
                                    "vat_rate": "0.00",
                                    "vat_category": "AE",
                                    "line_type": "charge",
                                },
                            ],
                        }
                    ],
                }
            },
        ),
    )
    assert ok.success
    assert [i["gross_total"] for i in shop.invoices()] == [Decimal("121.40")]  # 20.00 + 7 % + 100


def test_stuck_job_schedule_fails_jobs_without_progress(db):
    shop = make_shop(db)
    job_id = enqueue_sales_orders(
        db.engine, find_organization(db.engine, shop.org_id), order_ids=shop.add_orders(2)
    )
    org = find_organization(db.engine, shop.org_id)
    claim_batch_job(db.engine, org, get_batch_job(db.engine, job_id), "a-run-that-hangs")
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
    other = enqueue_sales_orders(
        db.engine, find_organization(db.engine, shop.org_id), order_ids=shop.add_orders(1)
    )
    claim_batch_job(db.engine, org, get_batch_job(db.engine, other), "slow-run")
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
    pending = enqueue_sales_orders(
        db.engine, find_organization(db.engine, shop.org_id), order_ids=shop.add_orders(1)
    )
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
        db.engine,
        enqueue_sales_orders(
            db.engine, find_organization(db.engine, shop.org_id), order_ids=[blocked]
        ),
        system=db.system_engine,
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
    again = batch_job_control_job.execute_in_process(
        run_config={
            "ops": {
                "control_batch_job": {"config": {"batch_job_id": done.id, "action": "retry_failed"}}
            }
        },
        resources=resources(db),
        raise_on_error=False,
    )
    assert (
        refusal(again)
        == f"Batch job {done.id} was already retried as job {retry_id}; retry that one instead."
    )
    unknown = batch_job_control_job.execute_in_process(
        run_config={
            "ops": {
                "control_batch_job": {"config": {"batch_job_id": 999999999, "action": "cancel"}}
            }
        },
        resources=resources(db),
        raise_on_error=False,
    )
    assert refusal(unknown) == "There is no batch job 999999999."


def test_materializing_a_partition_without_config_invoices_every_reviewed_order(db):
    """What "Materialize" on an organization's partition in the UI does."""
    shop = make_shop(db)
    shop.add_orders(2)
    result = run_batch(db, shop.org["slug"])
    assert result.success
    output = materialized(result)
    assert (output["status"], output["invoiced"]) == ("completed", 2)
    assert output["jobs_today"] == 1 and output["orders_invoiced_today"] == 2
    assert output["failed_items_today"] == 0
    assert "average_duration_seconds" in output
    assert len(shop.invoices()) == 2


def test_failed_items_are_listed_on_the_asset(db):
    shop = make_shop(db)
    good = shop.add_orders(1)
    result = run_batch(db, shop.org["slug"], batch_config({"sales_orders": {"order_ids": good}}))
    again = run_batch(db, shop.org["slug"], batch_config({"sales_orders": {"order_ids": good}}))
    assert materialized(result)["failed"] == 0 and "failed_items" not in materialized(result)
    # already invoiced: skipped, not failed; the run stays green and says so
    assert materialized(again)["skipped"] == 1


def test_the_audit_checks_find_a_gap_and_totals_that_do_not_add_up(fresh_db):
    # the audit looks at every organization: in the shared databases, invoices other tests made
    # without lines (export and delivery fixtures) would fail it whenever those tests ran first
    db = fresh_db
    shop = make_shop(db)
    run_batch(
        db, shop.org["slug"], batch_config({"sales_orders": {"order_ids": shop.add_orders(2)}})
    )
    audit = Definitions.merge(defs, Definitions(resources=resources(db))).resolve_job_def(
        "sales_invoices_checks_job"
    )
    clean = {e.check_name: e for e in audit.execute_in_process().get_asset_check_evaluations()}
    assert clean["gapless_invoice_numbers_all_organizations"].passed
    assert clean["totals_consistent_all_organizations"].passed
    # an order reviewed last week and never invoiced: the daily work did not keep up
    late = shop.add_orders(1)[0]
    with system_transaction(db.engine, write=True) as conn:
        conn.execute(
            update(sales_orders)
            .where(sales_orders.c.id == late)
            .values(order_date=date.today() - timedelta(days=7))
        )
    stale = {e.check_name: e for e in audit.execute_in_process().get_asset_check_evaluations()}
    behind = stale["reviewed_orders_invoiced"]
    assert not behind.passed and behind.severity.value == "WARN"
    assert behind.metadata["by_organization"].value[shop.org["slug"]] == 1
    first = shop.invoices()[0]
    with system_transaction(db.engine, write=True) as conn:
        conn.execute(
            update(sales_invoices)
            .where(sales_invoices.c.id == first["id"])
            .values(gross_total=first["gross_total"] + Decimal("0.01"))
        )
        # a number handed out that no invoice carries
        conn.execute(
            update(invoice_number_sequences)
            .where(invoice_number_sequences.c.organization_id == shop.org_id)
            .values(last_value=invoice_number_sequences.c.last_value + 1)
        )
    found = {e.check_name: e for e in audit.execute_in_process().get_asset_check_evaluations()}
    gaps = found["gapless_invoice_numbers_all_organizations"]
    assert not gaps.passed and gaps.severity.value == "ERROR"
    assert gaps.metadata["organizations_with_gaps"].value[shop.org["slug"]]["gaps"] == [3]
    totals = found["totals_consistent_all_organizations"]
    assert not totals.passed and totals.severity.value == "ERROR"
    [wrong] = [
        w for w in totals.metadata["first_problems"].value if w["organization"] == shop.org["slug"]
    ]
    assert wrong["invoice"] == first["invoice_number"] and "gross_total" in wrong["problems"][0]
    # the next batch run of the organization reports the gap on the asset too
    result = run_batch(
        db, shop.org["slug"], batch_config({"sales_orders": {"order_ids": shop.add_orders(1)}})
    )
    assert not checks_of(result)["gapless_invoice_numbers"].passed
    # ... while the invoices that run wrote add up
    assert checks_of(result)["totals_consistent"].passed


def test_definitions_load_with_the_database_resource():
    merged = Definitions.merge(
        defs, Definitions(resources={"database": Database(), "system_database": SystemDatabase()})
    )
    assert (
        merged.resolve_schedule_def("sales_invoices_checks_schedule").default_status.value
        == "RUNNING"
    )
    Definitions.validate_loadable(merged)
    assert merged.resolve_job_def("batch_invoicing_job").executor_def.name == "in_process"
    assert merged.resolve_sensor_def("batch_jobs_sensor").default_status.value == "RUNNING"
    assert (
        merged.resolve_schedule_def("fail_stuck_batch_jobs_schedule").default_status.value
        == "RUNNING"
    )


def test_more_pending_jobs_than_one_page_are_all_launched(db):
    """Jobs launched but not yet started must not hide newer ones behind the page limit."""
    org = db.new_organization()
    ids = [
        enqueue_sales_orders(db.engine, find_organization(db.engine, org["slug"]), order_ids=[1])
        for _ in range(130)
    ]
    instance = DagsterInstance.ephemeral()
    seen: set[int] = set()
    cursor = None
    for _ in range(3):
        result, context = tick(db, instance, cursor=cursor)
        for request in getattr(result, "run_requests", None) or []:
            job_id = int(request.run_key.removeprefix("batch-job-"))
            assert job_id not in seen, "a job was requested twice"
            seen.add(job_id)
        cursor = context.cursor if not hasattr(result, "cursor") else result.cursor
    assert set(ids) <= seen


def test_invalid_requests_are_refused_by_config_validation_before_any_run():
    resolved = Definitions.merge(
        defs, Definitions(resources={"database": Database(), "system_database": SystemDatabase()})
    )
    batch = resolved.resolve_job_def("batch_invoicing_job")
    request = {"sales_orders": {"order_ids": [1]}}
    for config in [
        {"organization": "acme", "request": request},  # the organization is the partition
        {"request": {**request, "all_reviewed": {}}},  # two kinds
        {"request": {"everything": {}}},  # no such kind
        {"all_reviewed": True},  # the old flat shape
        {"request": {"sales_orders": {"order_ids": ["12a"]}}},
        {"request": {"sales_orders": {}}},  # ids missing
        {"request": {"queued_job": {}}},  # job id missing
        {"request": {"all_reviewed": {"due_days": "soon"}}},
        {
            "request": {
                "customer_lines": {
                    "customers": [{"customer_id": 1, "lines": [{"line_type": "gift"}]}]
                }
            },
        },
        {
            "request": {
                "customer_lines": {
                    "customers": [{"customer_id": 1, "lines": [{"vat_category": "X"}]}]
                }
            },
        },
    ]:
        with pytest.raises(DagsterInvalidConfigError):
            validate_run_config(batch, {"ops": {"sales_invoices": {"config": config}}})
    # no config at all is a valid request: every reviewed order
    validate_run_config(batch, {})
    for config in [
        {"batch_job_id": 1, "action": "explode"},  # actions are an enum
        {"batch_job_id": 1},
    ]:
        with pytest.raises(DagsterInvalidConfigError):
            validate_run_config(
                batch_job_control_job, {"ops": {"control_batch_job": {"config": config}}}
            )


def _fields_without_description(config_type, path: str) -> list[str]:
    missing = []
    for name, field in (getattr(config_type, "fields", None) or {}).items():
        if not field.description:
            missing.append(f"{path}.{name}")
        inner = field.config_type
        while getattr(inner, "inner_type", None) is not None:  # arrays, Noneable
            inner = inner.inner_type
        missing += _fields_without_description(inner, f"{path}.{name}")
    return missing


def test_every_launchpad_config_field_has_a_description():
    from invoice_pipelines.definitions import defs as everything

    missing = []
    for job_def in everything.get_repository_def().get_all_jobs():
        for node in job_def.graph.node_defs:
            if node.config_schema is not None and node.config_schema.config_type is not None:
                missing += _fields_without_description(
                    node.config_schema.config_type, f"{job_def.name}.{node.name}"
                )
    # the selector branches (`request.sales_orders`, ...) are named by their key
    assert [m for m in missing if not m.endswith(BRANCHES)] == []


BRANCHES = (
    ".request.queued_job",
    ".request.sales_orders",
    ".request.all_reviewed",
    ".request.customer_lines",
    ".request.documents",  # invoice_batch_job (queue/defs.py)
    ".request.communications",
    ".request.credit_notes",
)


def _recorded(db, org_id: int) -> tuple[int, int]:
    with system_transaction(db.engine) as conn:
        jobs = conn.execute(
            select(func.count()).where(batch_jobs.c.organization_id == org_id)
        ).scalar_one()
        audits = conn.execute(
            select(func.count()).where(audit_log.c.organization_id == org_id)
        ).scalar_one()
    return jobs, audits


def test_run_time_refusals_are_one_plain_sentence_and_record_nothing(db):
    shop = make_shop(db)
    other = make_shop(db)
    slug = shop.org["slug"]
    mine = shop.add_orders(1)[0]
    theirs = other.add_orders(1)[0]
    foreign_job = enqueue_sales_orders(
        db.engine, find_organization(db.engine, other.org_id), order_ids=[theirs]
    )
    before = _recorded(db, shop.org_id)
    cases = [
        (
            "no-such-org",
            batch_config({"all_reviewed": {}}),
            "There is no organization 'no-such-org' (its partition outlived it).",
        ),
        (
            slug,
            batch_config({"sales_orders": {"order_ids": [mine, theirs]}}),
            f"Organization '{slug}' has no sales orders {theirs}.",
        ),
        (
            slug,
            batch_config({"sales_orders": {"order_ids": [mine, 0]}}),
            "Sales order ids are positive integers, not 0.",
        ),
        (
            slug,
            batch_config({"sales_orders": {"order_ids": []}}),
            "No sales order ids given.",
        ),
        (
            slug,
            batch_config({"all_reviewed": {"invoice_date": "1.12."}}),
            "Invoice_date must be a date like 2026-11-30, not '1.12.'.",
        ),
        (
            slug,
            batch_config({"all_reviewed": {"up_to": "2026-13-01"}}),
            "Up_to must be a date like 2026-11-30, not '2026-13-01'.",
        ),
        (
            slug,
            batch_config({"all_reviewed": {"due_days": -1}}),
            "Due_days must be 0 or more, not -1.",
        ),
        (
            slug,
            batch_config({"all_reviewed": {}}, workers=99),
            "workers must be between 1 and 8, not 99.",
        ),
        (
            slug,
            batch_config({"all_reviewed": {}}, chunk_size=0),
            "chunk_size must be at least 1, not 0.",
        ),
        (
            slug,
            batch_config({"queued_job": {"batch_job_id": foreign_job}}),
            f"Batch job {foreign_job} belongs to organization '{other.org['slug']}', not '{slug}'.",
        ),
        (
            slug,
            batch_config({"queued_job": {"batch_job_id": 999999999}}),
            "There is no batch job 999999999.",
        ),
        (
            slug,
            batch_config(
                {
                    "customer_lines": {
                        "customers": [
                            {"customer_id": other.customer_ids[0], "lines": [{"item_id": 1}]}
                        ]
                    }
                },
            ),
            f"Organization '{slug}' has no customers {other.customer_ids[0]}.",
        ),
        (
            slug,
            batch_config(
                {
                    "customer_lines": {
                        "customers": [
                            {
                                "customer_id": shop.customer_ids[0],
                                "lines": [{"item_id": other.item_ids["BOOK"]}],
                            }
                        ]
                    }
                },
            ),
            f"Organization '{slug}' has no items {other.item_ids['BOOK']}.",
        ),
        (
            slug,
            batch_config(
                {
                    "customer_lines": {
                        "customers": [
                            {"customer_id": shop.customer_ids[0], "lines": [{"quantity": "2"}]}
                        ]
                    }
                },
            ),
            "Customer entry 1, line 1: a line without item_id needs description, unit_price, "
            "vat_rate, vat_category.",
        ),
    ]
    for partition, run_config, message in cases:
        result = run_batch(db, partition, run_config, raise_on_error=False)
        assert refusal(result) == message
        assert result.get_asset_materialization_events() == []
    assert _recorded(db, shop.org_id) == before
    assert shop.invoices() == []
    assert get_batch_job(db.engine, foreign_job).status == "pending"


def test_due_days_default_to_the_organizations_payment_terms(db):
    shop = make_shop(db)
    plain = make_shop(db)
    with system_transaction(db.engine, write=True) as conn:
        conn.execute(
            update(organizations)
            .where(organizations.c.id == shop.org_id)
            .values(settings={"payment_terms_days": 21})
        )
    for each, days in ((shop, 21), (plain, DEFAULT_DUE_DAYS)):
        result = run_batch(
            db,
            each.org["slug"],
            batch_config(
                {"sales_orders": {"order_ids": each.add_orders(1), "invoice_date": "2026-12-01"}}
            ),
        )
        job = get_batch_job(db.engine, materialized(result)["batch_job_id"])
        assert job.due_days == days
        [invoice] = each.invoices()
        assert (invoice["due_date"] - invoice["issue_date"]).days == days


def test_a_batch_run_shows_the_daily_audit_on_its_materialization(fresh_db):
    """The audit's three checks run daily over every invoice; a batch run materializes
    sales_invoices many times a day. Each batch run restates what the audit last found, saying
    when, so the UI shows them on the latest materialization instead of "Not evaluated" (issue
    73); before the audit's first run the batch run evaluates them itself."""
    db = fresh_db
    shop = make_shop(db)
    slug = shop.org["slug"]
    audited = list(AUDIT_CHECKS)
    with DagsterInstance.ephemeral() as instance:
        first = run_batch(db, slug, batch_config(), instance=instance)
        evaluated = checks_of(first)
        assert set(audited) <= set(evaluated)
        assert all(EVALUATED_AT not in evaluated[name].metadata for name in audited)
        assert_checked_latest(instance, "sales_invoices", audited)

        audit = Definitions.merge(defs, Definitions(resources=resources(db))).resolve_job_def(
            "sales_invoices_checks_job"
        )
        assert audit.execute_in_process(instance=instance).success
        shop.add_orders(1)
        second = run_batch(db, slug, batch_config(), instance=instance)
        restated = checks_of(second)
        for name in audited:
            assert EVALUATED_AT in restated[name].metadata, name
            assert "(as evaluated " in restated[name].description
        statuses = assert_checked_latest(
            instance, "sales_invoices", [*audited, "gapless_invoice_numbers", "totals_consistent"]
        )
        assert statuses["totals_consistent_all_organizations"] == "SUCCEEDED"
