"""The monthly Peppol report (delivery/domain/peppol_overview.py `monthly_counts`, the asset
`peppol_monthly_report`) on SQLite and PostgreSQL, from real rows: invoices and credit notes sent
through the access point stand-in over loopback, official Peppol examples received in SBDH
envelopes. Per month, direction, document type and country; only what the access point accepted
counts as sent, a replay counts nothing, a held document counts for the access point but for no
organization."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from dagster import DagsterInstance, MultiPartitionKey, materialize
from sqlalchemy import update

from invoice_pipelines.db.tables import deliveries, peppol_received
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.delivery.assets import peppol_monthly_report
from invoice_pipelines.delivery.domain.peppol_overview import RECEIVED, SENT, monthly_counts
from invoice_pipelines.intake.domain.peppol_inbound import REPLAY, receive_peppol
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines.resources.peppol.transport import BILLING_PROCESS, CREDIT_NOTE_DOC_TYPE
from invoice_pipelines_devtools.standins.peppol import AccessPointStandIn
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.conftest import PEPPOL_SAMPLES_DIR
from invoice_pipelines_tests.delivery.test_peppol_group import _samples  # noqa: F401 (fixture)
from invoice_pipelines_tests.delivery.test_peppol_sending import (
    BRASSERIE,
    SELLER_ID,
    _network,
    _send,
    _shop,
)
from invoice_pipelines_tests.einvoice.test_sbdh import wrap


def _months() -> tuple[str, str, datetime]:
    """The running month, the one before it, and a moment in the one before."""
    now = datetime.now(UTC)
    before = now.replace(day=1) - timedelta(days=3)
    return f"{now:%Y-%m}", f"{before:%Y-%m}", before


def _envelope(sample: str, receiver: str, country: str) -> bytes:
    return wrap(
        (PEPPOL_SAMPLES_DIR / sample).read_bytes(),
        receiver=receiver,
        instance_identifier=str(uuid.uuid4()),
        country=country,
    )


def test_the_months_traffic_by_direction_document_type_and_country(fresh_db, tmp_path):
    db = fresh_db
    running, previous, moment = _months()
    shop = _shop(db, tmp_path)
    network = _network()
    network.register(BRASSERIE, CREDIT_NOTE_DOC_TYPE, BILLING_PROCESS)
    with AccessPointStandIn(network=network) as ap, SmtpSink() as sink:
        network.rejecting[BRASSERIE] = "not today"
        _send(db, shop, sink, ap.url, invoice_ids=[shop.invoice])  # failed: not counted
        network.rejecting.clear()
        summary = _send(db, shop, sink, ap.url, retry_failed=True)
        # the invoice again, deliberately: a second message of its own
        again = _send(db, shop, sink, ap.url, invoice_ids=[shop.invoice], resend=True)
    assert summary.by_channel == {"peppol": 2, "email": 2}
    assert again.by_channel == {"peppol": 1}
    # the credit note went out last month (moved back in time: its row as it was then)
    with tenant_transaction(db.engine, shop.org["id"], write=True) as conn:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.sales_invoice_id == shop.credit_note)
            .values(sent_at=moment)
        )
    uploads = LocalUploads(str(tmp_path / "uploads"))
    swedish = _envelope("base-example.xml", SELLER_ID, "SE")
    for data in (
        swedish,
        _envelope("base-creditnote-correction.xml", SELLER_ID, "SE"),
        _envelope("vat-category-E.xml", SELLER_ID, "NO"),
        _envelope("vat-category-Z.xml", "0088:5790000435975", "DK"),  # held: no organization
    ):
        receive_peppol(db.engine, uploads, data)
    assert receive_peppol(db.engine, uploads, swedish).outcome == REPLAY  # counts nothing
    with system_transaction(db.engine, write=True) as conn:
        conn.execute(
            update(peppol_received)
            .where(peppol_received.c.country == "NO")
            .values(created_at=moment)
        )

    with tenant_transaction(db.engine, shop.org["id"]) as conn:
        now = monthly_counts(conn, running, shop.org["id"])
        then = monthly_counts(conn, previous, shop.org["id"])
    assert dict(now.rows) == {
        (SENT, "Invoice", "DE", "BE"): 2,
        (RECEIVED, "Invoice", "SE", "DE"): 1,
        (RECEIVED, "CreditNote", "SE", "DE"): 1,
    }
    assert (now.total(SENT), now.total(RECEIVED)) == (2, 2)
    assert (now.receivers, now.senders) == (1, 1)
    assert dict(then.rows) == {
        (SENT, "CreditNote", "DE", "BE"): 1,
        (RECEIVED, "Invoice", "NO", "DE"): 1,
    }
    # the access point's report: every organization, the held document too
    with system_transaction(db.engine) as conn:
        everyone = monthly_counts(conn, running)
    assert everyone.rows[(RECEIVED, "Invoice", "DK", "unknown")] == 1
    assert (everyone.total(SENT), everyone.total(RECEIVED)) == (2, 3)

    # the asset, for last month's partition of the organization
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [shop.org["slug"]])
    key = MultiPartitionKey({ORGANIZATIONS_PARTITIONS_NAME: shop.org["slug"], "month": previous})
    result = materialize(
        [peppol_monthly_report],
        resources={"database": Database(url=db.url), "system_database": SystemDatabase(url=db.url)},
        instance=instance,
        partition_key=key,
    )
    assert result.success
    [event] = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}
    assert (metadata["month"], metadata["sent"], metadata["received"]) == (previous, 1, 1)
    assert metadata["sent_by_document_type"] == {"CreditNote": 1}
    assert metadata["sent_by_receiver_country"] == {"BE": 1}
    assert metadata["received_by_sender_country"] == {"NO": 1}
    assert "CreditNote" in metadata["counts"] and "NO" in metadata["counts"]
