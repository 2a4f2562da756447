"""A long invoice push runs in bounded chunks (issue 56): each qbo_invoices run pushes a chunk and
ends, the push sensor asks for the next, and no invoice reaches QuickBooks twice across runs.

Through the asset and the sensor as Dagster runs them, the production client over real HTTP
against the local QBO simulator, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dagster import DagsterInstance, build_sensor_context, materialize
from sqlalchemy import select, update

from invoice_pipelines.db.tables import qbo_push_queue
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.quickbooks.assets import SYNC_ASSETS
from invoice_pipelines.quickbooks.domain.sync.customers import sync_customers
from invoice_pipelines.quickbooks.domain.sync.invoices import queue_counts
from invoice_pipelines.quickbooks.domain.sync.items import sync_items
from invoice_pipelines.quickbooks.resources import QuickBooks
from invoice_pipelines.quickbooks.sensors import qbo_push_sensor
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines_tests.quickbooks.conftest import TIME_SCALE, TOKEN_KEY, connect


def _shop(qbo, invoices: int) -> None:
    customer = qbo.add_customer("Chunk Kunde GmbH")
    item = qbo.add_item("TOOL", "24.90")
    with qbo.client() as client:
        sync_customers(qbo.engine, qbo.organization, client)
        sync_items(qbo.engine, qbo.organization, client)
    for n in range(1, invoices + 1):
        qbo.add_invoice(f"RE-2026-{n:04d}", customer, [(item, "1", "24.90")])


class Pushes:
    """The organization's push as Dagster runs it: the sensor's requests and the asset's runs."""

    def __init__(self, qbo, instance: DagsterInstance, **bounds) -> None:
        self.qbo, self.instance = qbo, instance
        self.slug = qbo.org["slug"]
        self.resources = {
            "database": Database(url=qbo.db.url),
            "system_database": SystemDatabase(url=qbo.db.url),
            "quickbooks": QuickBooks(
                base_url=qbo.sim.base_url,
                token_url=qbo.sim.token_url,
                token_key=TOKEN_KEY,
                time_scale=TIME_SCALE,
                **bounds,
            ),
        }
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [self.slug])

    def requested(self) -> list[str]:
        """The run keys the push sensor asks for this organization now."""
        with build_sensor_context(
            instance=self.instance, resources={"system_database": self.resources["system_database"]}
        ) as context:
            found = qbo_push_sensor(context)
        if not isinstance(found, list):  # a SkipReason: nothing waits
            return []
        return [r.run_key for r in found if r.partition_key == self.slug]

    def run(self) -> int:
        """One qbo_invoices run of the organization; what it pushed."""
        result = materialize(
            [SYNC_ASSETS["invoices"]],
            instance=self.instance,
            partition_key=self.slug,
            resources=self.resources,
        )
        assert result.success
        [event] = result.get_asset_materialization_events()
        return event.materialization.metadata["pushed"].value


def _invoice_numbers(qbo) -> list[str]:
    return sorted(r["DocNumber"] for r in qbo.sim.records(qbo.realm, "Invoice"))


def _batches(qbo) -> list[dict]:
    return [r for r in qbo.sim.requests(qbo.realm) if r["path"].endswith("/batch")]


def _attempts(qbo) -> list[int]:
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        return list(
            conn.execute(
                select(qbo_push_queue.c.attempts).where(
                    qbo_push_queue.c.organization_id == qbo.org_id
                )
            ).scalars()
        )


def test_a_push_longer_than_a_chunk_is_run_after_run_each_invoice_sent_once(db, simulator):
    """Before, one run pushed the whole queue: 5 invoices in one run, however long it took."""
    qbo = connect(db, simulator)
    _shop(qbo, invoices=5)
    before = len(_batches(qbo))  # the customers' and items' sync
    with DagsterInstance.ephemeral() as instance:
        pushes = Pushes(qbo, instance, push_per_run=2)
        keys = []
        pushed = []
        while requested := pushes.requested():
            assert requested[0] not in keys  # each chunk is a run of its own, asked for anew
            keys.extend(requested)
            pushed.append(pushes.run())
            assert len(pushed) <= 5, pushed  # the sensor stops asking once the queue is empty
    # the run ends after its chunk; the next one goes on where it stopped
    assert pushed == [2, 2, 1]
    assert _invoice_numbers(qbo) == [f"RE-2026-{n:04d}" for n in range(1, 6)]
    assert queue_counts(qbo.engine, qbo.org_id) == {"pushed": 5}
    assert _attempts(qbo) == [1] * 5  # every invoice was sent once
    pushes_batches = _batches(qbo)[before:]
    assert len(pushes_batches) == 3 and len({b["requestid"] for b in pushes_batches}) == 3


def test_a_chunk_left_sending_by_a_run_that_died_is_found_not_sent_again_by_the_next(db, simulator):
    qbo = connect(db, simulator, custom_txn_numbers=False)
    _shop(qbo, invoices=3)
    with DagsterInstance.ephemeral() as instance:
        pushes = Pushes(qbo, instance, push_per_run=2)
        assert pushes.run() == 2
        # as a run leaves it that died after QBO created its chunk, before it recorded it
        with tenant_transaction(qbo.engine, qbo.org_id, write=True) as conn:
            conn.execute(
                update(qbo_push_queue)
                .where(
                    qbo_push_queue.c.organization_id == qbo.org_id,
                    qbo_push_queue.c.status == "pushed",
                )
                .values(status="sending", qbo_id=None)
            )
        assert pushes.requested()  # the next chunk's run
        # the next run finds the dead run's two in QBO and pushes the third
        assert pushes.run() == 3
        assert not pushes.requested()
    assert _invoice_numbers(qbo) == ["RE-2026-0001", "RE-2026-0002", "RE-2026-0003"]
    assert queue_counts(qbo.engine, qbo.org_id) == {"pushed": 3}


def test_a_run_out_of_time_pushes_one_batch_and_leaves_the_rest_unclaimed(db, simulator):
    qbo = connect(db, simulator)
    _shop(qbo, invoices=35)  # two batches of at most 30
    with DagsterInstance.ephemeral() as instance:
        # a deadline that has passed before the first batch: a run always pushes one
        pushes = Pushes(qbo, instance, push_minutes=1e-9)
        assert pushes.run() == 30
        assert queue_counts(qbo.engine, qbo.org_id) == {"pushed": 30, "pending": 5}
        assert pushes.requested()
        assert pushes.run() == 5
    assert len(_invoice_numbers(qbo)) == 35
    assert _attempts(qbo) == [1] * 35
