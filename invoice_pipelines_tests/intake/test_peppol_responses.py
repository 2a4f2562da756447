"""A received Peppol document the intake rejects is answered once (intake/domain/peppol_responses.py),
on SQLite and PostgreSQL, through the access point stand-in over real HTTP on 127.0.0.1: an
Invoice Response (UBL ApplicationResponse, RE with its reasons) where the sender's SMP
registration takes one, and then no e-mail notice; else the supplier notice, as before. Faults
as for invoices: a lost answer is unknown and never sent again, 429 is asked again, an AS4 error
fails; an access point that cannot be asked holds the notice until it answers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree
from sqlalchemy import select

from invoice_pipelines.db.tables import incoming_invoices, peppol_responses, supplier_notices
from invoice_pipelines.db.tenancy import find_organization, system_transaction, tenant_transaction
from invoice_pipelines.delivery.domain.peppol_overview import unanswered
from invoice_pipelines.einvoice.invoice_response import CUSTOMIZATION_ID, NS, PROFILE_ID
from invoice_pipelines.intake.domain.notices import send_supplier_notices
from invoice_pipelines.intake.domain.peppol_inbound import receive_peppol
from invoice_pipelines.intake.domain.peppol_responses import (
    NOTICE_LEFT,
    answer_rejections,
    organizations_awaiting_answers,
)
from invoice_pipelines.intake.domain.pipeline import process_documents
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines.resources.peppol.transport import (
    BILLING_PROCESS,
    INVOICE_DOC_TYPE,
    INVOICE_RESPONSE_DOC_TYPE,
    INVOICE_RESPONSE_PROCESS,
    PeppolTransport,
)
from invoice_pipelines.supplier_register import add_supplier
from invoice_pipelines_devtools.standins.peppol import AccessPointStandIn, Network
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.conftest import PEPPOL_RULES_DIR, PEPPOL_SAMPLES_DIR
from invoice_pipelines_tests.einvoice.test_sbdh import wrap
from invoice_pipelines_tests.intake.test_peppol_receiving import InProcessParser

ANSWERING = "0088:7300010000001"  # its access point takes Invoice Responses
SILENT = "0088:5790000435975"  # on Peppol for invoices only
SUPPLIER_VAT = "GB1232434"  # the examples' seller
NOTICE_ADDRESS = "ap@supplier.example"
CBC = f"{{{NS['cbc']}}}"


@pytest.fixture(autouse=True)
def _peppol_rules():
    if not (PEPPOL_RULES_DIR / "PEPPOL-EN16931-UBL.xsl").is_file():
        pytest.skip(f"Peppol rules or samples not found beside the repo ({PEPPOL_RULES_DIR})")


def _network() -> Network:
    network = Network(token="ap-token")
    network.register(ANSWERING, INVOICE_RESPONSE_DOC_TYPE, INVOICE_RESPONSE_PROCESS)
    network.register(SILENT, INVOICE_DOC_TYPE, BILLING_PROCESS)
    return network


def _transport(url: str) -> PeppolTransport:
    return PeppolTransport(base_url=url, token="ap-token", timeout_seconds=10.0)


def _organization(db) -> dict:
    org = db.new_organization(peppol_participant=f"9930:DE{uuid.uuid4().int % 10**9:09d}")
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        add_supplier(
            conn,
            org["id"],
            name="SupplierOfficialName Ltd",
            vat_id=SUPPLIER_VAT,
            notice_email=NOTICE_ADDRESS,
            changed_by="test",
            reason="the supplier's accounts department",
        )
    return org


def _answer(db, transport, org: dict, **options):
    """`answer_rejections` for the organization's value, as the notices' action hands it."""
    return answer_rejections(
        db.engine, transport, find_organization(db.engine, org["id"]), **options
    )


def _broken(sample: str = "base-example.xml") -> bytes:
    """An official example whose totals do not add up (BR-CO-15): the intake rejects it."""
    data = (PEPPOL_SAMPLES_DIR / sample).read_bytes()
    stated = b'<cbc:TaxInclusiveAmount currencyID="EUR">1656.25</cbc:TaxInclusiveAmount>'
    assert stated in data
    return data.replace(stated, stated.replace(b"1656.25", b"1700.00"))


def as_seller(document: bytes, participant: str) -> bytes:
    """The example with `participant` as its seller's electronic address (BT-34)."""
    stated = b'<cbc:EndpointID schemeID="0088">9482348239847239874</cbc:EndpointID>'
    assert document.count(stated) == 1
    scheme, value = participant.split(":", 1)
    return document.replace(
        stated, f'<cbc:EndpointID schemeID="{scheme}">{value}</cbc:EndpointID>'.encode()
    )


