"""The `peppol` group of the UI (delivery/assets.py, its checks delivery/checks.py) on SQLite and PostgreSQL, from real
rows: invoices sent through the access point stand-in over loopback (the production client),
official Peppol examples received in SBDH envelopes through `receive_peppol` and read by the
intake. Its assets show the participants, the documents sent with their reports and the
documents received with their answers; `peppol_checks_job` finds the documents without an
accepted report and those without an answer once they are old enough, and lets them go once
resent or answered; the documents check warns on a Peppol BIS document that did not prove."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from dagster import DagsterInstance, Definitions, instance_for_test, materialize
from sqlalchemy import update

from invoice_pipelines.db.tables import deliveries, organizations, peppol_received
from invoice_pipelines.db.tenancy import find_organization, system_transaction
from invoice_pipelines.delivery import assets as delivery_assets
from invoice_pipelines.delivery.checks import peppol_audit, peppol_checks_job
from invoice_pipelines.documents import assets as document_assets
from invoice_pipelines.documents.domain.renderer import DocumentRenderer
from invoice_pipelines.intake.domain.peppol_inbound import (
    REGISTERED,
    UNKNOWN_RECEIVER,
    receive_peppol,
    seller_address,
)
from invoice_pipelines.intake.domain.pipeline import process_documents
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.metadata import markdown_cell
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.file_stores import LocalFileStore
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines_devtools.standins.peppol import AccessPointStandIn
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.conftest import PEPPOL_SAMPLES_DIR
from invoice_pipelines_tests.delivery.test_peppol_sending import (
    BRASSERIE,
    SELLER_ID,
    _customer,
    _network,
    _send,
    _shop,
)
from invoice_pipelines_tests.documents.test_pipeline import SELLER
from invoice_pipelines_tests.einvoice.test_sbdh import wrap
from invoice_pipelines_tests.exports.books import sales_invoice
from invoice_pipelines_tests.intake.peppol_examples import example
from invoice_pipelines_tests.intake.test_peppol_receiving import InProcessParser


@pytest.fixture(autouse=True)
def _samples():
    if not (PEPPOL_SAMPLES_DIR / "base-example.xml").is_file():
        pytest.skip(f"Peppol samples not found at {PEPPOL_SAMPLES_DIR} (../shared beside the repo)")


def _receive(db, store, receiver: str, sample: str, *, country: str = "SE"):
    data = example(PEPPOL_SAMPLES_DIR / sample)
    envelope = wrap(
        data,
        receiver=receiver,
        sender=seller_address(data),  # its seller: another sender waits for a person
        instance_identifier=str(uuid.uuid4()),
        country=country,
    )
    return receive_peppol(db.engine, store, envelope)


def _age(db, table, hours: float) -> None:
    """Every row of `table` recorded `hours` ago: what the checks' timetable sees later."""
    with system_transaction(db.engine, write=True) as conn:
        conn.execute(update(table).values(created_at=datetime.now(UTC) - timedelta(hours=hours)))


# the `peppol` group's assets, and its checks with the job that evaluates them
PEPPOL_ASSETS = [
    delivery_assets.peppol_participants,
    delivery_assets.peppol_sent_documents,
    delivery_assets.peppol_received_documents,
    delivery_assets.peppol_monthly_report,
]


def _checks(db) -> dict:
    job = Definitions(
        assets=PEPPOL_ASSETS,
        asset_checks=[peppol_audit],
        jobs=[peppol_checks_job],
        resources={"database": Database(url=db.url), "system_database": SystemDatabase(url=db.url)},
    ).resolve_job_def("peppol_checks_job")
    result = job.execute_in_process()
    assert result.success
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _materialize(db, slug: str, *names: str) -> dict[str, dict]:
    assets = [a for a in PEPPOL_ASSETS if a.key.to_user_string() in names]
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [slug])
    result = materialize(
        assets,
        resources={"database": Database(url=db.url), "system_database": SystemDatabase(url=db.url)},
        instance=instance,
        partition_key=slug,
    )
    assert result.success
    return {
        e.asset_key.to_user_string(): {
            k: v.value for k, v in e.event_specific_data.materialization.metadata.items()
        }
        for e in result.get_asset_materialization_events()
    }


