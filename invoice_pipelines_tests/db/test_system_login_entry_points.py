"""Each area's entry points with a system login of its own, as a deployment runs them (issue 74).

The suite's own database runs in single-login mode, where the runtime engine may do the work over
every organization itself: an entry point that hands the runtime engine to `system_transaction`
(or to a lookup over every organization) passes there. Here the runtime login is granted the
application role only and the work over every organization has a login of its own, the runs get
both resources (`database`, `system_database`) and the commands both settings: a runtime engine
handed to system work is refused by PostgreSQL ("permission denied to set role"), and the test
fails naming it. One sensor tick, one asset or check and one command of intake, queue, billing,
documents, overdue and tenants.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from dagster import (
    build_asset_check_context,
    build_sensor_context,
    instance_for_test,
    materialize,
)
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from invoice_pipelines.billing.checks import sales_invoices_audit
from invoice_pipelines.cli import main
from invoice_pipelines.db.engine import make_engine, make_system_engine
from invoice_pipelines.db.tables import batch_jobs, organizations
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.documents.sensors import documents_sensor
from invoice_pipelines.intake.assets import supplier_register
from invoice_pipelines.intake.checks import no_stuck_documents
from invoice_pipelines.intake.sensors import upload_sensor
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.overdue.checks import last_run_fresh
from invoice_pipelines.overdue.domain.scheduling import schedule_settings
from invoice_pipelines.overdue.sensors import build_dunning_sensor
from invoice_pipelines.queue.dagster_jobs import batch_job_control_job
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines.tenants.assets import organizations_asset
from invoice_pipelines.tenants.sensors import organizations_sensor
from invoice_pipelines_tests.billing.shop import make_shop
from invoice_pipelines_tests.db.test_system_scope import login  # noqa: F401 - the fixture
from invoice_pipelines_tests.intake.test_health import _doc
from invoice_pipelines_tests.queue.kinds import batch_jobs_sensor, invoice_batch_jobs_sensor
from invoice_pipelines_tests.tenants.period_ticks import tick


@pytest.fixture
def logins(pg_database, login, monkeypatch, tmp_path):  # noqa: F811 - the fixture
    """The runtime and the system login's URLs, set for the commands as a deployment sets them,
    and the runs' two resources for them."""
    runtime, system = login("invoice_app"), login("invoice_app_system")
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", runtime)
    monkeypatch.setenv("INVOICE_PIPELINES_SYSTEM_DB_URL", system)
    monkeypatch.setenv("INVOICE_PIPELINES_STORAGE", "local")
    monkeypatch.setenv("INVOICE_PIPELINES_DOCUMENT_DIR", str(tmp_path / "documents"))
    monkeypatch.setenv("INVOICE_PIPELINES_UPLOAD_DIR", str(tmp_path / "uploads"))
    resources = {
        "database": Database(url=runtime, system_url=system),
        "system_database": SystemDatabase(url=runtime, system_url=system),
    }
    engines = {
        "database": make_engine(runtime, system_url=system),
        "system_database": make_system_engine(runtime, system_url=system),
    }
    yield runtime, system, resources, engines
    for engine in engines.values():
        engine.dispose()


@pytest.fixture
def instance():
    with instance_for_test() as instance:
        yield instance


def _organization(pg_database, instance) -> dict:
    org = pg_database.new_organization()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [org["slug"]])
    return org


def test_the_runtime_login_is_refused_the_work_over_every_organization(logins) -> None:
    """What makes every other test here bite: system work on the runtime engine fails."""
    runtime, system, _, _ = logins
    engine = make_engine(runtime, system_url=system)
    try:
        with pytest.raises(DBAPIError, match="permission denied to set role"):
            with system_transaction(engine) as conn:
                conn.execute(select(organizations.c.id)).all()
    finally:
        engine.dispose()


def _cli(*argv: str, capsys) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_tenants(pg_database, logins, instance, capsys) -> None:
    _, _, resources, engines = logins
    org = pg_database.new_organization()
    with build_sensor_context(instance=instance, resources=resources) as context:
        organizations_sensor(context)  # writes the new keys itself
    assert instance.has_dynamic_partition(ORGANIZATIONS_PARTITIONS_NAME, org["slug"])
    done = materialize(
        [organizations_asset],
        partition_key=org["slug"],
        resources={**resources, "upload_store": LocalUploads()},
        instance=instance,
    )
    assert done.success
    code, out = _cli("organizations", "show", org["slug"], capsys=capsys)
    assert code == 0 and org["slug"] in out
    code, out = _cli("organizations", "suspend", org["slug"], "--reason", "unpaid", capsys=capsys)
    assert code == 0
    code, out = _cli("organizations", "list", "--json", capsys=capsys)
    [row] = [json.loads(line) for line in out.splitlines() if org["slug"] in line]
    assert row["state"] == "suspended"