def _reject(db, tmp_path, org, senders: list[str]) -> list:
    """Each sender's message (the sender the seller: test_peppol_sender.py has the others)
    received and rejected by the intake (in this order)."""
    store = LocalUploads(str(tmp_path / "uploads"))
    received = []
    for number, sender in enumerate(senders):
        document = as_seller(_broken(), sender).replace(
            b"<cbc:ID>Snippet1</cbc:ID>", f"<cbc:ID>R-{number}</cbc:ID>".encode(), 1
        )
        envelope = wrap(
            document,
            receiver=org["peppol_participant"],
            sender=sender,
            instance_identifier=str(uuid.uuid4()),
        )
        received.append(receive_peppol(db.engine, store, envelope))
    ids = [r.document_id for r in received]
    organization = find_organization(db.engine, org["slug"])
    process_documents(db.engine, store, organization, ids, parser=InProcessParser(), ocr=None)
    with tenant_transaction(db.engine, org["id"]) as conn:
        statuses = conn.execute(
            select(incoming_invoices.c.status).where(incoming_invoices.c.id.in_(ids))
        ).scalars()
        assert set(statuses) == {"FAILED"}
    return received


def _responses(db, org) -> list[dict]:
    r = peppol_responses.c
    with tenant_transaction(db.engine, org["id"]) as conn:
        return [
            dict(row)
            for row in conn.execute(
                select(peppol_responses).where(r.organization_id == org["id"]).order_by(r.id)
            ).mappings()
        ]


def _notices(db, org) -> dict[int, dict]:
    n = supplier_notices.c
    with tenant_transaction(db.engine, org["id"]) as conn:
        return {
            row.incoming_invoice_id: row._asdict()
            for row in conn.execute(
                select(n.id, n.incoming_invoice_id, n.status, n.error, n.folded_into).where(
                    n.organization_id == org["id"]
                )
            )
        }


def _mails(db, org) -> tuple:
    with SmtpSink() as sink:
        mailer = Smtp(port=sink.port, sender="eingang@buyer.example")
        summary = send_supplier_notices(db.engine, mailer, org["id"])
        return summary, sink.mailbox.messages


def test_a_rejection_goes_back_as_an_invoice_response_once_and_no_notice(db, tmp_path):
    org = _organization(db)
    [received] = _reject(db, tmp_path, org, [ANSWERING])
    assert _notices(db, org)[received.document_id]["status"] == "pending"
    assert org["id"] in {o.id for o in organizations_awaiting_answers(db.engine)}

    with AccessPointStandIn(network=_network()) as ap:
        summary = _answer(db, _transport(ap.url), org)
        [message] = ap.network.take_messages()
        assert list(summary.sent) == [received.message_id] and not summary.by_notice
        # a second run: answered already, nothing leaves
        again = _answer(db, _transport(ap.url), org)
        assert (again.sent, again.by_notice, ap.network.take_messages()) == ({}, {}, [])

    assert message["receiver"] == f"iso6523-actorid-upis::{ANSWERING}"
    assert message["sender"] == f"iso6523-actorid-upis::{org['peppol_participant']}"
    assert (message["doc_type_id"], message["process_id"]) == (
        INVOICE_RESPONSE_DOC_TYPE,
        INVOICE_RESPONSE_PROCESS,
    )
    response = etree.fromstring(message["document"])
    assert etree.QName(response).localname == "ApplicationResponse"
    assert response.findtext(f"{CBC}CustomizationID") == CUSTOMIZATION_ID
    assert response.findtext(f"{CBC}ProfileID") == PROFILE_ID
    cac = f"{{{NS['cac']}}}"
    sender = response.find(f"{cac}SenderParty/{CBC}EndpointID")
    assert (sender.get("schemeID"), sender.text) == tuple(org["peppol_participant"].split(":"))
    receiver = response.find(f"{cac}ReceiverParty/{CBC}EndpointID")
    assert f"{receiver.get('schemeID')}:{receiver.text}" == ANSWERING
    assert response.findtext(f"{cac}ReceiverParty/{cac}PartyLegalEntity/{CBC}RegistrationName")
    answer = response.find(f"{cac}DocumentResponse/{cac}Response")
    assert answer.findtext(f"{CBC}ResponseCode") == "RE"
    reasons = answer.findall(f"{cac}Status")
    assert reasons and all(
        s.find(f"{CBC}StatusReasonCode").get("listID") == "OPStatusReason" for s in reasons
    )
    assert any(
        s.findtext(f"{CBC}StatusReasonCode") == "LEG"
        and s.findtext(f"{CBC}StatusReason").startswith("BR-CO-15")
        for s in reasons
    ), [s.findtext(f"{CBC}StatusReason") for s in reasons]
    reference = response.find(f"{cac}DocumentResponse/{cac}DocumentReference")
    assert reference.findtext(f"{CBC}ID") == "R-0"
    assert reference.findtext(f"{CBC}DocumentTypeCode") == "380"

    [row] = _responses(db, org)
    assert (row["channel"], row["status"], row["response_code"]) == ("peppol", "sent", "RE")
    assert row["transport_message_id"] == message["message_id"]
    assert row["document"] == message["document"]
    assert row["response_id"] == response.findtext(f"{CBC}ID")
    # the notice was withdrawn: the supplier hears once, over Peppol
    assert received.document_id not in _notices(db, org)
    summary, mails = _mails(db, org)
    assert (summary.sent, mails) == ([], [])
    assert org["id"] not in {o.id for o in organizations_awaiting_answers(db.engine)}


