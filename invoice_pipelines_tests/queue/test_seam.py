"""The queue as a seam: only queue/ writes batch-job rows, the queue imports no area, and a kind
the queue has never heard of runs through its Dagster job, its sensor and `batch-run` once it is
handed over with the kinds (one file of the kind's own and its line in its area's `kinds`: here,
this test hands `Kinds.of(LETTERS)` to the queue's Dagster objects and to the command)."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Literal

from dagster import DagsterInstance, Definitions, build_sensor_context
from sqlalchemy import select

import invoice_pipelines
from invoice_pipelines.db.tables import audit_log, batch_job_items
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.lib.partitions import ORGANIZATION_TAG, ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.lib.run_coordinator import BULK_RUN_TAGS
from invoice_pipelines.queue.dagster import BATCH_JOB_TAG, NewInvoiceJob
from invoice_pipelines.queue.dagster_jobs import OP
from invoice_pipelines.queue.defs import build_defs
from invoice_pipelines.queue.domain.job_kind import (
    SUCCEEDED,
    Chunks,
    ItemOutcome,
    JobKind,
    OwnJob,
    Reading,
    Requests,
    Retry,
)
from invoice_pipelines.queue.domain.jobs import get_batch_job
from invoice_pipelines.queue.domain.known_kinds import KINDS_RESOURCE, Kinds
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines_tests.queue.queued import queue_over_invoices

PACKAGE = Path(invoice_pipelines.__file__).parent
# a statement that writes one of the two tables, in SQLAlchemy (also under another name of the
# function: `sql_update(batch_jobs)`) or in SQL text
WRITES = re.compile(
    r"(?<![A-Za-z0-9])(insert|update|delete)\(\s*(batch_jobs|batch_job_items)\b"
    r"|\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(batch_jobs|batch_job_items)\b"
    r"|\bbatch_jobs?(_items)?\.(insert|update|delete)\("
    r"|update_rows\(\s*\w+\s*,\s*(batch_jobs|batch_job_items)\b",
    re.IGNORECASE,
)


def test_only_the_queue_writes_batch_job_rows():
    """Every statement that inserts, updates or deletes batch_jobs or batch_job_items is in
    queue/ (the migrations, which own the schema, aside)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "queue" or relative.parts[:2] == ("db", "migrations"):
            continue
        for match in WRITES.finditer(path.read_text()):
            line = path.read_text()[: match.start()].count("\n") + 1
            found.append(f"{relative}:{line} {match.group(0)}")
    assert not found, "batch-job rows written outside queue/:\n" + "\n".join(found)
    # and the check sees such a write where there is one (the queue's own), also where the
    # function has another name (offboarding's cancel did so before it went through the queue)
    assert WRITES.search((PACKAGE / "queue" / "domain" / "item_rows.py").read_text())
    assert WRITES.search("conn.execute(sql_update(batch_jobs).where(...))")


def test_the_queue_imports_no_area():
    # the areas (DESIGN.md); tenants has a defs.py too but is a shared layer the queue may use
    areas = {p.parent.name for p in PACKAGE.glob("*/defs.py")} - {"queue", "tenants"}
    assert {"billing", "delivery", "documents", "overdue"} <= areas
    imported = []
    for path in sorted((PACKAGE / "queue").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                parts = name.split(".")
                if parts[0] == "invoice_pipelines" and len(parts) > 1 and parts[1] in areas:
                    imported.append(f"{path.name}:{node.lineno} {name}")
    assert not imported, imported


# -- a kind the queue does not know: it counts the letters of each invoice's number -------------


class LettersJobRequest(NewInvoiceJob):
    """count the letters of the invoices' numbers"""

    kind: Literal["letters"] = "letters"


def _letters_work(engine, resources, run_id):
    def work(job, organization, request, invoice_ids):
        outcomes = {}
        for invoice_id in invoice_ids:
            if invoice_id % 2:  # odd ids are refused, with a reason
                outcomes[invoice_id] = ItemOutcome("failed", "odd", f"{invoice_id} is odd")
            else:
                outcomes[invoice_id] = SUCCEEDED
        return outcomes

    return work


def _closing(resources):
    def closing(conn, job, request):
        return [("batch_job.letters_counted", {"by": resources.counter_name})]

    return closing


LETTERS = JobKind(
    name="letters",
    runs=Chunks(_letters_work, closing=_closing),
    requests=Requests(
        config=LettersJobRequest,
        enqueue=lambda engine, org, request, who, runner: queue_over_invoices(
            engine, org, "letters", request.invoice_ids, created_by=who, runner=runner
        ),
    ),
    reading=Reading(unit="invoices", done="counted", asset=lambda engine, job: "letter_counts"),
    resource_keys=frozenset({"counter_name"}),
)


def _items(db, org_id: int, job_id: int) -> list[tuple]:
    i = batch_job_items.c
    with tenant_transaction(db.engine, org_id) as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(i.sales_invoice_id, i.status, i.error_code)
                .where(i.batch_job_id == job_id)
                .order_by(i.position)
            )
        ]


