"""What an access point forwards: a business document in a Peppol SBDH envelope (the Standard
Business Document Header of UN/CEFACT, as the Peppol Business Message Envelope uses it), or the
bare UBL document. `open_envelope` gives the document's bytes and what the envelope says about it
(its InstanceIdentifier, sender, receiver, document type, process, the sender's country); a
broken envelope is an `EnvelopeError` whose message says what is wrong in one sentence.

The header's terms read here (Peppol Business Message Envelope 2.0): `Sender/Identifier` and
`Receiver/Identifier` (participant ids, `Authority` the scheme `iso6523-actorid-upis`),
`DocumentIdentification/InstanceIdentifier` (the message's unique id, the key it is registered
once under), and the `BusinessScope/Scope`s of `Type` DOCUMENTID, PROCESSID and COUNTRY_C1. The
document follows the header as its one sibling element.

A bare document keeps its own bytes (an upload of the same file is the same document); one taken
out of an envelope is serialized anew as UTF-8 with the namespaces it uses. Its sender and
receiver are then the seller's and buyer's electronic addresses (BT-34, BT-49), and it has no
InstanceIdentifier. No database, no network.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from invoice_pipelines.einvoice.readers.ubl import NAMESPACES, UBL_CREDITNOTE_NS, UBL_INVOICE_NS
from invoice_pipelines.einvoice.readers.xmlsafe import XmlRejected, parse_xml

SBDH_NS = "http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader"
DOCUMENTS = {UBL_INVOICE_NS: "Invoice", UBL_CREDITNOTE_NS: "CreditNote"}
# the column the InstanceIdentifier is kept in
MAX_IDENTIFIER_CHARS = 200
PARTICIPANT_PREFIX = "iso6523-actorid-upis::"


class EnvelopeError(ValueError):
    """The bytes are no SBDH envelope around an invoice and no bare UBL invoice or credit note;
    the message says what is wrong."""


@dataclass(frozen=True)
class Envelope:
    """A forwarded document and what its envelope says about it."""

    document: bytes  # the UBL Invoice or CreditNote
    root: str  # "Invoice" or "CreditNote"
    wrapped: bool  # it came in an SBDH envelope
    instance_identifier: str | None = None  # the SBDH's; None for a bare document
    sender: str | None = None  # participant id "<eas>:<value>" as stated
    receiver: str | None = None
    document_type: str | None = None  # the DOCUMENTID scope
    process: str | None = None  # the PROCESSID scope
    country: str | None = None  # COUNTRY_C1: the sender's country


def _sbdh(local: str) -> str:
    return f"{{{SBDH_NS}}}{local}"


def _text(node: etree._Element | None) -> str | None:
    if node is None or node.text is None or not node.text.strip():
        return None
    return node.text.strip()


def participant(text: str | None) -> str | None:
    """A participant id as stated, without the `iso6523-actorid-upis::` prefix (any case)."""
    if text is None or not text.strip():
        return None
    value = text.strip()
    if value.lower().startswith(PARTICIPANT_PREFIX):
        value = value[len(PARTICIPANT_PREFIX) :]
    return value


def _endpoint(root: etree._Element, party: str) -> str | None:
    """A UBL party's electronic address (`cbc:EndpointID` with its `schemeID`) as `<eas>:<value>`."""
    node = root.find(f"cac:{party}/cac:Party/cbc:EndpointID", NAMESPACES)
    value, scheme = _text(node), None if node is None else (node.get("schemeID") or "").strip()
    if value is None:
        return None
    return f"{scheme}:{value}" if scheme else value


def _document_root(element: etree._Element, where: str) -> str:
    namespace = etree.QName(element).namespace or ""
    if namespace not in DOCUMENTS or etree.QName(element).localname != DOCUMENTS[namespace]:
        raise EnvelopeError(
            f"{where} is <{etree.QName(element).localname}> in namespace "
            f"'{namespace or '(none)'}', not a UBL Invoice or CreditNote"
        )
    return DOCUMENTS[namespace]


def _scopes(header: etree._Element) -> dict[str, str]:
    scopes: dict[str, str] = {}
    for scope in header.iterfind(f"{_sbdh('BusinessScope')}/{_sbdh('Scope')}"):
        kind, value = (
            _text(scope.find(_sbdh("Type"))),
            _text(scope.find(_sbdh("InstanceIdentifier"))),
        )
        if kind and value:
            scopes.setdefault(kind.upper(), value)
    return scopes


def _opened(root: etree._Element) -> Envelope:
    header = root.find(_sbdh("StandardBusinessDocumentHeader"))
    if header is None:
        raise EnvelopeError("the SBDH envelope has no StandardBusinessDocumentHeader")
    identifier = _text(
        header.find(f"{_sbdh('DocumentIdentification')}/{_sbdh('InstanceIdentifier')}")
    )
    if identifier is None:
        raise EnvelopeError(
            "the SBDH envelope has no DocumentIdentification/InstanceIdentifier, the id it is "
            "registered once under"
        )
    if len(identifier) > MAX_IDENTIFIER_CHARS:
        raise EnvelopeError(
            f"the SBDH InstanceIdentifier is {len(identifier)} characters long; at most "
            f"{MAX_IDENTIFIER_CHARS} are kept"
        )
    receiver = participant(_text(header.find(f"{_sbdh('Receiver')}/{_sbdh('Identifier')}")))
    if receiver is None:
        raise EnvelopeError("the SBDH envelope names no Receiver/Identifier")
    documents = [child for child in root if isinstance(child.tag, str) and child is not header]
    if len(documents) != 1:
        raise EnvelopeError(
            f"the SBDH envelope carries {len(documents)} documents after its header; one is "
            "expected"
        )
    [document] = documents
    name = _document_root(document, "the document in the SBDH envelope")
    scopes = _scopes(header)
    return Envelope(
        document=etree.tostring(document, xml_declaration=True, encoding="UTF-8"),
        root=name,
        wrapped=True,
        instance_identifier=identifier,
        sender=participant(_text(header.find(f"{_sbdh('Sender')}/{_sbdh('Identifier')}"))),
        receiver=receiver,
        document_type=scopes.get("DOCUMENTID"),
        process=scopes.get("PROCESSID"),
        country=scopes.get("COUNTRY_C1"),
    )


def open_envelope(data: bytes, *, max_bytes: int) -> Envelope:
    """The document an access point forwarded, out of its SBDH envelope or bare, with what the
    envelope says; EnvelopeError when it is neither (or too large, or not XML)."""
    try:
        safe = parse_xml(data, max_bytes=max_bytes)
    except XmlRejected as exc:
        raise EnvelopeError(f"not a Peppol document: {exc}") from None
    if safe.namespace == SBDH_NS and safe.local_name == "StandardBusinessDocument":
        return _opened(safe.root)
    if safe.namespace == SBDH_NS:
        raise EnvelopeError(
            f"the root element is <{safe.local_name}> of the SBDH namespace; an envelope is "
            "<StandardBusinessDocument>"
        )
    name = _document_root(safe.root, "the root element")
    return Envelope(
        document=data,
        root=name,
        wrapped=False,
        sender=_endpoint(safe.root, "AccountingSupplierParty"),
        receiver=_endpoint(safe.root, "AccountingCustomerParty"),
    )