def test_a_sender_that_takes_no_invoice_response_gets_the_notice(db, tmp_path):
    org = _organization(db)
    [received] = _reject(db, tmp_path, org, [SILENT])
    with AccessPointStandIn(network=_network()) as ap:
        summary = _answer(db, _transport(ap.url), org)
        assert ap.network.take_messages() == []
    assert "takes no Peppol Invoice Response" in summary.by_notice[received.message_id]
    [row] = _responses(db, org)
    assert (row["channel"], row["status"], row["document"]) == ("notice", "notice", None)
    sent, mails = _mails(db, org)
    assert len(sent.sent) == 1 and [m["To"] for m in mails] == [NOTICE_ADDRESS]


def test_an_access_point_that_cannot_be_asked_holds_the_notice_until_it_answers(db, tmp_path):
    org = _organization(db)
    [received] = _reject(db, tmp_path, org, [ANSWERING])
    with AccessPointStandIn(network=_network()) as ap:
        closed = ap.url
    summary = _answer(db, _transport(closed), org)
    assert list(summary.waiting) == [received.message_id] and _responses(db, org) == []
    held, mails = _mails(db, org)
    assert (held.sent, mails) == ([], [])
    assert _notices(db, org)[received.document_id]["status"] == "pending"

    with AccessPointStandIn(network=_network()) as ap:
        summary = _answer(db, _transport(ap.url), org)
        assert len(ap.network.take_messages()) == 1
    assert list(summary.sent) == [received.message_id]
    assert _mails(db, org)[1] == []


def test_faults_are_settled_as_for_invoices(db, tmp_path):
    org = _organization(db)
    lost, throttled, refused = _reject(db, tmp_path, org, [ANSWERING] * 3)
    network = _network()
    network.keep_then_answer.append(0)  # the first: kept, then the connection dropped
    with AccessPointStandIn(network=network) as ap:
        transport = _transport(ap.url)
        first = _answer(db, transport, org, backoff_seconds=0.01)
        # the lost one reached the access point once, as did the other two
        assert len(ap.network.take_messages()) == 3
    assert first.unknown == [lost.message_id]
    assert sorted(first.sent) == sorted([throttled.message_id, refused.message_id])
    by_message = {r["peppol_received_id"]: r for r in _responses(db, org)}
    assert by_message[lost.message_id]["status"] == "unknown"
    with AccessPointStandIn(network=network) as ap:
        again = _answer(db, _transport(ap.url), org)
        assert ap.network.take_messages() == []  # unknown is never sent again on its own
    assert (again.sent, again.unknown, again.failed) == ({}, [], {})

    # a 429 is asked again and goes once; an AS4 error fails with its message id
    org = _organization(db)
    asked_again, rejected = _reject(db, tmp_path, org, [ANSWERING, SILENT])
    network = _network()
    network.register(SILENT, INVOICE_RESPONSE_DOC_TYPE, INVOICE_RESPONSE_PROCESS)
    network.throttle_next = 1
    network.rejecting[SILENT] = "no such buyer relationship"
    with AccessPointStandIn(network=network) as ap:
        summary = _answer(db, _transport(ap.url), org, backoff_seconds=0.01)
        messages = ap.network.take_messages()
    assert list(summary.sent) == [asked_again.message_id]
    assert "no such buyer relationship" in summary.failed[rejected.message_id]
    assert len([m for m in messages if m["rejected"] is None]) == 1
    by_message = {r["peppol_received_id"]: r for r in _responses(db, org)}
    failed = by_message[rejected.message_id]
    assert failed["status"] == "failed" and failed["transport_message_id"]
    # neither is e-mailed: the failed one is for a person (the unanswered check)
    assert _mails(db, org)[1] == []


