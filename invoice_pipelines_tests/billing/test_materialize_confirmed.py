"""Issue 85, point 6: Materialize on sales_invoices issued 19 numbered invoices (gapless numbers
that cannot be taken back) with nothing but Dagster's launch dialog. A plain Materialize (Dagster's
implicit asset job, what the UI's button launches) of an asset that issues invoices, sends
messages or pushes to QuickBooks is refused in one sentence naming the config that confirms it;
with that config it runs, and its own job runs as ever."""

from __future__ import annotations

from dagster import AssetKey, DagsterInstance, Definitions
from sqlalchemy import func, select

from invoice_pipelines.db.tables import sales_invoices
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines_tests.billing.shop import make_shop
from invoice_pipelines_tests.billing.test_defs import (
    batch_config,
    defs,
    refusal,
    resources,
    run_batch,
)


def _invoiced(db, org_id: int) -> int:
    with tenant_transaction(db.engine, org_id) as conn:
        return conn.execute(
            select(func.count()).where(sales_invoices.c.organization_id == org_id)
        ).scalar_one()


def _materialize(db, slug: str, run_config=None):
    """What the UI's Materialize on sales_invoices launches: the implicit asset job."""
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [slug])
    job = Definitions.merge(
        defs, Definitions(resources=resources(db))
    ).resolve_implicit_global_asset_job_def()
    assert job.name.startswith("__ASSET_JOB")
    return job.execute_in_process(
        run_config=run_config,
        instance=instance,
        partition_key=slug,
        asset_selection=[AssetKey("sales_invoices")],
        raise_on_error=False,
    )


def test_a_plain_materialize_of_sales_invoices_needs_its_confirmation(db):
    shop = make_shop(db)
    shop.add_orders(2)
    slug = shop.org["slug"]

    said = refusal(_materialize(db, slug))
    assert "Materializing sales_invoices issues numbered invoices" in said
    assert "batch_invoicing_job" in said and 'confirm: "issue invoices"' in said
    assert _invoiced(db, shop.org_id) == 0  # refused before any work

    confirmed = _materialize(db, slug, batch_config(confirm="issue invoices"))
    assert confirmed.success
    assert _invoiced(db, shop.org_id) == 2


def test_the_job_needs_no_confirmation(db):
    shop = make_shop(db)
    shop.add_orders(1)
    assert run_batch(db, shop.org["slug"]).success
    assert _invoiced(db, shop.org_id) == 1
