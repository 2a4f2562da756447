"""A sensor that launches one run per organization takes turns (lib/turns.py, issue 55: "a
sensor's requests stop with the sensor"): at most RUNS_PER_TICK organizations a tick, the next
tick goes on after the last one served, and a round requests every waiting organization once.
Dagster's daemon submits every request of a tick, also after `dagster sensor stop`; so after a
stop at most RUNS_PER_TICK runs are still requested instead of all of them."""

from __future__ import annotations

from dagster import (
    DagsterRunStatus,
    SkipReason,
    build_sensor_context,
    instance_for_test,
)
from dagster._core.test_utils import create_run_for_test

from invoice_pipelines.documents.sensors import documents_sensor
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.lib.turns import RUNS_PER_TICK, organizations_with_a_run, take_turn
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines_tests.exports.books import customer, sales_invoice


def _round(cursor: str, waiting: list[str], limit: int) -> tuple[list[list[str]], str]:
    """The turns until the round is over (the cursor back at the start)."""
    turns = []
    while True:
        turn = take_turn(cursor, [(slug, slug) for slug in waiting], limit)
        turns.append(turn.requests)
        cursor = turn.cursor
        if not cursor:
            return turns, cursor


def test_a_round_serves_every_waiting_organization_once_a_few_a_tick():
    waiting = [f"org-{n:03d}" for n in range(45)]
    turns, cursor = _round("", list(reversed(waiting)), 20)
    assert [len(t) for t in turns] == [20, 20, 5]
    assert [slug for turn in turns for slug in turn] == waiting  # in slug order, none twice
    # the next round starts from the first again
    assert take_turn(cursor, [(s, s) for s in waiting], 20).requests == waiting[:20]


def test_the_next_tick_goes_on_after_the_last_one_served_whatever_changed_meanwhile():
    waiting = [f"org-{n:03d}" for n in range(10)]
    first = take_turn(None, [(s, s) for s in waiting], 4)
    assert first.requests == waiting[:4] and first.cursor == "org-003" and first.later == 6
    # org-004 was done meanwhile, a new organization before the cursor waits for the next round
    now = [s for s in waiting if s != "org-004"] + ["org-000a"]
    second = take_turn(first.cursor, [(s, s) for s in now], 4)
    assert second.requests == ["org-005", "org-006", "org-007", "org-008"]
    third = take_turn(second.cursor, [(s, s) for s in now], 4)
    assert third.requests == ["org-009"] and third.cursor == ""
    assert take_turn(third.cursor, [(s, s) for s in now], 4).requests[:2] == [
        "org-000",
        "org-000a",
    ]
    # every organization after the cursor was done meanwhile: the new round starts at once
    assert take_turn("org-009", [("org-001", 1)], 4).requests == [1]
    assert take_turn("", [], 4).requests == []


def test_documents_sensor_requests_at_most_a_turn_a_tick_and_goes_on_where_it_stopped(db):
    count = RUNS_PER_TICK * 2 + 5
    slugs = []
    for _ in range(count):
        org = db.new_organization()
        sales_invoice(db.engine, org["id"], customer(db.engine, org["id"], "K-1", "Kunde GmbH"))
        slugs.append(org["slug"])
    served: list[str] = []
    with instance_for_test() as instance:
        # the sensor requests runs of the organizations the instance knows: these
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, slugs)
        cursor = None
        sizes = []
        while True:
            with build_sensor_context(
                instance=instance,
                cursor=cursor,
                resources={
                    "database": Database(url=db.url),
                    "system_database": SystemDatabase(url=db.url),
                },
            ) as context:
                result = documents_sensor(context)
            assert not isinstance(result, SkipReason)
            sizes.append(len(result.run_requests))
            served += [request.partition_key for request in result.run_requests]
            cursor = result.cursor
            if not cursor:
                break
    assert sizes == [RUNS_PER_TICK, RUNS_PER_TICK, 5]
    assert served == sorted(slugs)  # every organization once, none lost, none twice


def test_dagsters_daemon_does_not_look_at_a_sensors_state_while_it_submits():
    """Why the turns: the daemon's check of a sensor stopped in the middle of a tick's requests
    (`_daemon/sensor.py` `_submit_run_requests`) runs only when the instance names an interval,
    which Dagster's own instance does not. Should a later Dagster do it, the turns still hold."""
    with instance_for_test() as instance:
        assert instance.get_tick_termination_check_interval() is None


def _run(instance, job_name: str, slug: str, status: DagsterRunStatus) -> None:
    create_run_for_test(
        instance, job_name=job_name, status=status, tags={"dagster/partition": slug}
    )


def test_an_organization_whose_run_waits_or_works_is_not_asked_for_again(db):
    """Issue 56: the run key of a batch's documents (its newest invoice) changed every tick while
    the batch was written, and each tick queued one more documents run of the organization. An
    organization with a documents run queued or under way gets no other; once that run is over,
    the sensor asks again for what still waits."""
    orgs = [db.new_organization() for _ in range(4)]
    for org in orgs:
        sales_invoice(db.engine, org["id"], customer(db.engine, org["id"], "K-1", "Kunde GmbH"))
    queued, started, done, idle = (org["slug"] for org in orgs)
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [o["slug"] for o in orgs])
        _run(instance, "documents_job", queued, DagsterRunStatus.NOT_STARTED)
        _run(instance, "documents_job", started, DagsterRunStatus.STARTED)
        _run(instance, "documents_job", done, DagsterRunStatus.SUCCESS)
        _run(instance, "qbo_invoices_job", idle, DagsterRunStatus.STARTED)  # another job
        assert organizations_with_a_run(instance, "documents_job") == {queued, started}

        def tick() -> list[str]:
            with build_sensor_context(
                instance=instance,
                resources={
                    "database": Database(url=db.url),
                    "system_database": SystemDatabase(url=db.url),
                },
            ) as context:
                result = documents_sensor(context)
            return sorted(r.partition_key for r in getattr(result, "run_requests", []))

        assert tick() == sorted([done, idle])
        # the queued run ended: its organization's waiting invoices are asked for again
        for run in instance.get_runs():
            if run.tags.get("dagster/partition") == queued:
                instance.report_run_failed(run)
        assert tick() == sorted([queued, done, idle])
