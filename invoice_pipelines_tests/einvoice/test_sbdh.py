"""What an access point forwards, opened (einvoice/sbdh.py): the official Peppol examples in an
SBDH envelope give back the document and what the header says; a bare one keeps its own bytes and
is addressed by its buyer's electronic address; a broken envelope is one clear sentence."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from lxml import etree

from invoice_pipelines.einvoice.read import read_einvoice
from invoice_pipelines.einvoice.sbdh import SBDH_NS, EnvelopeError, open_envelope
from invoice_pipelines_tests.conftest import PEPPOL_SAMPLES_DIR

SAMPLES = sorted(PEPPOL_SAMPLES_DIR.glob("*.xml")) if PEPPOL_SAMPLES_DIR.is_dir() else []
LIMIT = 10 * 1024 * 1024
DOCUMENT_IDS = {
    "Invoice": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##urn:cen.eu:"
    "en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1",
    "CreditNote": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2::CreditNote##urn:"
    "cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1",
}
PROCESS = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"


def wrap(
    document: bytes,
    *,
    receiver: str,
    sender: str = "0088:7300010000001",
    instance_identifier: str | None = None,
    country: str = "SE",
    header: bool = True,
) -> bytes:
    """The document in an SBDH envelope as the Peppol Business Message Envelope 2.0 describes it:
    sender and receiver participant ids (scheme iso6523-actorid-upis), the InstanceIdentifier,
    the DOCUMENTID, PROCESSID and COUNTRY_C1 scopes, the document after the header."""
    payload = etree.fromstring(document)
    name = etree.QName(payload).localname

    def element(parent, local, text=None, **attributes):
        node = etree.SubElement(parent, f"{{{SBDH_NS}}}{local}", **attributes)
        node.text = text
        return node

    root = etree.Element(f"{{{SBDH_NS}}}StandardBusinessDocument", nsmap={None: SBDH_NS})
    if header:
        sbdh = element(root, "StandardBusinessDocumentHeader")
        element(sbdh, "HeaderVersion", "1.0")
        authority = {"Authority": "iso6523-actorid-upis"}
        element(
            element(sbdh, "Sender"), "Identifier", f"iso6523-actorid-upis::{sender}", **authority
        )
        element(element(sbdh, "Receiver"), "Identifier", receiver, **authority)
        identification = element(sbdh, "DocumentIdentification")
        element(identification, "Standard", etree.QName(payload).namespace)
        element(identification, "TypeVersion", "2.1")
        if instance_identifier != "":
            element(identification, "InstanceIdentifier", instance_identifier or str(uuid.uuid4()))
        element(identification, "Type", name)
        element(identification, "CreationDateAndTime", "2026-11-27T03:00:00Z")
        scopes = element(sbdh, "BusinessScope")
        for kind, value, scheme in (
            ("DOCUMENTID", DOCUMENT_IDS[name], "busdox-docid-qns"),
            ("PROCESSID", PROCESS, "cenbii-procid-ubl"),
            ("COUNTRY_C1", country, None),
        ):
            scope = element(scopes, "Scope")
            element(scope, "Type", kind)
            element(scope, "InstanceIdentifier", value)
            if scheme:
                element(scope, "Identifier", scheme)
    root.append(payload)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@pytest.fixture(autouse=True)
def _samples():
    if not SAMPLES:
        pytest.skip(f"the official Peppol examples are not beside the repo ({PEPPOL_SAMPLES_DIR})")


def _essence(path_or_bytes: Path | bytes):
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else path_or_bytes.read_bytes()
    invoice = read_einvoice(data, "x.xml").invoice
    return (invoice.number, invoice.type_code, invoice.issue_date, invoice.gross_total,
            invoice.amount_due, len(invoice.lines))  # fmt: skip


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_an_official_example_comes_out_of_its_envelope_as_it_went_in(path: Path):
    wrapped = wrap(path.read_bytes(), receiver="iso6523-actorid-upis::0204:991-12345-67",
                   instance_identifier="c0ffee00-1111-4222-8333-444455556666")  # fmt: skip
    opened = open_envelope(wrapped, max_bytes=LIMIT)
    assert opened.wrapped
    assert opened.instance_identifier == "c0ffee00-1111-4222-8333-444455556666"
    assert (opened.sender, opened.receiver) == ("0088:7300010000001", "0204:991-12345-67")
    assert opened.document_type == DOCUMENT_IDS[opened.root]
    assert (opened.process, opened.country) == (PROCESS, "SE")
    assert opened.root == ("CreditNote" if b"<CreditNote" in path.read_bytes() else "Invoice")
    assert _essence(opened.document) == _essence(path)
    assert etree.QName(etree.fromstring(opened.document)).localname == opened.root


def test_a_bare_document_keeps_its_bytes_and_is_addressed_by_its_buyer():
    data = (PEPPOL_SAMPLES_DIR / "base-example.xml").read_bytes()
    opened = open_envelope(data, max_bytes=LIMIT)
    assert not opened.wrapped and opened.document == data
    assert opened.instance_identifier is None
    assert (opened.sender, opened.receiver) == ("0088:9482348239847239874", "0002:FR23342")


def _base() -> bytes:
    return (PEPPOL_SAMPLES_DIR / "base-example.xml").read_bytes()


def _without(data: bytes, local: str) -> bytes:
    root = etree.fromstring(data)
    for node in list(root.iter(f"{{{SBDH_NS}}}{local}")):
        node.getparent().remove(node)
    return etree.tostring(root)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "the XML document is empty"),
        (b"<StandardBusinessDocument", "not a Peppol document"),
        (wrap(_base() if SAMPLES else b"<x/>", receiver="0088:1", instance_identifier="")
         if SAMPLES else b"", "no DocumentIdentification/InstanceIdentifier"),
        (_without(wrap(_base(), receiver="0088:1"), "Receiver") if SAMPLES else b"",
         "names no Receiver/Identifier"),
        (wrap(_base(), receiver="0088:1", header=False) if SAMPLES else b"",
         "has no StandardBusinessDocumentHeader"),
        (wrap(_base(), receiver="0088:1", instance_identifier="x" * 201) if SAMPLES else b"",
         "201 characters long"),
        (b"<Order xmlns='urn:oasis:names:specification:ubl:schema:xsd:Order-2'/>",
         "the root element is <Order>"),
        (b"<rsm:CrossIndustryInvoice xmlns:rsm='urn:un:unece:uncefact:data:standard:"
         b"CrossIndustryInvoice:100'/>", "not a UBL Invoice or CreditNote"),
        (f"<StandardBusinessDocumentHeader xmlns='{SBDH_NS}'/>".encode(),
         "an envelope is <StandardBusinessDocument>"),
    ],
    ids=["empty", "not-xml", "no-instance-identifier", "no-receiver", "no-header", "long-id",
         "an-order", "bare-cii", "header-alone"],
)  # fmt: skip
def test_a_broken_envelope_is_one_clear_sentence(data: bytes, says: str):
    with pytest.raises(EnvelopeError) as refused:
        open_envelope(data, max_bytes=LIMIT)
    assert says in str(refused.value)


def test_an_envelope_with_an_order_or_two_documents_is_refused():
    order = wrap(_base(), receiver="0088:1").replace(
        b'urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"', b'urn:example:order"', 1
    )
    with pytest.raises(EnvelopeError, match="not a UBL Invoice or CreditNote"):
        open_envelope(order, max_bytes=LIMIT)
    root = etree.fromstring(wrap(_base(), receiver="0088:1"))
    root.append(etree.fromstring(_base()))
    with pytest.raises(EnvelopeError, match="carries 2 documents"):
        open_envelope(etree.tostring(root), max_bytes=LIMIT)


def test_a_document_over_the_limit_is_refused_unread():
    with pytest.raises(EnvelopeError, match="more than the limit"):
        open_envelope(wrap(_base(), receiver="0088:1"), max_bytes=1000)
