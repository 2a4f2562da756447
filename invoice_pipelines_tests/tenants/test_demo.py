"""seed-demo creates three realistic organizations once, and the overview asset reports them."""

from dagster import DagsterInstance, materialize
from sqlalchemy import func, insert, select

from invoice_pipelines.db.tables import customers, organizations, sales_order_lines, sales_orders
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.resources.database import Database
from invoice_pipelines.tenants.defs import organization_overview
from invoice_pipelines.tenants.demo import seed_demo
from invoice_pipelines.tenants.partitions import ORGANIZATIONS_PARTITIONS_NAME


def _counts(engine):
    with system_transaction(engine) as conn:
        return tuple(
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (organizations, customers, sales_orders, sales_order_lines)
        )


def test_seed_demo_is_idempotent_and_realistic(tmp_path):
    from invoice_pipelines.db.engine import make_engine
    from invoice_pipelines.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    upgrade(make_engine(url, owner=True))
    engine = make_engine(url)
    first = seed_demo(engine)
    assert len(first["created"]) == 3
    assert len(first["batch_jobs"]) == 1  # queued for the batch_jobs_sensor
    counts = _counts(engine)
    assert counts[0] == 3 and counts[1] >= 12 and counts[2] >= 60
    again = seed_demo(engine)
    assert again["created"] == [] and again["batch_jobs"] == []
    assert _counts(engine) == counts
    with system_transaction(engine) as conn:
        currencies = set(conn.execute(select(organizations.c.currency)).scalars())
        statuses = set(conn.execute(select(sales_orders.c.status)).scalars())
    assert currencies == {"EUR", "USD"}
    assert "reviewed" in statuses and "pending" in statuses


def test_overview_asset_reports_one_organization(db):
    org, other = db.new_organization(name="Overview GmbH"), db.new_organization()
    for o, n in ((org, 2), (other, 3)):
        with tenant_transaction(db.engine, o["id"]) as conn:
            conn.execute(
                insert(customers),
                [
                    {"organization_id": o["id"], "customer_number": f"C{i}", "name": "C"}
                    for i in range(n)
                ],
            )
    slug = org["slug"]
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [slug])
    result = materialize(
        [organization_overview],
        instance=instance,
        partition_key=slug,
        resources={"database": Database(url=db.url)},
    )
    assert result.success
    metadata = result.asset_materializations_for_node("organization_overview")[0].metadata
    assert metadata["organization"].value == "Overview GmbH"
    assert metadata["customers"].value == 2  # not the other organization's 3
    assert metadata["sales_orders"].value == 0