def test_the_checks_find_undelivered_and_unanswered_documents_once_they_are_old_enough(
    fresh_db, tmp_path
):
    db = fresh_db
    shop = _shop(db, tmp_path)  # the organization is SELLER_ID on Peppol
    uploads = LocalUploads(str(tmp_path / "uploads"))
    with AccessPointStandIn(network=_network()) as ap, SmtpSink() as sink:
        ap.network.keep_then_answer.append(0)  # the invoice to the Brasserie: a lost answer
        first = _send(db, shop, sink, ap.url)
        assert list(first.unknown) == [shop.invoice]
        accepted = _receive(db, uploads, SELLER_ID, "base-example.xml")
        waiting = _receive(db, uploads, SELLER_ID, "vat-category-E.xml", country="NO")
        held = _receive(db, uploads, "0088:5790000435975", "vat-category-Z.xml")
        assert (accepted.outcome, waiting.outcome) == (REGISTERED, REGISTERED)
        assert held.outcome == UNKNOWN_RECEIVER

        # just recorded: nothing is late yet
        fresh = _checks(db)
        assert fresh["peppol_undelivered"].passed and fresh["peppol_unanswered"].passed

        _age(db, deliveries, hours=2)
        _age(db, peppol_received, hours=30)
        late = _checks(db)
        undelivered = late["peppol_undelivered"]
        assert not undelivered.passed and undelivered.severity.value == "WARN"
        assert undelivered.metadata["undelivered"].value == 1
        assert undelivered.metadata["by_organization"].value == {shop.org["slug"]: 1}
        assert "unknown" in undelivered.metadata["documents"].value
        assert BRASSERIE in undelivered.metadata["documents"].value
        unanswered = late["peppol_unanswered"]
        assert not unanswered.passed and unanswered.severity.value == "WARN"
        assert unanswered.metadata["unanswered"].value == 3
        assert unanswered.metadata["by_organization"].value == {
            shop.org["slug"]: 2,
            "(no organization)": 1,
        }
        table = unanswered.metadata["documents"].value
        assert "held: no organization has the receiver's id" in table
        assert "in the intake: UPLOADED" in table

        # the unknown invoice resent (a person's decision) and accepted; one received document
        # read and accepted by the intake: both answered
        resent = _send(db, shop, sink, ap.url, invoice_ids=[shop.invoice], resend=True)
        assert resent.by_channel == {"peppol": 1}
    organization = find_organization(db.engine, shop.org["slug"])
    process_documents(
        db.engine,
        uploads,
        organization,
        [accepted.document_id],
        parser=InProcessParser(),
        ocr=None,
    )
    after = _checks(db)
    assert after["peppol_undelivered"].passed
    assert after["peppol_unanswered"].metadata["unanswered"].value == 2
    assert (
        accepted.instance_identifier not in after["peppol_unanswered"].metadata["documents"].value
    )
    assert waiting.instance_identifier in after["peppol_unanswered"].metadata["documents"].value


def test_the_group_shows_participants_sent_documents_with_reports_and_received_ones(db, tmp_path):
    shop = _shop(db, tmp_path)
    uploads = LocalUploads(str(tmp_path / "uploads"))
    network = _network()
    network.rejecting[BRASSERIE] = "receiver is closed for the holidays"
    with AccessPointStandIn(network=network) as ap, SmtpSink() as sink:
        failed = _send(db, shop, sink, ap.url)
        assert list(failed.failed) == [shop.invoice]
        network.rejecting.clear()
        _send(db, shop, sink, ap.url, retry_failed=True)
        [rejected, sent] = ap.network.take_messages()
    # received at an id of its own: other tests' organizations in the shared database are
    # SELLER_ID too, and a receiver two organizations claim is refused
    own = f"9930:DE{uuid.uuid4().int % 10**9:09d}"
    with system_transaction(db.engine, write=True) as conn:
        conn.execute(
            update(organizations)
            .where(organizations.c.id == shop.org["id"])
            .values(peppol_participant=own)
        )
    received = _receive(db, uploads, own, "base-example.xml")
    organization = find_organization(db.engine, shop.org["slug"])
    process_documents(
        db.engine,
        uploads,
        organization,
        [received.document_id],
        parser=InProcessParser(),
        ocr=None,
    )

    shown = _materialize(
        db,
        shop.org["slug"],
        "peppol_participants",
        "peppol_sent_documents",
        "peppol_received_documents",
    )

    people = shown["peppol_participants"]
    assert people["organization_participant"] == own
    assert (people["customers"], people["customers_on_peppol"]) == (3, 2)
    assert BRASSERIE in people["participants"] and "9930:DE987654321" in people["participants"]
    documents = shown["peppol_sent_documents"]
    # the rejected attempt failed with the receiver's AS4 error, retried and accepted
    assert (documents["deliveries"], documents["sent"], documents["failed"]) == (1, 1, 0)
    assert documents["sent_by_document_type"] == {"Invoice": 1}
    assert documents["by_email_instead"] == 2  # the credit note and the unregistered customer
    assert markdown_cell(sent["message_id"]) in documents["newest"]
    inbound = shown["peppol_received_documents"]
    assert inbound["received"] == 1
    assert inbound["by_status"] == {"VALIDATED": 1}
    assert inbound["by_answer"] == {"accepted": 1}
    assert markdown_cell(received.instance_identifier) in inbound["newest"]
    assert rejected["message_id"] != sent["message_id"]


def test_the_documents_check_warns_on_a_peppol_document_that_did_not_prove(db, tmp_path):
    org = db.new_organization(
        name="Müller Werkzeugbau GmbH",
        vat_id="DE123456789",
        settings={"seller": SELLER},
        peppol_participant=SELLER_ID,
    )
    # the database keeps the shape only; the check digits are wrong (0208: 97 - mod 97)
    brasserie = _customer(
        db,
        org["id"],
        "K-BE",
        "Brasserie du Parc SA",
        country="BE",
        vat_id="BE0123456749",
        email="compta@brasserie.example",
        peppol_participant="0208:0123456700",
    )
    sales_invoice(db.engine, org["id"], brasserie)
    defs = Definitions(
        assets=[document_assets.sales_invoice_documents_asset],
        resources={
            "database": Database(url=db.url),
            "system_database": SystemDatabase(url=db.url),
            "document_store": LocalFileStore(root=str(tmp_path)),
            "document_renderer": DocumentRenderer(workers=1),
        },
    )
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("organizations", [org["slug"]])
        run = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, partition_key=org["slug"]
        )
    assert run.success
    [check] = run.get_asset_check_evaluations()
    # the PDF proved; the Peppol BIS document did not, and the check says so
    assert not check.passed and check.severity.value == "WARN"
    assert check.metadata["failed"].value == 0 and check.metadata["peppol_failed"].value == 1
    assert "no Peppol BIS document" in check.description
    assert "IP-DOC-WRITE" in check.metadata["failed_peppol_documents"].value
