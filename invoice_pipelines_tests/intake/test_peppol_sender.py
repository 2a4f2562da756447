"""Who sent a received Peppol document (intake/domain/peppol_inbound.py, issue 72), on SQLite and
PostgreSQL: an envelope whose sender is not the document's seller's electronic address (BT-34),
or a document without one, waits for a person (IP-PEP-01, IP-PEP-02) instead of ending VALIDATED;
its rejection is answered over Peppol to no one, least of all the envelope's sender; a receiver id
that is no participant id by the Peppol Policy for use of Identifiers is refused (400 over HTTP)
and leaves no trace."""

from __future__ import annotations

import re
import threading
import uuid

import pytest
from sqlalchemy import func, select

from invoice_pipelines.db.tables import (
    incoming_invoices,
    peppol_received,
    peppol_responses,
    processing_errors,
    uploads,
)
from invoice_pipelines.db.tenancy import find_organization, system_transaction, tenant_transaction
from invoice_pipelines.intake.domain.peppol_http import receiver
from invoice_pipelines.intake.domain.peppol_inbound import (
    NO_SELLER_ADDRESS,
    REGISTERED,
    SENDER_NOT_SELLER,
    UNKNOWN_RECEIVER,
    ReceiveRefused,
    receive_peppol,
    receiver_problem,
    same_participant,
    seller_address,
)
from invoice_pipelines.intake.domain.peppol_responses import answer_rejections
from invoice_pipelines.intake.domain.pipeline import process_documents
from invoice_pipelines.intake.domain.review import review_document
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines.resources.peppol.transport import (
    INVOICE_RESPONSE_DOC_TYPE,
    INVOICE_RESPONSE_PROCESS,
    PeppolTransport,
)
from invoice_pipelines_devtools.standins.peppol import AccessPointStandIn, Network, forward_inbound
from invoice_pipelines_tests.conftest import PEPPOL_RULES_DIR, PEPPOL_SAMPLES_DIR
from invoice_pipelines_tests.einvoice.test_sbdh import wrap
from invoice_pipelines_tests.intake.test_peppol_receiving import InProcessParser
from invoice_pipelines_tests.intake.test_peppol_responses import as_seller

SELLER = "0088:7300010000001"  # the seller's electronic address in vat-category-E.xml
OTHER = "0088:5790000435975"  # a participant that is not the seller
TOKEN = "inbound-secret"


@pytest.fixture(autouse=True)
def _peppol_rules():
    if not (PEPPOL_RULES_DIR / "PEPPOL-EN16931-UBL.xsl").is_file():
        pytest.skip(f"Peppol rules or samples not found beside the repo ({PEPPOL_RULES_DIR})")


def _sample(name: str = "vat-category-E.xml") -> bytes:
    """An official example without its payment means: their made-up IBAN and BIC are findings
    of their own (IP-PAY-01/02), which would hold every example whoever sent it."""
    data = (PEPPOL_SAMPLES_DIR / name).read_bytes()
    return re.sub(rb"\s*<cac:PaymentMeans>.*?</cac:PaymentMeans>", b"", data, flags=re.S)


def _with_seller(document: bytes, participant: str | None) -> bytes:
    """The example with `participant` as its seller's electronic address (None: without one)."""
    stated = b'<cbc:EndpointID schemeID="0088">7300010000001</cbc:EndpointID>'
    assert document.count(stated) == 1
    if participant is None:
        return document.replace(stated, b"")
    scheme, value = participant.split(":", 1)
    return document.replace(
        stated, f'<cbc:EndpointID schemeID="{scheme}">{value}</cbc:EndpointID>'.encode()
    )


def _organization(db) -> dict:
    return db.new_organization(peppol_participant=f"9930:DE{uuid.uuid4().int % 10**9:09d}")


def _store(tmp_path) -> LocalUploads:
    return LocalUploads(str(tmp_path / "uploads"))


