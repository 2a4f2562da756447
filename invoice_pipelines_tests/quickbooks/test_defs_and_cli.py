"""The QuickBooks assets, sensor, schedules, check and commands, against the simulator."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from dagster import (
    AssetKey,
    DagsterInstance,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
    materialize,
)
from sqlalchemy import select, update

from invoice_pipelines.cli import main
from invoice_pipelines.db.tables import organizations, qbo_connections, sales_invoices
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.lib.partitions import (
    ORGANIZATIONS_PARTITIONS_NAME,
    partition_range_tags,
)
from invoice_pipelines.lib.run_coordinator import BULK_RUN_TAGS
from invoice_pipelines.quickbooks.assets import SYNC_ASSETS
from invoice_pipelines.quickbooks.checks import qbo_tokens_check
from invoice_pipelines.quickbooks.domain.tokens import save_connection, token_cipher
from invoice_pipelines.quickbooks.resources import QuickBooks
from invoice_pipelines.quickbooks.schedules import DAILY_SCHEDULES, due_batches
from invoice_pipelines.quickbooks.sensors import qbo_push_sensor
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.quickbooks.conftest import TIME_SCALE, TOKEN_KEY, connect
from invoice_pipelines_tests.quickbooks.test_credit_memos import _credit
from invoice_pipelines_tests.quickbooks.test_skonto_push import _settled_two_rate_invoice


def _resources(qbo) -> dict:
    return {
        "database": Database(url=qbo.db.url),
        "system_database": SystemDatabase(url=qbo.db.url),
        "quickbooks": QuickBooks(
            base_url=qbo.sim.base_url,
            token_url=qbo.sim.token_url,
            token_key=TOKEN_KEY,
            time_scale=TIME_SCALE,
        ),
    }


def test_materializing_an_organization_syncs_and_pushes_with_counts_as_metadata(
    sqlite_database, simulator
):
    qbo = connect(sqlite_database, simulator)
    customer = qbo.add_customer("Dagster Kunde GmbH")
    item = qbo.add_item("TOOL", "24.90")
    qbo.add_invoice("RE-2026-7001", customer, [(item, "1", "24.90")])
    slug = qbo.org["slug"]
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [slug])
        result = materialize(
            [SYNC_ASSETS["customers"], SYNC_ASSETS["items"], SYNC_ASSETS["invoices"]],
            instance=instance,
            partition_key=slug,
            resources=_resources(qbo),
        )
        assert result.success
        metadata = {
            m.asset_key.to_user_string(): m.metadata
            for m in result.get_asset_materialization_events()
            for m in [m.materialization]
        }
    pushed = {asset: values["pushed"].value for asset, values in metadata.items()}
    assert pushed == {"qbo_customers": 1, "qbo_items": 1, "qbo_invoices": 1}
    # the invoice push's own further figures are its own: the other syncs keep their keys
    assert set(metadata["qbo_customers"]) == {
        *("pushed", "pulled", "linked", "conflicts", "held", "failed", "unchanged"),
        *("organizations", "not_connected", "refused", "by_organization"),
    }
    assert metadata["qbo_items"]["by_organization"].value.splitlines()[0] == (
        "| organization | pushed | pulled | linked | conflicts | held | failed |"
    )
    assert [r["DocNumber"] for r in simulator.records(qbo.realm, "Invoice")] == ["RE-2026-7001"]


def test_the_invoice_push_counts_invoices_apart_from_voids_credit_memos_and_discounts(
    sqlite_database, simulator, tmp_path
):
    qbo = connect(sqlite_database, simulator)
    buyer = qbo.add_customer("Apart Gezählt GmbH", email="ap@apart.example")
    tool = qbo.add_item("TOOL", "24.90")
    cancelled = qbo.add_invoice("RE-2026-0701", buyer, [(tool, "1", "24.90")])
    qbo.add_invoice("RE-2026-0702", buyer, [(tool, "2", "24.90")])
    # these two and RE-2026-0700 in QBO, RE-2026-0700 paid in time: its discount waits to go out
    _settled_two_rate_invoice(qbo, LocalFiles(str(tmp_path / "documents")))
    with tenant_transaction(qbo.engine, qbo.org_id, write=True) as conn:
        conn.execute(
            update(sales_invoices)
            .where(sales_invoices.c.id == cancelled)
            .values(status="cancelled")
        )
    _credit(qbo, "RE-2026-0702")
    qbo.add_invoice("RE-2026-0703", buyer, [(tool, "3", "24.90")])
    slug = qbo.org["slug"]
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [slug])
        result = materialize(
            [SYNC_ASSETS["invoices"]],
            instance=instance,
            partition_key=slug,
            resources=_resources(qbo),
        )
        assert result.success
        (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    counts = {
        name: metadata[name].value
        for name in ("pushed", "voided", "credit_memos_pushed", "discounts_pushed", "failed")
    }
    # one invoice reached QuickBooks; the void, the credit note and the discount counted apart
    assert counts == {
        "pushed": 1,
        "voided": 1,
        "credit_memos_pushed": 1,
        "discounts_pushed": 1,
        "failed": 0,
    }
    table = metadata["by_organization"].value
    assert table.splitlines()[0] == (
        "| organization | pushed | voided | credit\\_memos\\_pushed | discounts\\_pushed | pulled "
        "| linked | conflicts | held | failed |"
    )
    assert table.splitlines()[2].split("|")[2:7] == [" 1 ", " 1 ", " 1 ", " 1 ", " 0 "]
    numbers = sorted(r["DocNumber"] for r in simulator.records(qbo.realm, "Invoice"))
    assert numbers == ["RE-2026-0700", "RE-2026-0701", "RE-2026-0702", "RE-2026-0703"]
    assert len(simulator.records(qbo.realm, "CreditMemo")) == 2  # the credit note, the discount


def test_a_range_run_syncs_the_organizations_it_can_and_fails_naming_a_refused_token(
    sqlite_database, simulator
):
    good = connect(sqlite_database, simulator)
    good.add_customer("Guter Kunde GmbH")
    bad = connect(sqlite_database, simulator)
    # a reconnect someone else made since: our refresh token is refused (invalid_grant)
    save_connection(
        bad.engine,
        bad.org_id,
        system=bad.db.system_engine,
        realm_id=bad.realm,
        client_id=bad.company.client_id,
        client_secret=bad.company.client_secret,
        refresh_token="revoked-elsewhere",
        cipher=token_cipher(TOKEN_KEY),
    )
    slugs = [good.org["slug"], bad.org["slug"]]
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, slugs)
        result = materialize(
            [SYNC_ASSETS["customers"]],
            instance=instance,
            tags=partition_range_tags(slugs[0], slugs[-1]),
            resources=_resources(good),
            raise_on_error=False,
        )
        asset = AssetKey("qbo_customers")
        assert instance.get_materialized_partitions(asset) == {good.org["slug"]}
        [done] = instance.fetch_materializations(asset, limit=10).records
    assert done.asset_materialization.metadata["pushed"].value == 1
    assert not result.success
    message = result.failure_data_for_node("qbo_customers").error.message
    assert f"Failure: 1 of 2 partitions refused: {bad.org['slug']}: " in message
    assert "invalid_grant" in message
    assert message.strip().endswith(f"(done nonetheless: {good.org['slug']})")
    assert len(simulator.records(good.realm, "Customer")) == 1


def test_the_push_sensor_asks_for_organizations_with_unpushed_invoices(sqlite_database, simulator):
    qbo = connect(sqlite_database, simulator)
    customer = qbo.add_customer("Sensor Kunde")
    item = qbo.add_item("HOUR", "78.50")
    qbo.add_invoice("RE-2026-8001", customer, [(item, "1", "78.50")])
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [qbo.org["slug"]])
        with build_sensor_context(
            instance=instance,
            resources={
                "database": Database(url=qbo.db.url),
                "system_database": SystemDatabase(url=qbo.db.url),
            },
        ) as context:
            found = qbo_push_sensor(context)
        requests = [r for r in found if r.partition_key == qbo.org["slug"]]
    assert len(requests) == 1
    assert requests[0].tags["invoice_pipelines/organization"] == qbo.org["slug"]


def test_the_push_sensor_asks_again_for_an_invoice_refused_until_its_customer_was_synced(
    sqlite_database, simulator
):
    from invoice_pipelines.quickbooks.domain.sync.customers import sync_customers
    from invoice_pipelines.quickbooks.domain.sync.invoices import push_invoices, queue_counts
    from invoice_pipelines.quickbooks.domain.sync.items import sync_items

    qbo = connect(sqlite_database, simulator)
    customer = qbo.add_customer("Spät Synchron GmbH")
    item = qbo.add_item("HOUR", "78.50")
    qbo.add_invoice("RE-2026-8101", customer, [(item, "1", "78.50")])
    with qbo.client() as client:
        # pushed before its customer and item reached QBO (a new demo connection): refused
        assert push_invoices(qbo.engine, qbo.organization, client).failed == 1

    def run_keys() -> list[str]:
        with DagsterInstance.ephemeral() as instance:
            instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [qbo.org["slug"]])
            with build_sensor_context(
                instance=instance,
                resources={
                    "database": Database(url=qbo.db.url),
                    "system_database": SystemDatabase(url=qbo.db.url),
                },
            ) as context:
                found = qbo_push_sensor(context)
        return [r.run_key for r in found if r.partition_key == qbo.org["slug"]]

    refused = run_keys()
    assert len(refused) == 1 and run_keys() == refused  # one run for it, not one a minute
    with qbo.client() as client:
        sync_customers(qbo.engine, qbo.organization, client)
        sync_items(qbo.engine, qbo.organization, client)
    synced = run_keys()
    assert len(synced) == 1 and synced != refused  # the customer is there now: a new run
    with qbo.client() as client:
        assert push_invoices(qbo.engine, qbo.organization, client).pushed == 1
    assert queue_counts(qbo.engine, qbo.org_id) == {"pushed": 1}


def test_daily_schedules_run_each_organization_at_its_local_hour_in_batches(
    sqlite_database, simulator
):
    berlin = connect(sqlite_database, simulator)
    with system_transaction(sqlite_database.engine, write=True) as conn:
        conn.execute(
            update(organizations)
            .where(organizations.c.id == berlin.org_id)
            .values(timezone="Europe/Berlin")
        )
    slug = berlin.org["slug"]
    resources = {
        "database": Database(url=berlin.db.url),
        "system_database": SystemDatabase(url=berlin.db.url),
    }
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [slug])
        # 01:00 UTC in November is 02:00 in Berlin: payments, not customers
        at = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
        with build_schedule_context(
            instance=instance, scheduled_execution_time=at, resources=resources
        ) as context:
            payments = DAILY_SCHEDULES["payments"](context)
            customers = DAILY_SCHEDULES["customers"](context)
    mine = [
        r
        for r in payments
        if slug in r.run_config["ops"]["qbo_payments"]["config"]["organizations"]
    ]
    assert len(mine) == 1
    # the run shows on the partitions of its organizations in the UI
    batch = mine[0].run_config["ops"]["qbo_payments"]["config"]["organizations"]
    # and is bulk work: it leaves intake a run (lib/run_coordinator.py)
    assert mine[0].tags == {
        "dagster/asset_partition_range_start": batch[0],
        "dagster/asset_partition_range_end": batch[-1],
        **BULK_RUN_TAGS,
    }
    assert not isinstance(customers, list) or all(
        slug not in r.run_config["ops"]["qbo_customers"]["config"]["organizations"]
        for r in customers
    )
    assert due_batches(["a", "b", "c", "d", "e"], {"b", "c", "e"}, per_run=2) == [["b", "c"], ["e"]]


def test_the_token_check_warns_weeks_before_the_refresh_token_expires(sqlite_database, simulator):
    from dagster import build_asset_check_context

    qbo = connect(sqlite_database, simulator)
    with tenant_transaction(qbo.engine, qbo.org_id, write=True) as conn:
        conn.execute(
            update(qbo_connections)
            .where(qbo_connections.c.organization_id == qbo.org_id)
            .values(refresh_expires_at=datetime.now(UTC) + timedelta(days=20))
        )
    result = qbo_tokens_check(
        build_asset_check_context(),
        database=Database(url=qbo.db.url),
        system_database=SystemDatabase(url=qbo.db.url),
    )
    assert not result.passed
    assert qbo.org["slug"] in result.metadata["reconnect"].value


def test_the_commands_connect_sync_and_list_conflicts(
    sqlite_database, simulator, monkeypatch, capsys
):
    org = sqlite_database.new_organization()
    company = simulator.create_company()
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", sqlite_database.url)
    monkeypatch.setenv("INVOICE_PIPELINES_QBO_BASE_URL", simulator.base_url)
    monkeypatch.setenv("INVOICE_PIPELINES_QBO_TOKEN_URL", simulator.token_url)
    monkeypatch.setenv("INVOICE_PIPELINES_QBO_TOKEN_KEY", TOKEN_KEY)
    monkeypatch.setenv("QBO_CLIENT_SECRET", company.client_secret)
    monkeypatch.setenv("QBO_REFRESH_TOKEN", company.refresh_token)
    simulator.create_as_user(company.realm_id, "Customer", {"DisplayName": "Aus QBO GmbH"})
    assert (
        main(
            [
                "qbo-connect",
                "--org",
                org["slug"],
                "--realm",
                company.realm_id,
                "--client-id",
                company.client_id,
                "--tax-codes",
                "19=TAX,0=NON",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["qbo-sync", "--org", org["slug"], "--what", "customers"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["customers"]["pulled"] == 1
    assert main(["qbo-conflicts", "--org", org["slug"]]) == 0
    assert "no conflicts" in capsys.readouterr().out
    assert main(["qbo-sync", "--org", "no-such-org"]) == 2


def test_a_held_conflict_is_resolved_from_the_launchpad_job(sqlite_database, simulator):
    from invoice_pipelines.db.tables import customers, sync_conflicts
    from invoice_pipelines.quickbooks.domain.sync.customers import sync_customers
    from invoice_pipelines.quickbooks.jobs import qbo_resolve_conflict_job

    qbo = connect(sqlite_database, simulator)
    tied = qbo.add_customer("Launchpad Kunde", phone="0")
    with qbo.client() as client:
        sync_customers(qbo.engine, qbo.organization, client)
    simulator.edit_as_user(
        qbo.realm,
        "Customer",
        qbo.mapping("customer", tied)["qbo_id"],
        {"PrimaryPhone": {"FreeFormNumber": "from QBO"}},
    )
    with tenant_transaction(qbo.engine, qbo.org_id, write=True) as conn:
        conn.execute(
            update(customers)
            .where(customers.c.id == tied)
            .values(phone="ours", updated_at=datetime.fromtimestamp(simulator.now(), UTC))
        )
    with qbo.client() as client:
        assert sync_customers(qbo.engine, qbo.organization, client).held == 1
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        conflict_id = conn.execute(
            select(sync_conflicts.c.id).where(sync_conflicts.c.organization_id == qbo.org_id)
        ).scalar_one()
    result = qbo_resolve_conflict_job.execute_in_process(
        run_config={
            "ops": {
                "resolve_qbo_conflict": {
                    "config": {
                        "organization": qbo.org["slug"],
                        "conflict_id": conflict_id,
                        "keep": "qbo",
                        "resolved_by": "bea",
                    }
                }
            }
        },
        resources=_resources(qbo),
    )
    assert result.success
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        phone = conn.execute(select(customers.c.phone).where(customers.c.id == tied)).scalar_one()
        status = conn.execute(
            select(sync_conflicts.c.status).where(sync_conflicts.c.id == conflict_id)
        ).scalar_one()
    assert (phone, status) == ("from QBO", "resolved")