def test_intake(pg_database, logins, instance, tmp_path, capsys) -> None:
    _, _, resources, engines = logins
    org = _organization(pg_database, instance)
    store = LocalUploads(str(tmp_path / "uploads"))
    with build_sensor_context(
        instance=instance, resources={**resources, "upload_store": store}
    ) as context:
        upload_sensor(context)  # nothing dropped: what matters is that it ran
    done = materialize(
        [supplier_register], partition_key=org["slug"], resources=resources, instance=instance
    )
    assert done.success
    # one document of this organization waits: the check over every organization, on the system
    # login, sees it (other tests' organizations in this database may wait too)
    _doc(pg_database, org, "stuck.pdf", minutes_ago=10)
    context = build_asset_check_context(instance=instance)
    result = no_stuck_documents(context, system_database=engines["system_database"])
    assert not result.passed
    assert result.metadata["by_organization"].value[org["slug"]] == 1
    code, _ = _cli("suppliers", "list", "--org", org["slug"], capsys=capsys)
    assert code == 0


def test_queue(pg_database, logins, instance, batch_kinds, capsys) -> None:
    _, _, resources, engines = logins
    shop = make_shop(pg_database)
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [shop.org["slug"]])
    shop.add_orders(1)
    code, out = _cli("batch-invoice", "--org", shop.org["slug"], "--all-reviewed", capsys=capsys)
    assert code == 0
    job_id = int(out.split()[0])
    for sensor in (batch_jobs_sensor, invoice_batch_jobs_sensor):
        with build_sensor_context(instance=instance, resources=resources) as context:
            sensor(context)
    result = batch_job_control_job.execute_in_process(
        run_config={"ops": {"control_batch_job": {"config": {
            "batch_job_id": job_id, "action": "cancel", "requested_by": "anna"}}}},
        resources={**resources, "batch_kinds": batch_kinds},
        instance=instance,
    )  # fmt: skip
    assert result.success
    code, out = _cli("batch-status", str(job_id), capsys=capsys)
    assert code == 0 and "cancelled" in out
    code, out = _cli("batch-list", capsys=capsys)
    assert code == 0 and str(job_id) in out


def test_billing_and_documents(pg_database, logins, instance, capsys) -> None:
    _, _, resources, engines = logins
    shop = make_shop(pg_database)
    slug = shop.org["slug"]
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [slug])
    shop.add_orders(2)
    code, out = _cli("batch-invoice", "--org", slug, "--all-reviewed", "--wait", capsys=capsys)
    assert code == 0
    job_id = int(out.split()[0])
    with tenant_transaction(pg_database.engine, shop.org_id) as conn:
        status = conn.execute(select(batch_jobs.c.status).where(batch_jobs.c.id == job_id))
        assert status.scalar_one() == "completed"
    results = list(sales_invoices_audit(build_asset_check_context(instance=instance), **engines))
    assert {r.check_name for r in results} >= {"gapless_invoice_numbers_all_organizations"}
    with build_sensor_context(instance=instance, resources=resources) as context:
        documents_sensor(context)
    with tenant_transaction(pg_database.engine, shop.org_id) as conn:
        invoice_ids = list(
            conn.execute(
                text(f"SELECT id FROM sales_invoices WHERE organization_id = {shop.org_id}")
            ).scalars()
        )
    ids = ",".join(map(str, invoice_ids))
    code, _ = _cli("batch-documents", "--org", slug, "--invoices", ids, "--wait", capsys=capsys)
    assert code == 0


def test_overdue(pg_database, logins, instance, capsys) -> None:
    _, _, resources, engines = logins
    org = _organization(pg_database, instance)
    sensor = build_dunning_sensor(
        schedule_settings({}), clock=lambda: datetime(2026, 11, 21, 8, tzinfo=UTC)
    )
    # yesterday's tick was the last taken in hand: today's is due, its organizations found
    # on the system login
    latest = datetime(2026, 11, 20, 0, 0, tzinfo=ZoneInfo("Europe/Berlin")).isoformat()
    result = tick(sensor, instance, engines["system_database"], json.dumps({"latest": latest}))
    assert any(org["slug"] in str(r.tags) for r in result.run_requests)
    # no run yet, the organization just added
    assert last_run_fresh(system_database=engines["system_database"]).passed
    code, out = _cli(
        "dunning-base-rate", "--org", org["slug"], "--from", "2026-07-01", "--percent", "1.27",
        capsys=capsys,
    )  # fmt: skip
    assert code == 0 and "1.27" in out
    with system_transaction(pg_database.system_engine) as conn:
        settings = conn.execute(
            select(organizations.c.settings).where(organizations.c.id == org["id"])
        ).scalar_one()
    assert settings["dunning"]["interest"]["base_rates"] == [
        {"from": "2026-07-01", "percent": "1.27"}
    ]