def _closing_rows(db, org_id: int, job_id: int) -> list:
    a = audit_log.c
    with tenant_transaction(db.engine, org_id) as conn:
        return conn.execute(
            select(a.details).where(
                a.entity_id == str(job_id), a.action == "batch_job.letters_counted"
            )
        ).all()


def test_a_registered_kind_runs_in_the_queues_job_from_the_launchpad(db):
    org = db.new_organization(name="Buchstaben GmbH")
    defs = Definitions.merge(
        build_defs(Kinds.of(LETTERS)),
        Definitions(
            resources={
                "database": Database(url=db.url),
                "system_database": SystemDatabase(url=db.url),
                "counter_name": "Zähler",
            }
        ),
    )
    instance = DagsterInstance.ephemeral()
    result = defs.resolve_job_def("invoice_batch_job").execute_in_process(
        run_config={
            "ops": {
                OP: {
                    "config": {
                        "organization": org["slug"],
                        "request": {"letters": {"invoice_ids": [4, 7, 10]}},
                    }
                }
            }
        },
        instance=instance,
    )
    assert result.success
    job_id = result.output_for_node(OP)["batch_job_id"]
    job = get_batch_job(db.engine, job_id)
    assert (job.kind, job.status, job.successful_count, job.failed_count) == (
        "letters",
        "completed_with_errors",
        2,
        1,
    )
    assert _items(db, org["id"], job_id) == [
        (4, "succeeded", None),
        (7, "failed", "odd"),
        (10, "succeeded", None),
    ]
    # its finish ran once, with the resource the kind asked for
    assert [r.details for r in _closing_rows(db, org["id"], job_id)] == [{"by": "Zähler"}]
    [materialization] = [
        e.event_specific_data.materialization
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
    ]
    assert materialization.asset_key.to_user_string() == "letter_counts"
    assert materialization.partition == org["slug"]


def test_a_registered_kind_is_launched_by_the_sensor_and_refused_for_another_kind(fresh_db):
    db = fresh_db
    org = db.new_organization(name="Buchstaben GmbH")
    job_id = queue_over_invoices(db.engine, org["slug"], "letters", [2])
    defs = build_defs(Kinds.of(LETTERS))
    [sensor] = defs.sensors
    assert sensor.name == "invoice_batch_jobs_sensor"
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [org["slug"]])
    with build_sensor_context(
        instance=instance,
        resources={"database": Database(url=db.url), "system_database": SystemDatabase(url=db.url)},
    ) as context:
        result = sensor(context)
    assert [r.run_key for r in result.run_requests] == [f"batch-job-{job_id}"]
    # a documents job is no kind this code location was given: its run is refused in a sentence
    other = queue_over_invoices(db.engine, org["slug"], "documents", [2])
    run = Definitions.merge(
        defs,
        Definitions(
            resources={
                "database": Database(url=db.url),
                "system_database": SystemDatabase(url=db.url),
                "counter_name": "x",
            }
        ),
    ).resolve_job_def("invoice_batch_job")
    refused = run.execute_in_process(
        run_config={"ops": {OP: {"config": {"request": {"queued_job": {"batch_job_id": other}}}}}},
        instance=instance,
        raise_on_error=False,
    )
    assert not refused.success
    failure = next(e for e in refused.all_events if e.event_type_value == "STEP_FAILURE")
    assert f"Batch job {other} is a documents job" in failure.event_specific_data.error.message
    assert get_batch_job(db.engine, other).status == "pending"  # nothing done to it