def _received_and_read(db, tmp_path, org, document: bytes, sender: str) -> dict:
    """The document, in an envelope from `sender`, received and read by the intake: its row
    with its findings of stage envelope (IP-PEP-xx)."""
    store = _store(tmp_path)
    envelope = wrap(document, receiver=org["peppol_participant"], sender=sender)
    received = receive_peppol(db.engine, store, envelope)
    assert received.outcome == REGISTERED, received.message
    # what the access point and the command are told
    assert ("waits for a person: IP-PEP-0" in received.message) is (
        not same_participant(sender, seller_address(document))
    ), received.message
    organization = find_organization(db.engine, org["slug"])
    process_documents(
        db.engine, store, organization, [received.document_id], parser=InProcessParser(), ocr=None
    )
    e = processing_errors.c
    with tenant_transaction(db.engine, org["id"]) as conn:
        row = dict(
            conn.execute(
                select(incoming_invoices).where(incoming_invoices.c.id == received.document_id)
            )
            .mappings()
            .one()
        )
        row["peppol_findings"] = conn.execute(
            select(e.processing_version, e.rule_id, e.severity, e.message)
            .where(e.incoming_invoice_id == received.document_id, e.stage == "envelope")
            .order_by(e.id)
        ).all()
    return row


# -- participant ids compared and checked (no database) --


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("0088:7300010000001", "0088:7300010000001", True),
        ("iso6523-actorid-upis::9930:de123456789", "9930:DE123456789", True),
        ("ISO6523-ACTORID-UPIS::9930:DE123456789", "9930:de123456789", True),
        ("9930:DE123456789", "9931:DE123456789", False),  # the same value, another scheme
        ("0088:7300010000001", "7300010000001", False),  # no scheme: no one's
        ("0088:7300010000001", None, False),
        ("9930:DEß1", "9930:DESS1", False),  # case-insensitive, not case-folded
    ],
)
def test_participant_ids_compare_by_scheme_and_value_without_case(one, other, same):
    assert same_participant(one, other) is same
    assert same_participant(other, one) is same


def test_the_seller_address_is_read_from_ubl_and_cii():
    assert seller_address(_sample()) == SELLER
    cii = b"""<?xml version="1.0"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
 xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100">
 <rsm:SupplyChainTradeTransaction><ram:ApplicableHeaderTradeAgreement><ram:SellerTradeParty>
  <ram:URIUniversalCommunication><ram:URIID schemeID="9930">DE123456789</ram:URIID>
  </ram:URIUniversalCommunication></ram:SellerTradeParty></ram:ApplicableHeaderTradeAgreement>
 </rsm:SupplyChainTradeTransaction></rsm:CrossIndustryInvoice>"""
    assert seller_address(cii) == "9930:DE123456789"
    assert seller_address(_with_seller(_sample(), None)) is None
    assert seller_address(b"not xml") is None


HOSTILE_RECEIVERS = {
    "blank": "9930:DE 123456789",
    "tab": "9930:DE123\t456789",
    "rlo": "9930:DE123\u202e987654",
    "zero-width": "9930:DE123\u200b456",
    "double colon": "9930::DE123456789",
    "path": "../../etc/passwd",
    "path after the scheme": "0088:../../etc",
    "10,000 digits": "0088:" + "1" * 10_000,
    "131 characters": "9930:" + "A" * 131,
    "no scheme": "DE123456789",
    "five-digit scheme": "99300:DE123456789",
    "scheme not on the list": "0000:123456",
    "scheme only": "iso6523-actorid-upis::9930",
    "empty value": "9930:",
}


@pytest.mark.parametrize("stated", HOSTILE_RECEIVERS.values(), ids=HOSTILE_RECEIVERS.keys())
def test_a_hostile_receiver_is_no_participant_id(stated):
    assert receiver_problem(stated) is not None


def test_a_receiver_of_130_characters_after_its_scheme_is_one():
    assert receiver_problem("9930:" + "A" * 130) is None
    assert receiver_problem("0204:04011000-12345-67") is None
    assert receiver_problem("0088:a.b_c~d-E") is None


# -- the sender is the seller --


