"""A suspended organization gets nothing automatic (issue 75), on both databases: a run over a
range of organizations (a backfill's chunk, a schedule's batch) leaves its partition undone and
unmaterialized and says why, the schedules that list organizations leave it out, the supplier
notices wait; the others get their work as ever. (The sensors, the dunning schedule and the
exports are held in test_automation.py, test_suspended_backfill.py and exports' tests, the
QuickBooks runs in quickbooks/test_suspended.py.)"""

from __future__ import annotations

from datetime import UTC, date, datetime

from dagster import (
    AssetKey,
    DagsterInstance,
    build_schedule_context,
    instance_for_test,
)

from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines.housekeeping.schedules import archive_retention_schedule
from invoice_pipelines.lib.partitions import (
    ORGANIZATIONS_PARTITIONS_NAME,
    partition_range_tags,
)
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.tenants.domain.lifecycle import resume_organization, suspend_organization
from invoice_pipelines_tests.overdue.helpers import customer, invoice, levels_by_invoice
from invoice_pipelines_tests.overdue.test_defs import TICK, _defs

REASON = "unpaid since March"


def _suspend(db, org: dict) -> None:
    suspend_organization(
        db.engine, find_organization(db.engine, org["slug"]), reason=REASON, by="anna"
    )


def _said(instance, run_id: str) -> list[str]:
    return [e.message for e in instance.all_logs(run_id) if "is suspended" in e.message]


def test_a_dunning_run_over_a_range_leaves_a_suspended_organization_alone(db):
    first, paused, last = (db.new_organization() for _ in range(3))
    late = {
        org["slug"]: invoice(db, org, customer(db, org), date(2026, 10, 1))
        for org in (first, paused, last)
    }
    _suspend(db, paused)
    slugs = [first["slug"], paused["slug"], last["slug"]]
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, slugs)
        result = (
            _defs(db)
            .resolve_job_def("dunning_job")
            .execute_in_process(
                instance=instance,
                tags=partition_range_tags(slugs[0], slugs[-1]),
                run_config={"ops": {"dunning_notices": {"config": {"as_of": TICK.isoformat()}}}},
            )
        )
        materialized = instance.get_materialized_partitions(AssetKey("dunning_notices"))
        said = _said(instance, result.run_id)
    assert result.success
    # the others noticed and materialized; the suspended one neither, and the run says why
    assert materialized == {first["slug"], last["slug"]}
    for org in (first, last):
        assert levels_by_invoice(db, org) == {late[org["slug"]]: ["final_notice"]}
    assert levels_by_invoice(db, paused) == {}
    assert len(said) == 1 and paused["slug"] in said[0] and REASON in said[0]


def test_the_archive_retention_schedule_leaves_a_suspended_organization_out(db):
    running, paused = db.new_organization(), db.new_organization()
    _suspend(db, paused)
    with build_schedule_context(
        resources={"system_database": SystemDatabase(url=db.url)},
        scheduled_execution_time=datetime(2026, 11, 23, 2, 30, tzinfo=UTC),
    ) as context:
        requests = archive_retention_schedule(context)
    asked = {
        slug
        for r in requests
        for slug in r.run_config["ops"]["purge_archived_files"]["config"]["organizations"]
    }
    assert running["slug"] in asked
    assert paused["slug"] not in asked


def test_a_suspended_organizations_supplier_notices_wait_until_it_is_resumed(db, tmp_path):
    from invoice_pipelines.intake import jobs as intake_jobs
    from invoice_pipelines.resources.messaging.smtp import Smtp
    from invoice_pipelines.resources.peppol.access_point import PeppolAccessPoint
    from invoice_pipelines_devtools.standins.smtp import SmtpSink
    from invoice_pipelines_tests.intake.test_review import run_intake
    from invoice_pipelines_tests.intake.test_supplier_notices import document, known_supplier

    org = db.new_organization()
    known_supplier(db, tmp_path, org)
    run_intake(db, tmp_path / "rejected", org, {"u.xml": document("U-75")})  # rejected: a notice
    _suspend(db, org)

    def run(sink: SmtpSink) -> list:
        result = intake_jobs.supplier_notices_job.execute_in_process(
            resources={
                "database": Database(url=db.url),
                "system_database": SystemDatabase(url=db.url),
                "mailer": Smtp(port=sink.port, sender="eingang@buyer.example"),
                "peppol_access_point": PeppolAccessPoint(base_url="http://127.0.0.1:1"),
            },
            instance=DagsterInstance.ephemeral(),
        )
        assert result.success
        # (the job serves every organization: other tests' notices may go out here)
        return [m for m in sink.mailbox.messages if "U-75" in str(m["Subject"])]

    with SmtpSink() as sink:
        assert run(sink) == []
        resume_organization(db.engine, find_organization(db.engine, org["slug"]), by="anna")
        assert len(run(sink)) == 1