def test_a_kind_with_a_job_of_its_own_is_launched_as_it_names_it(fresh_db):
    """An own-job kind names its job, the op whose config takes the queued job and that config;
    the queue's `batch_jobs_sensor` builds the run request from them (no callable of the area's
    makes it): the job, the organization's partition and tags, the batch job's tag, and the bulk
    lane's tags only for a kind that says its runs are bulk work."""
    db = fresh_db
    org = db.new_organization(name="Stempel GmbH")
    stamps = JobKind(
        "stamps",
        runs=OwnJob("stamp_job", "stamp_op", lambda job_id: {"stamp": {"job": job_id}}),
        retry=Retry(lambda rows, original: {"items": [r.payload for r in rows]}),
    )
    job_id = queue_over_invoices(db.engine, org["slug"], "stamps", [3])
    [sensor] = build_defs(Kinds.of(stamps)).sensors
    assert (sensor.name, sensor.job_name) == ("batch_jobs_sensor", "stamp_job")
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [org["slug"]])
    with build_sensor_context(
        instance=instance,
        resources={"database": Database(url=db.url), "system_database": SystemDatabase(url=db.url)},
    ) as context:
        [request] = sensor(context).run_requests
    assert (request.run_key, request.job_name, request.partition_key) == (
        f"batch-job-{job_id}",
        "stamp_job",
        org["slug"],
    )
    assert request.run_config == {"ops": {"stamp_op": {"config": {"stamp": {"job": job_id}}}}}
    assert request.tags[ORGANIZATION_TAG] == org["slug"]
    assert request.tags[BATCH_JOB_TAG] == str(job_id)
    assert not set(BULK_RUN_TAGS) & set(request.tags)


def test_a_registered_kind_runs_from_the_command_line(db, capsys, monkeypatch, commands_given):
    from invoice_pipelines.cli import main

    org = db.new_organization(name="Buchstaben GmbH")
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    job_id = queue_over_invoices(db.engine, org["slug"], "letters", [2, 4, 5])
    # the kind with the areas' kinds (what its area's `kinds` would bring), and its resource
    # beside the areas' table, as a command takes its resources from it
    commands_given(LETTERS, counter_name=lambda: "Kommandozeile")
    assert main(["batch-run", str(job_id)]) == 1  # one item failed
    out = capsys.readouterr().out
    assert f"batch job {job_id} (letters) for {org['slug']}: completed_with_errors" in out
    assert "#3 invoice 5: odd: 5 is odd" in out
    assert [r.details for r in _closing_rows(db, org["id"], job_id)] == [{"by": "Kommandozeile"}]


def test_the_command_line_knows_the_kinds_the_areas_bring(db, capsys, monkeypatch):
    """A command may meet a job of every area's kind (batch-status describes it, batch-retry and
    batch-invoice queue its follow-ups, batch-run runs it): the console script hands every
    command the areas' kinds (`args.resources.batch_kinds`)."""
    from invoice_pipelines import areas
    from invoice_pipelines.cli import main

    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    org = db.new_organization(name="Buchstaben GmbH")
    job_id = queue_over_invoices(db.engine, org["slug"], "documents", [2])
    assert main(["batch-status", str(job_id)]) == 0
    # in the documents kind's words (its `Reading`), which the command found in what it was given
    assert "invoices: 1 requested, 0 processed, 0 written" in capsys.readouterr().out
    assert sorted(areas.command_resources()[KINDS_RESOURCE]()) == [
        "communications",
        "credit_notes",
        "customer_lines",
        "documents",
        "sales_orders",
    ]