def test_an_envelope_sender_that_is_not_the_seller_waits_for_a_person(db, tmp_path):
    org = _organization(db)
    document = _received_and_read(db, tmp_path, org, _sample(), sender=OTHER)

    assert document["status"] == "NEEDS_REVIEW", document
    assert [(f.rule_id, f.severity) for f in document["peppol_findings"]] == [
        (SENDER_NOT_SELLER, "warning"),  # recorded at receipt
        (SENDER_NOT_SELLER, "warning"),  # and with the intake's outcome
    ]
    message = document["peppol_findings"][-1].message
    assert OTHER in message and SELLER in message, message
    assert document["peppol_findings"][-1].processing_version == document["processing_version"]


def test_a_person_who_vouches_for_the_sender_moves_it_on(db, tmp_path):
    org = _organization(db)
    document = _received_and_read(db, tmp_path, org, _sample(), sender=OTHER)
    assert document["status"] == "NEEDS_REVIEW"
    result = review_document(
        db.engine, find_organization(db.engine, org["slug"]), document["id"], reviewed_by="anna", confirm=True,
        expected_version=document["processing_version"],
    )  # fmt: skip
    assert result.status == "VALIDATED", result


def test_an_envelope_sender_that_is_the_seller_changes_nothing(db, tmp_path):
    org = _organization(db)
    document = _received_and_read(db, tmp_path, org, _sample(), sender=SELLER)
    assert document["status"] == "VALIDATED", document
    assert document["peppol_findings"] == []

    # the case of the value does not make another participant
    other_org = _organization(db)
    bis = _with_seller(_sample("vat-category-Z.xml"), "9930:DE123456789")
    other = _received_and_read(db, tmp_path, other_org, bis, sender="9930:de123456789")
    assert other["status"] == "VALIDATED" and other["peppol_findings"] == []


def test_a_document_without_a_seller_address_cannot_be_checked_and_waits(db, tmp_path):
    org = _organization(db)
    document = _received_and_read(db, tmp_path, org, _with_seller(_sample(), None), sender=SELLER)
    assert document["status"] == "NEEDS_REVIEW", document
    assert {f.rule_id for f in document["peppol_findings"]} == {NO_SELLER_ADDRESS}
    assert SELLER in document["peppol_findings"][0].message


def test_a_bare_document_has_no_envelope_sender_to_doubt(db, tmp_path):
    org = _organization(db)
    stated = b'<cbc:EndpointID schemeID="0184">12345678</cbc:EndpointID>'
    assert _sample().count(stated) == 1
    bare = _sample().replace(
        stated,
        f'<cbc:EndpointID schemeID="9930">{org["peppol_participant"][5:]}</cbc:EndpointID>'.encode(),
    )
    assert seller_address(bare) == SELLER
    received = receive_peppol(db.engine, _store(tmp_path), bare)
    assert received.outcome == REGISTERED, received.message
    with tenant_transaction(db.engine, org["id"]) as conn:
        found = conn.execute(
            select(func.count())
            .select_from(processing_errors)
            .where(processing_errors.c.incoming_invoice_id == received.document_id)
        ).scalar_one()
    assert found == 0


# -- the answer goes to the seller's verified participant, never to an unverified sender --


def _broken(document: bytes) -> bytes:
    """Totals that do not add up (BR-CO-15): the intake rejects it."""
    stated = b'<cbc:TaxInclusiveAmount currencyID="EUR">1656.25</cbc:TaxInclusiveAmount>'
    assert stated in document
    return document.replace(stated, stated.replace(b"1656.25", b"1700.00"))