@pytest.mark.parametrize("peppol_first", [True, False], ids=["carrier", "folded"])
def test_a_notice_shared_with_another_document_goes_without_the_answered_one(
    db, tmp_path, peppol_first
):
    """Two rejections to the same notice address on one day share one notice: the one answered
    over Peppol leaves it (as its carrier, the other becomes the carrier), the other is e-mailed."""
    org = _organization(db)
    order = [ANSWERING, SILENT] if peppol_first else [SILENT, ANSWERING]
    received = dict(zip(order, _reject(db, tmp_path, org, order), strict=True))
    notices = _notices(db, org)
    first, second = (notices[received[s].document_id] for s in order)
    assert (first["status"], second["status"]) == ("pending", "folded")

    with AccessPointStandIn(network=_network()) as ap:
        summary = _answer(db, _transport(ap.url), org)
        assert len(ap.network.take_messages()) == 1
    assert list(summary.sent) == [received[ANSWERING].message_id]
    assert list(summary.by_notice) == [received[SILENT].message_id]
    notices = _notices(db, org)
    assert notices[received[SILENT].document_id]["status"] == "pending"
    assert notices[received[SILENT].document_id]["folded_into"] is None
    if peppol_first:
        assert received[ANSWERING].document_id not in notices
    else:
        assert notices[received[ANSWERING].document_id]["status"] == "suppressed"
    sent, mails = _mails(db, org)
    assert len(sent.sent) == 1 and len(mails) == 1
    body = mails[0].get_body(preferencelist=("plain",)).get_content()
    assert "R-1" in body if peppol_first else "R-0" in body
    assert ("R-0" not in body) if peppol_first else ("R-1" not in body)


def test_a_notice_that_went_out_before_is_the_answer(db, tmp_path):
    org = _organization(db)
    [received] = _reject(db, tmp_path, org, [ANSWERING])
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(
            supplier_notices.update()
            .where(supplier_notices.c.incoming_invoice_id == received.document_id)
            .values(status="sent")
        )
    with AccessPointStandIn(network=_network()) as ap:
        summary = _answer(db, _transport(ap.url), org)
        assert ap.network.take_messages() == []
    assert summary.by_notice == {received.message_id: NOTICE_LEFT}


def test_the_unanswered_check_counts_an_accepted_invoice_response_as_the_answer(db, tmp_path):
    org = _organization(db)
    stranger = "9930:DE123456789"  # not in the SMP: the notice answers
    answered, failed, noticed = _reject(db, tmp_path, org, [ANSWERING, SILENT, stranger])
    network = _network()
    network.register(SILENT, INVOICE_RESPONSE_DOC_TYPE, INVOICE_RESPONSE_PROCESS)
    network.rejecting[SILENT] = "closed"
    with AccessPointStandIn(network=network) as ap:
        summary = _answer(db, _transport(ap.url), org)
    assert list(summary.by_notice) == [noticed.message_id]
    later = datetime.now(UTC) + timedelta(days=2)

    def found() -> dict[str, str]:
        with system_transaction(db.engine) as conn:
            return {u.instance_identifier: u.why for u in unanswered(conn, now=later)}

    before = found()
    assert answered.instance_identifier not in before
    assert before[failed.instance_identifier] == "rejected, Invoice Response failed"
    assert before[noticed.instance_identifier] == "rejected, no notice sent"
    sent, mails = _mails(db, org)
    assert len(mails) == 1
    after = found()
    assert noticed.instance_identifier not in after and failed.instance_identifier in after
