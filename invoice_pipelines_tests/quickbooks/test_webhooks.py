"""Webhooks from the simulator to our receiver: a signed notification asks for a pull."""

from __future__ import annotations

import threading

import httpx
from dagster import DagsterInstance, build_sensor_context

from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.quickbooks.domain.sync.common import read_cursor
from invoice_pipelines.quickbooks.domain.sync.customers import sync_customers
from invoice_pipelines.quickbooks.domain.webhooks import parse_notices, receiver
from invoice_pipelines.quickbooks.sensors import qbo_webhook_sensor
from invoice_pipelines.resources.database.engines import Database, SystemDatabase

VERIFIER = "verifier-token-of-the-app"


def test_a_signed_change_notification_asks_for_the_pull_the_sensor_launches(qbo):
    with qbo.client() as client:
        sync_customers(qbo.engine, qbo.organization, client)
    server = receiver(qbo.engine, qbo.db.system_engine, VERIFIER)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/qbo/webhooks"
        qbo.sim.configure_webhook(qbo.realm, url, VERIFIER, "cloudevents")
        qbo.sim.create_as_user(qbo.realm, "Customer", {"DisplayName": "Per Webhook GmbH"})
        deliveries = qbo.sim.webhook_deliveries(qbo.realm)
        assert deliveries and deliveries[-1]["status"] == 200
        # a forged body changes nothing
        forged = httpx.post(url, content=b"[]", headers={"intuit-signature": "d3Jvbmc="})
        assert forged.status_code == 401
    finally:
        qbo.sim.configure_webhook(qbo.realm, None)
        server.shutdown()
        server.server_close()
    assert read_cursor(qbo.engine, qbo.org_id, "customer")["pull_requested_at"] is not None
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [qbo.org["slug"]])
        with build_sensor_context(
            instance=instance,
            resources={
                "database": Database(url=qbo.db.url),
                "system_database": SystemDatabase(url=qbo.db.url),
            },
        ) as context:
            requests = [
                r for r in qbo_webhook_sensor(context) if r.partition_key == qbo.org["slug"]
            ]
    assert [r.job_name for r in requests] == ["qbo_customers_job"]
    with qbo.client() as client:
        assert sync_customers(qbo.engine, qbo.organization, client).pulled == 1
    assert read_cursor(qbo.engine, qbo.org_id, "customer")["pull_requested_at"] is None


def test_legacy_notifications_are_read_too():
    body = (
        b'{"eventNotifications":[{"realmId":"123","dataChangeEvent":{"entities":['
        b'{"name":"Payment","id":"9","operation":"Create","lastUpdated":"2026-11-23T01:00:00Z"}]}}]}'
    )
    (notice,) = parse_notices(body)
    assert (notice.realm_id, notice.entity, notice.entity_id, notice.operation) == (
        "123",
        "payment",
        "9",
        "create",
    )