def test_a_rejection_is_never_answered_to_an_envelope_sender_that_is_not_the_seller(db, tmp_path):
    org = _organization(db)
    document = as_seller(_broken(_sample("base-example.xml")), SELLER)
    read = _received_and_read(db, tmp_path, org, document, sender=OTHER)
    assert read["status"] == "FAILED", read
    network = Network(token="ap-token")
    for participant in (OTHER, SELLER):  # both would take an Invoice Response
        network.register(participant, INVOICE_RESPONSE_DOC_TYPE, INVOICE_RESPONSE_PROCESS)

    with AccessPointStandIn(network=network) as ap:
        transport = PeppolTransport(base_url=ap.url, token="ap-token", timeout_seconds=10.0)
        summary = answer_rejections(db.engine, transport, find_organization(db.engine, org["id"]))
        assert ap.network.take_messages() == []  # to no one: not the sender, not the seller
        assert (
            answer_rejections(
                db.engine, transport, find_organization(db.engine, org["id"])
            ).by_notice
            == {}
        )
        assert ap.network.take_messages() == []

    [why] = summary.by_notice.values()
    assert SENDER_NOT_SELLER in why and OTHER in why and SELLER in why, why
    assert summary.sent == {} and summary.waiting == {}
    with tenant_transaction(db.engine, org["id"]) as conn:
        [row] = conn.execute(
            select(peppol_responses).where(peppol_responses.c.organization_id == org["id"])
        ).mappings()
    assert (row["channel"], row["status"], row["document"]) == ("notice", "notice", None)
    assert row["receiver"] is None and row["error"] == why


# -- a receiver that is no participant id: refused, nothing kept --


def _traces(db, key: str, org) -> tuple[int, int, int]:
    """(messages with this InstanceIdentifier, the organization's uploads, its documents)."""
    with system_transaction(db.engine) as conn:

        def count(table, where) -> int:
            return conn.execute(select(func.count()).select_from(table).where(where)).scalar_one()

        return (
            count(peppol_received, peppol_received.c.instance_identifier == key),
            count(uploads, uploads.c.organization_id == org["id"]),
            count(incoming_invoices, incoming_invoices.c.organization_id == org["id"]),
        )


@pytest.mark.parametrize("stated", HOSTILE_RECEIVERS.values(), ids=HOSTILE_RECEIVERS.keys())
def test_a_hostile_receiver_is_refused_and_nothing_is_kept(db, tmp_path, stated):
    org = _organization(db)
    key = str(uuid.uuid4())
    envelope = wrap(_sample(), receiver=stated, sender=SELLER, instance_identifier=key)
    with pytest.raises(ReceiveRefused, match="is no Peppol participant id") as refused:
        receive_peppol(db.engine, _store(tmp_path), envelope)
    said = str(refused.value)
    assert len(said) < 400 and "\u202e" not in said and "\t" not in said, said
    # not even with --org, which routes only a valid id no organization has
    with pytest.raises(ReceiveRefused):
        receive_peppol(
            db.engine,
            _store(tmp_path),
            envelope,
            organization=find_organization(db.engine, org["slug"]),
        )
    assert _traces(db, key, org) == (0, 0, 0)
    assert not (tmp_path / "uploads" / org["slug"]).exists()


def test_over_http_a_hostile_receiver_is_400_and_a_valid_unknown_one_is_kept(db, tmp_path):
    org = _organization(db)
    server = receiver(db.engine, _store(tmp_path), TOKEN)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    url = f"http://{host}:{port}/peppol/inbound"
    try:
        for name, stated in HOSTILE_RECEIVERS.items():
            key = str(uuid.uuid4())
            envelope = wrap(_sample(), receiver=stated, sender=SELLER, instance_identifier=key)
            answer = forward_inbound(url, envelope, TOKEN)
            assert answer.status == 400, (name, answer.status, answer.text)
            assert "is no Peppol participant id" in answer.text, (name, answer.text)
            assert _traces(db, key, org) == (0, 0, 0), name
        # an id no organization has, but an id: held as before (404, kept for routing)
        key = str(uuid.uuid4())
        nobody = f"9930:DE{uuid.uuid4().int % 10**9:09d}"
        envelope = wrap(_sample(), receiver=nobody, sender=SELLER, instance_identifier=key)
        held = forward_inbound(url, envelope, TOKEN)
        assert (held.status, held.fields["outcome"]) == (404, UNKNOWN_RECEIVER), held.text
        assert _traces(db, key, org)[0] == 1
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
