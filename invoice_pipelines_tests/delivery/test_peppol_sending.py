"""Invoices over Peppol through the production access point client (`resources/peppol/transport.py`)
over real HTTP on 127.0.0.1 to the access point stand-in (devtools/standins/peppol.py), beside
e-mails to a real SMTP server on loopback, counted on the servers' side.

A customer on Peppol whose SMP registration takes the document gets the Peppol BIS document
once, the access point's AS4 message id recorded; one whose registration does not take it (a
credit note to a receiver of invoices only) or who is not registered gets the e-mail, and the
delivery says why. Faults: a lost answer and a 500 leave the outcome unknown and nothing is sent
again on its own (not over Peppol, not by e-mail); a 503 or 429 is tried again and the document
goes once; a receiver's AS4 error fails the delivery with the message id; an access point that
cannot be asked sends nothing of its customers (no e-mail in their place)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest
from dagster import DagsterInstance, Definitions
from lxml import etree
from sqlalchemy import insert, select, update

from invoice_pipelines.billing.domain.credit_notes import issue_credit_note
from invoice_pipelines.db.tables import (
    audit_log,
    customers,
    deliveries,
    sales_invoice_documents,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.delivery import defs as delivery
from invoice_pipelines.delivery.domain.batch import (
    COMMUNICATIONS,
    COMMUNICATIONS_KIND,
    communications_work,
)
from invoice_pipelines.delivery.domain.peppol import NO_SENDER_ID
from invoice_pipelines.delivery.domain.pipeline import send_invoices
from invoice_pipelines.documents.domain.batch import DOCUMENTS_KIND, run_invoice_job
from invoice_pipelines.documents.domain.pipeline import generate_documents
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.queue.domain.items import enqueue_invoice_job
from invoice_pipelines.queue.domain.kinds import chunk_work
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines.resources.messaging.channels import MailTransport, PeppolChannel
from invoice_pipelines.resources.messaging.mail import SmtpMailer
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines.resources.messaging.text_message_provider import TextMessageProvider
from invoice_pipelines.resources.peppol.access_point import PeppolAccessPoint
from invoice_pipelines.resources.peppol.transport import (
    BILLING_PROCESS,
    CREDIT_NOTE_DOC_TYPE,
    INVOICE_DOC_TYPE,
    PeppolTransport,
)
from invoice_pipelines_devtools.standins.peppol import AccessPointStandIn, Network
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.conftest import PEPPOL_RULES_DIR
from invoice_pipelines_tests.documents.test_pipeline import SELLER
from invoice_pipelines_tests.exports.books import customer, sales_invoice

TOKEN = "secret"
SELLER_ID = "9930:DE123456789"
BRASSERIE = "0208:0123456749"  # registered in the SMP for invoices only
BAECKEREI = "9930:DE987654321"  # on Peppol by its own account, not registered in the SMP
NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}


@pytest.fixture(autouse=True)
def _peppol_rules():
    if not (PEPPOL_RULES_DIR / "PEPPOL-EN16931-UBL.xsl").is_file():
        pytest.skip(f"Peppol rules not found at {PEPPOL_RULES_DIR} (../shared beside the repo)")


@dataclass
class Shop:
    org: dict
    store: LocalFiles
    invoice: int  # to the Brasserie: over Peppol
    credit_note: int  # to the Brasserie, whose SMP registration takes no credit notes: e-mail
    unregistered: int  # to the Bäckerei, not in the SMP: e-mail
    plain: int  # to a customer not on Peppol: e-mail, nothing to explain

    @property
    def ids(self) -> list[int]:
        return [self.invoice, self.credit_note, self.unregistered, self.plain]


def _customer(db, org_id: int, number: str, name: str, **values) -> int:
    country = values.pop("country", "DE")
    vat_id = values.pop("vat_id", None)
    found = customer(db.engine, org_id, number, name, country=country, vat_id=vat_id)
    with tenant_transaction(db.engine, org_id, write=True) as conn:
        conn.execute(update(customers).where(customers.c.id == found).values(**values))
    return found


def seller(db, participant: str | None = SELLER_ID) -> dict:
    """A German seller (Müller Werkzeugbau GmbH), on Peppol with `participant`."""
    return db.new_organization(
        name="Müller Werkzeugbau GmbH",
        vat_id="DE123456789",
        settings={"seller": SELLER},
        peppol_participant=participant,
    )


def _shop(db, tmp_path, *, org_on_peppol: bool = True, brasserie_id: str = BRASSERIE) -> Shop:
    org = seller(db, SELLER_ID if org_on_peppol else None)
    brasserie = _customer(
        db,
        org["id"],
        "K-BE",
        "Brasserie du Parc SA",
        country="BE",
        vat_id="BE0123456749",
        email="compta@brasserie.example",
        peppol_participant=brasserie_id,
    )
    baeckerei = _customer(
        db,
        org["id"],
        "K-DE",
        "Bäckerei Hoffmann e.K.",
        vat_id="DE987654321",
        email="buchhaltung@baeckerei.example",
        peppol_participant=BAECKEREI,
    )
    other = _customer(db, org["id"], "K-1", "Kunde GmbH", email="einkauf@kunde.example")
    invoice = sales_invoice(db.engine, org["id"], brasserie)
    unregistered = sales_invoice(db.engine, org["id"], baeckerei)
    plain = sales_invoice(db.engine, org["id"], other)
    with tenant_transaction(db.engine, org["id"]) as conn:
        number = conn.execute(
            select(sales_invoices.c.invoice_number).where(sales_invoices.c.id == invoice)
        ).scalar_one()
    note = issue_credit_note(
        db.engine,
        find_organization(db.engine, org["id"]),
        number,
        reason="Lieferung beschädigt",
        issue_date=date(2026, 11, 20),
    )
    store = LocalFiles(str(tmp_path / "documents"))
    shop = Shop(org, store, invoice, note.id, unregistered, plain)
    summary = generate_documents(db.engine, store, find_organization(db.engine, org["slug"]))
    # every invoice has its PDF; those to customers on Peppol a Peppol BIS document too, where
    # the organization is on Peppol and the document proves
    assert summary.generated == 4 and not summary.failed
    refused = {invoice, note.id} if brasserie_id != BRASSERIE else set()
    if org_on_peppol:
        assert summary.peppol == 3 - len(refused), summary.peppol_failed
        assert set(summary.peppol_failed) == refused
    else:
        assert summary.peppol == 0 and not summary.peppol_failed
    return shop


def _network() -> Network:
    network = Network(token=TOKEN)
    network.register(BRASSERIE, INVOICE_DOC_TYPE, BILLING_PROCESS)
    return network


def _peppol(url: str) -> PeppolChannel:
    return PeppolChannel(PeppolTransport(base_url=url, token=TOKEN, timeout_seconds=10.0))


def _send(db, shop: Shop, sink, url: str, **options):
    mailer = Smtp(port=sink.port, sender="rechnung@mueller.example")
    return send_invoices(
        db.engine,
        shop.store,
        MailTransport(mailer),
        find_organization(db.engine, shop.org["slug"]),
        peppol=_peppol(url),
        backoff_seconds=0.01,
        connections=1,
        **options,
    )


def _rows(db, org_id: int) -> dict[tuple[int, str, int], object]:
    with tenant_transaction(db.engine, org_id) as conn:
        return {
            (r.sales_invoice_id, r.channel, r.sequence): r
            for r in conn.execute(select(deliveries).where(deliveries.c.organization_id == org_id))
        }


def _recipients(sink) -> list[str]:
    return sorted(str(m["To"]) for m in sink.mailbox.messages)


def _peppol_documents(db, org_id: int) -> dict[int, tuple[str, str | None, list]]:
    d = sales_invoice_documents.c
    with tenant_transaction(db.engine, org_id) as conn:
        return {
            r.sales_invoice_id: (r.status, r.storage_key, r.errors)
            for r in conn.execute(
                select(d.sales_invoice_id, d.status, d.storage_key, d.errors).where(
                    d.organization_id == org_id, d.kind == "peppol"
                )
            )
        }


def test_a_customer_on_peppol_gets_the_document_once_and_the_others_an_email_saying_why(
    db, tmp_path
):
    shop = _shop(db, tmp_path)
    # the documents run wrote a Peppol BIS document for each invoice to a customer on Peppol
    documents = _peppol_documents(db, shop.org["id"])
    assert sorted(documents) == sorted([shop.invoice, shop.credit_note, shop.unregistered])
    assert {status for status, _, _ in documents.values()} == {"generated"}
    with AccessPointStandIn(network=_network()) as ap, SmtpSink() as sink:
        summary = _send(db, shop, sink, ap.url)
        again = _send(db, shop, sink, ap.url)
        [message] = ap.network.take_messages()
        recipients = _recipients(sink)
    assert summary.sent == 4 and not summary.failed and not summary.unknown
    assert summary.by_channel == {"peppol": 1, "email": 3}
    assert again.sent == 0 and ap.network.take_messages() == []
    # what reached the access point: the stored Peppol BIS invoice, to the Brasserie
    stored = (tmp_path / "documents" / documents[shop.invoice][1]).read_bytes()
    assert message["document"] == stored
    assert message["receiver"] == f"iso6523-actorid-upis::{BRASSERIE}"
    assert message["sender"] == f"iso6523-actorid-upis::{SELLER_ID}"
    assert (message["doc_type_id"], message["country"]) == (INVOICE_DOC_TYPE, "DE")
    root = etree.fromstring(stored)
    [endpoint] = root.xpath("cac:AccountingCustomerParty/cac:Party/cbc:EndpointID", namespaces=NS)
    assert (endpoint.get("schemeID"), endpoint.text) == ("0208", "0123456749")
    # the credit note, the unregistered customer and the customer not on Peppol: by e-mail
    assert recipients == [
        "buchhaltung@baeckerei.example",
        "compta@brasserie.example",
        "einkauf@kunde.example",
    ]
    rows = _rows(db, shop.org["id"])
    assert sorted(rows) == sorted(
        [
            (shop.invoice, "peppol", 0),
            (shop.credit_note, "email", 0),
            (shop.unregistered, "email", 0),
            (shop.plain, "email", 0),
        ]
    )
    over_peppol = rows[(shop.invoice, "peppol", 0)]
    assert over_peppol.status == "sent" and over_peppol.recipient == BRASSERIE
    assert over_peppol.transport_message_id == message["message_id"]
    assert over_peppol.message_id.startswith("peppol-") and over_peppol.fallback_reason is None
    credit_note = rows[(shop.credit_note, "email", 0)]
    assert credit_note.status == "sent"
    assert "does not take Peppol BIS Billing 3.0 credit notes" in credit_note.fallback_reason
    unregistered = rows[(shop.unregistered, "email", 0)]
    assert unregistered.status == "sent"
    assert "not registered in the Peppol SMP" in unregistered.fallback_reason
    assert rows[(shop.plain, "email", 0)].fallback_reason is None
    assert summary.fallbacks == {
        shop.credit_note: credit_note.fallback_reason,
        shop.unregistered: unregistered.fallback_reason,
    }


def test_a_run_nobody_named_invoices_for_leaves_what_went_over_peppol_out(db, tmp_path):
    """An invoice sent (or unknown) over Peppol is not among the e-mail run's candidates at all:
    the asset's `requested` counts only what the run could still send, and a month of Peppol
    history is not read and dropped again by every run."""
    shop = _shop(db, tmp_path)
    with AccessPointStandIn(network=_network()) as ap, SmtpSink() as sink:
        first = _send(db, shop, sink, ap.url)
        again = _send(db, shop, sink, ap.url)
        assert len(ap.network.take_messages()) == 1
        # a failed delivery over Peppol is a candidate again where failures are retried
        with tenant_transaction(db.engine, shop.org["id"], write=True) as conn:
            conn.execute(
                deliveries.update()
                .where(
                    deliveries.c.organization_id == shop.org["id"],
                    deliveries.c.sales_invoice_id == shop.invoice,
                )
                .values(status="failed")
            )
        not_retried = _send(db, shop, sink, ap.url)
        retried = _send(db, shop, sink, ap.url, retry_failed=True)
        assert len(ap.network.take_messages()) == 1
    assert first.requested == 4 and first.by_channel == {"peppol": 1, "email": 3}
    assert again.requested == 0 and again.sent == 0
    assert not_retried.requested == 0 and not_retried.sent == 0
    assert retried.by_channel == {"peppol": 1} and retried.requested == 1


def test_a_credit_note_goes_over_peppol_where_the_receiver_takes_credit_notes(db, tmp_path):
    shop = _shop(db, tmp_path)
    network = _network()
    network.register(BRASSERIE, CREDIT_NOTE_DOC_TYPE, BILLING_PROCESS)
    with AccessPointStandIn(network=network) as ap, SmtpSink() as sink:
        summary = _send(db, shop, sink, ap.url)
        messages = ap.network.take_messages()
    assert summary.by_channel == {"peppol": 2, "email": 2}
    assert sorted(m["doc_type_id"] for m in messages) == sorted(
        [INVOICE_DOC_TYPE, CREDIT_NOTE_DOC_TYPE]
    )
    [credit_note] = [m for m in messages if m["doc_type_id"] == CREDIT_NOTE_DOC_TYPE]
    assert etree.QName(etree.fromstring(credit_note["document"])).localname == "CreditNote"


@pytest.mark.parametrize("after", [0, 500])
def test_a_lost_answer_is_unknown_and_nothing_is_sent_again_on_its_own(db, tmp_path, after):
    shop = _shop(db, tmp_path)
    with AccessPointStandIn(network=_network()) as ap, SmtpSink() as sink:
        ap.network.keep_then_answer.append(after)  # kept, then no answer (0) or a 500
        first = _send(db, shop, sink, ap.url)
        assert list(first.unknown) == [shop.invoice] and first.by_channel == {"email": 3}
        assert len(ap.network.take_messages()) == 1  # the access point did take it
        # the next runs send it neither over Peppol nor by e-mail: someone has to look
        later = _send(db, shop, sink, ap.url)
        named = _send(db, shop, sink, ap.url, invoice_ids=[shop.invoice])
        assert later.sent == 0 and named.sent == 0
        assert "over Peppol: already unknown" in named.skipped[shop.invoice]
        assert ap.network.take_messages() == []
        assert "compta@brasserie.example" in _recipients(sink)  # the credit note's, only
        assert len(sink.mailbox.messages) == 3
        rows = _rows(db, shop.org["id"])
        assert rows[(shop.invoice, "peppol", 0)].status == "unknown"
        assert (shop.invoice, "email", 0) not in rows
        # sending it again is a decision: the next attempt, over Peppol
        resent = _send(db, shop, sink, ap.url, invoice_ids=[shop.invoice], resend=True)
        [message] = ap.network.take_messages()
    assert resent.by_channel == {"peppol": 1}
    row = _rows(db, shop.org["id"])[(shop.invoice, "peppol", 1)]
    assert row.status == "sent" and row.transport_message_id == message["message_id"]


@pytest.mark.parametrize("fault", ["unavailable_next", "throttle_next"])
def test_an_access_point_that_says_not_now_is_asked_again_and_the_document_goes_once(
    db, tmp_path, fault
):
    shop = _shop(db, tmp_path)
    with AccessPointStandIn(network=_network()) as ap, SmtpSink() as sink:
        setattr(ap.network, fault, 1)  # a 503 with Retry-After, or a 429: nothing kept
        summary = _send(db, shop, sink, ap.url)
        [message] = ap.network.take_messages()
    assert summary.retries == 1 and summary.by_channel == {"peppol": 1, "email": 3}
    row = _rows(db, shop.org["id"])[(shop.invoice, "peppol", 0)]
    assert (row.status, row.attempts) == ("sent", 2)
    assert row.transport_message_id == message["message_id"]


def test_a_receiver_that_rejects_fails_the_delivery_with_its_message_id(db, tmp_path):
    shop = _shop(db, tmp_path)
    with AccessPointStandIn(network=_network()) as ap, SmtpSink() as sink:
        ap.network.rejecting[BRASSERIE] = "The incoming Peppol message could not be processed."
        first = _send(db, shop, sink, ap.url)
        [rejected] = ap.network.take_messages()
        assert "AS4_ERROR_MESSAGE_RECEIVED" in first.failed[shop.invoice]
        row = _rows(db, shop.org["id"])[(shop.invoice, "peppol", 0)]
        assert row.status == "failed" and "could not be processed" in row.error
        assert row.transport_message_id == rejected["message_id"]
        # a failed Peppol delivery is not turned into an e-mail on its own
        assert _send(db, shop, sink, ap.url).sent == 0
        assert len(sink.mailbox.messages) == 3
        # the receiver is fixed; asked for, the failed delivery is tried again over Peppol
        ap.network.rejecting.clear()
        retried = _send(db, shop, sink, ap.url, retry_failed=True)
        [accepted] = ap.network.take_messages()
    assert retried.by_channel == {"peppol": 1}
    row = _rows(db, shop.org["id"])[(shop.invoice, "peppol", 0)]
    assert (row.status, row.error) == ("sent", None)
    assert row.transport_message_id == accepted["message_id"]


def test_an_access_point_that_cannot_be_asked_sends_nothing_in_its_customers_place(db, tmp_path):
    shop = _shop(db, tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with SmtpSink() as sink:
        first = _send(db, shop, sink, closed)
        assert _recipients(sink) == ["einkauf@kunde.example"]
        for invoice_id in (shop.invoice, shop.credit_note, shop.unregistered):
            assert first.skipped[invoice_id].startswith("not sent in this run: ")
        assert sorted(_rows(db, shop.org["id"])) == [(shop.plain, "email", 0)]
        with AccessPointStandIn(network=_network()) as ap:
            second = _send(db, shop, sink, ap.url)
            assert len(ap.network.take_messages()) == 1
        assert second.by_channel == {"peppol": 1, "email": 2}
        assert len(sink.mailbox.messages) == 3


def test_a_run_that_died_under_way_leaves_the_peppol_delivery_unknown(db, tmp_path):
    shop = _shop(db, tmp_path)
    with tenant_transaction(db.engine, shop.org["id"], write=True) as conn:
        conn.execute(
            insert(deliveries).values(
                organization_id=shop.org["id"],
                sales_invoice_id=shop.invoice,
                channel="peppol",
                sequence=0,
                recipient=BRASSERIE,
                status="sending",
                message_id="peppol-under-way",
                attempts=1,
                updated_at=datetime(2026, 1, 1, tzinfo=UTC),  # started before this run
            )
        )
    with AccessPointStandIn(network=_network()) as ap, SmtpSink() as sink:
        summary = _send(db, shop, sink, ap.url)
        assert ap.network.take_messages() == []
    assert summary.unknown == {shop.invoice: "peppol-under-way"}
    assert summary.by_channel == {"email": 3}
    assert _rows(db, shop.org["id"])[(shop.invoice, "peppol", 0)].status == "unknown"


def test_an_organization_not_on_peppol_emails_and_says_why(db, tmp_path):
    shop = _shop(db, tmp_path, org_on_peppol=False)
    assert _peppol_documents(db, shop.org["id"]) == {}
    with AccessPointStandIn(network=_network()) as ap, SmtpSink() as sink:
        summary = _send(db, shop, sink, ap.url)
        assert ap.network.take_messages() == []
    assert summary.by_channel == {"email": 4}
    rows = _rows(db, shop.org["id"])
    for invoice_id in (shop.invoice, shop.credit_note, shop.unregistered):
        assert rows[(invoice_id, "email", 0)].fallback_reason == NO_SENDER_ID
    assert rows[(shop.plain, "email", 0)].fallback_reason is None


def test_a_peppol_document_that_does_not_prove_leaves_the_pdf_and_the_email_says_why(db, tmp_path):
    # the database keeps the shape only; the check digits are wrong (0208: 97 - mod 97)
    shop = _shop(db, tmp_path, brasserie_id="0208:0123456700")
    documents = _peppol_documents(db, shop.org["id"])
    status, key, errors = documents[shop.invoice]
    assert (status, key) == ("failed", None)
    assert errors[0]["rule"] == "IP-DOC-WRITE"
    with AccessPointStandIn(network=_network()) as ap, SmtpSink() as sink:
        summary = _send(db, shop, sink, ap.url)
        assert ap.network.take_messages() == []
    assert summary.by_channel == {"email": 4}
    row = _rows(db, shop.org["id"])[(shop.invoice, "email", 0)]
    assert row.status == "sent"
    assert row.fallback_reason.startswith("not over Peppol: its Peppol BIS document did not prove")
    assert "IP-DOC-WRITE" in row.fallback_reason


def test_the_delivery_asset_counts_each_channel(db, tmp_path):
    shop = _shop(db, tmp_path)
    with AccessPointStandIn(network=_network()) as ap, SmtpSink() as sink:
        resources = {
            "database": Database(url=db.url),
            "system_database": SystemDatabase(url=db.url),
            "document_store": shop.store,
            "mailer": SmtpMailer(port=sink.port, sender="rechnung@mueller.example"),
            "text_messages": TextMessageProvider(base_url="http://127.0.0.1:1"),
            "peppol_access_point": PeppolAccessPoint(base_url=ap.url, token=TOKEN),
        }
        defs = Definitions.merge(delivery.defs, Definitions(resources=resources))
        instance = DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [shop.org["slug"]])
        result = defs.resolve_job_def("send_invoices_job").execute_in_process(
            instance=instance, partition_key=shop.org["slug"]
        )
        assert result.success
        assert len(ap.network.take_messages()) == 1 and len(sink.mailbox.messages) == 3
    [event] = [
        e.event_specific_data.materialization
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
    ]
    metadata = {k: v.value for k, v in event.metadata.items()}
    assert (metadata["sent"], metadata["sent_email"], metadata["sent_peppol"]) == (4, 3, 1)
    assert metadata["peppol_fallbacks"] == 2
    assert "does not take Peppol BIS Billing 3.0 credit notes" in metadata["not_over_peppol"]


def test_a_communications_job_sends_over_peppol_and_audits_the_message_id(
    db, tmp_path, batch_kinds
):
    shop = _shop(db, tmp_path)
    with AccessPointStandIn(network=_network()) as ap, SmtpSink() as sink:
        channels = {
            "email": MailTransport(Smtp(port=sink.port, sender="rechnung@mueller.example")),
            "peppol": _peppol(ap.url),
        }
        kind = replace(
            COMMUNICATIONS_KIND,
            runs=replace(
                COMMUNICATIONS_KIND.runs,
                work=lambda engine, resources, run_id: communications_work(
                    engine, channels.__getitem__, store=shop.store, backoff_seconds=0.01
                ),
            ),
        )
        kinds = {DOCUMENTS_KIND.name: DOCUMENTS_KIND, kind.name: kind}
        work = chunk_work(db.engine, kind, kinds, SimpleNamespace(document_store=shop.store), None)
        job_id = enqueue_invoice_job(
            db.engine,
            find_organization(db.engine, shop.org["slug"]),
            batch_kinds[COMMUNICATIONS],
            shop.ids,
            created_by="anna",
        )
        job = run_invoice_job(db.engine, job_id, work, system=db.system_engine)
        [message] = ap.network.take_messages()
        assert len(sink.mailbox.messages) == 3
        # the same invoices in a new job: each was delivered, nothing goes twice
        again = run_invoice_job(
            db.engine,
            enqueue_invoice_job(
                db.engine,
                find_organization(db.engine, shop.org["slug"]),
                batch_kinds[COMMUNICATIONS],
                shop.ids,
                created_by="anna",
            ),
            work,
            system=db.system_engine,
        )
        assert ap.network.take_messages() == [] and len(sink.mailbox.messages) == 3
    assert (job.status, job.successful_count) == ("completed", 4)
    assert (again.status, again.skipped_count) == ("completed", 4)
    with tenant_transaction(db.engine, shop.org["id"]) as conn:
        trail = {
            int(entity): details
            for action, entity, details in conn.execute(
                select(audit_log.c.action, audit_log.c.entity_id, audit_log.c.details).where(
                    audit_log.c.organization_id == shop.org["id"],
                    audit_log.c.action == "invoice.sent",
                )
            )
        }
    assert trail[shop.invoice]["channel"] == "peppol"
    assert trail[shop.invoice]["transport_message_id"] == message["message_id"]
    assert trail[shop.credit_note]["channel"] == "email"
    assert "credit notes" in trail[shop.credit_note]["fallback_reason"]
