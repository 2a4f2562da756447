"""The demo's QuickBooks (`make run`): seed-demo connects the demo organizations to the companies
the demo simulator creates, with a key of the demo's own, once; their first sync creates our
customers and items in QBO, once."""

from __future__ import annotations

import stat

from sqlalchemy import select

from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.tables import qbo_connections
from invoice_pipelines.db.tenancy import find_organization, system_transaction
from invoice_pipelines_devtools.demo.quickbooks import (
    COMPANIES_FILE,
    KEY_FILE,
    connect_demo_organizations,
    create_demo_companies,
    first_sync,
)
from invoice_pipelines_devtools.demo.seed import DEMO_ORGANIZATIONS, seed_demo
from invoice_pipelines_devtools.qbo_simulator import QboSimulator
from invoice_pipelines_tests.checked_latest import assert_checked_latest

SLUGS = [spec["org"]["slug"] for spec in DEMO_ORGANIZATIONS]


def test_the_demo_organizations_are_connected_once_and_sync_with_the_demo_simulator(
    tmp_path, sqlite_migrated_factory
):
    url = sqlite_migrated_factory(tmp_path / "demo.sqlite3")
    engine = make_engine(url)
    data_dir = tmp_path / "data"
    seed_demo(engine, system=engine, orders_per_org=2)
    assert connect_demo_organizations(engine, data_dir, SLUGS, system=engine) == SLUGS
    for name in (KEY_FILE, COMPANIES_FILE):  # secrets: the owner's alone
        assert stat.S_IMODE((data_dir / "qbo" / name).stat().st_mode) == 0o600
    with system_transaction(engine) as conn:
        stored = conn.execute(select(qbo_connections)).mappings().all()
    assert len(stored) == 3 and {row["status"] for row in stored} == {"active"}
    # a second seed-demo leaves the connections (their rotated tokens) alone
    assert connect_demo_organizations(engine, data_dir, SLUGS, system=engine) == []

    brandt = find_organization(engine, "brandt-it-service")
    seeded = next(s for s in DEMO_ORGANIZATIONS if s["org"]["slug"] == "brandt-it-service")
    with QboSimulator(port=0, data_dir=data_dir / "qbo") as sim:
        assert len(create_demo_companies(sim, data_dir)) == 3
        # what `serve` does once the simulator answers: each organization's first sync
        done = first_sync(engine, data_dir, sim.base_url, sim.token_url)
        assert done["brandt-it-service"] == (
            f"{len(seeded['customers'])} customers and {len(seeded['items'])} items created in QBO"
        )
        assert sorted(done) == sorted(SLUGS)
        realm = next(r["realm_id"] for r in stored if r["organization_id"] == brandt.id)
        in_qbo = {r["DisplayName"] for r in sim.records(realm, "Customer")}
        # each company keeps its books in its organization's currency (a German one in EUR)
        for spec in DEMO_ORGANIZATIONS:
            org = find_organization(engine, spec["org"]["slug"])
            realm_of = next(r["realm_id"] for r in stored if r["organization_id"] == org.id)
            currencies = {r["CurrencyRef"]["value"] for r in sim.records(realm_of, "Customer")}
            assert currencies == {spec["org"]["currency"]}, spec["org"]["slug"]
        assert first_sync(engine, data_dir, sim.base_url, sim.token_url) == {}  # once
    assert in_qbo == {c[1] for c in seeded["customers"]}
    # the simulator restarted on its data dir knows the companies: nothing is created again
    with QboSimulator(port=0, data_dir=data_dir / "qbo") as sim:
        assert create_demo_companies(sim, data_dir) == []
    engine.dispose()


def test_the_first_sync_is_recorded_as_materializations_of_qbo_customers_and_qbo_items(
    tmp_path, sqlite_migrated_factory
):
    """make run's first sync happens in the simulator's process, not in a Dagster run: before,
    qbo_customers and qbo_items said "never materialized" although the demo had synced them. It
    is recorded in the instance now, per organization partition, with the sync's counts."""
    from dagster import AssetKey, instance_for_test

    from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME

    url = sqlite_migrated_factory(tmp_path / "demo.sqlite3")
    engine = make_engine(url)
    data_dir = tmp_path / "data"
    seed_demo(engine, system=engine, orders_per_org=2)
    connect_demo_organizations(engine, data_dir, SLUGS, system=engine)
    seeded = next(s for s in DEMO_ORGANIZATIONS if s["org"]["slug"] == "brandt-it-service")
    with (
        instance_for_test() as instance,
        QboSimulator(port=0, data_dir=data_dir / "qbo") as sim,
    ):
        create_demo_companies(sim, data_dir)
        first_sync(engine, data_dir, sim.base_url, sim.token_url, instance=instance)

        assert set(instance.get_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME)) == set(SLUGS)
        # the partitions it added are the organizations' too, recorded with their checks (issue
        # 85: the demo's organizations showed Missing on the `organizations` asset)
        assert instance.get_materialized_partitions(AssetKey("organizations")) == set(SLUGS)
        for asset, pushed in (
            ("qbo_customers", len(seeded["customers"])),
            ("qbo_items", len(seeded["items"])),
        ):
            key = AssetKey(asset)
            assert instance.get_materialized_partitions(key) == set(SLUGS), asset
            event = instance.get_latest_materialization_event(key)
            materialized = [
                e.asset_materialization
                for e in instance.fetch_materializations(key, limit=10).records
                if e.asset_materialization.partition == "brandt-it-service"
            ]
            assert event is not None and len(materialized) == 1
            assert materialized[0].metadata["pushed"].value == pushed
            assert materialized[0].metadata["failed"].value == 0
        # its checks are evaluated on it, as a sync run evaluates them (issue 73: "never ran")
        statuses = assert_checked_latest(
            instance, "qbo_customers", ["tokens_not_expiring", "company_switch"]
        )
        assert set(statuses.values()) == {"SUCCEEDED"}, statuses
    engine.dispose()
