"""Peppol BIS Invoice Response 3.0: the UBL ApplicationResponse a buyer sends back over Peppol
about an invoice it received (issue 58). We write one kind: the rejection (`RE`), with a status
reason per finding that made the intake reject the document.

What the document carries, as OpenPEPPOL's public description of Invoice Response 3.0 gives it
(its rules are not among the rule sets here, so nothing but our own checks and the tests hold it
to that; docs/peppol.md says which facts are whose):

- `cbc:CustomizationID` `urn:fdc:peppol.eu:poacc:trns:invoice_response:3`, `cbc:ProfileID`
  `urn:fdc:peppol.eu:poacc:bis:invoice_response:3`, `cbc:ID`, `cbc:IssueDate`;
- `cac:SenderParty` (us) and `cac:ReceiverParty` (the invoice's sender), each with its
  electronic address (`cbc:EndpointID` with the EAS scheme) and its legal name;
- `cac:DocumentResponse/cac:Response`: `cbc:ResponseCode` (UNCL4343 subset: `RE` rejected), the
  effective date, and for each reason a `cac:Status` with `cbc:StatusReasonCode`
  (`listID="OPStatusReason"`) and the reason in words (`cbc:StatusReason`);
- `cac:DocumentResponse/cac:DocumentReference`: the invoice's number, issue date and type code.

Which reason code a finding gets is our choice: a finding of the rules that make an invoice an
invoice (the XSD, EN 16931's and a CIUS's rules: `LEG`, legal information incorrect); everything
else (a duplicate, our own checks) `OTH`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from lxml import etree

from invoice_pipelines.einvoice.peppol_ids import ParticipantId
from invoice_pipelines.einvoice.verdict import CIUS_STAGES, DECIDING_STAGES, FORMAT_STAGES

CUSTOMIZATION_ID = "urn:fdc:peppol.eu:poacc:trns:invoice_response:3"
PROFILE_ID = "urn:fdc:peppol.eu:poacc:bis:invoice_response:3"
REJECTED = "RE"
STATUS_REASON_LIST = "OPStatusReason"
LEGAL, OTHER = "LEG", "OTH"
# status reasons written at most; the rest are counted in the last one
MAX_REASONS = 12
MAX_REASON_CHARS = 500

NS = {
    None: "urn:oasis:names:specification:ubl:schema:xsd:ApplicationResponse-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
# the stages whose findings say the document is no (valid) invoice
_LEGAL_STAGES = FORMAT_STAGES | DECIDING_STAGES | CIUS_STAGES | {"schematron"}


@dataclass(frozen=True)
class Reason:
    code: str  # OPStatusReason, e.g. LEG, OTH
    text: str


@dataclass(frozen=True)
class Party:
    participant: ParticipantId
    name: str


def reason_of(stage: str | None, rule_id: str | None, message: str) -> Reason:
    """A finding as a status reason: its rule id and words, under the code its stage gives."""
    legal = (stage or "").lower() in _LEGAL_STAGES or (rule_id or "").startswith(("BR-", "PEPPOL-"))
    text = f"{rule_id}: {message}" if rule_id else message
    return Reason(LEGAL if legal else OTHER, _clean(text)[:MAX_REASON_CHARS])


def _clean(text: str) -> str:
    """Text as XML 1.0 may hold it: control characters (but tab and line ends) dropped."""
    return "".join(c for c in text if c in "\t\n\r" or (ord(c) >= 0x20 and c not in "\ufffe\uffff"))


def write_rejection(
    *,
    response_id: str,
    issue_date: date,
    sender: Party,
    receiver: Party,
    invoice_number: str,
    invoice_issue_date: date | None,
    invoice_type_code: str | None,
    reasons: Sequence[Reason],
) -> bytes:
    """The ApplicationResponse rejecting one invoice (`RE`), one `cac:Status` per reason (at
    least one: a rejection says why)."""
    if not reasons:
        raise ValueError("a rejection needs at least one reason")
    root = etree.Element("ApplicationResponse", nsmap=NS)

    def add(parent, name: str, text: str | None = None, **attributes) -> etree._Element:
        prefix, local = name.split(":")
        element = etree.SubElement(parent, f"{{{NS[prefix]}}}{local}", **attributes)
        if text is not None:
            element.text = _clean(text)
        return element

    add(root, "cbc:CustomizationID", CUSTOMIZATION_ID)
    add(root, "cbc:ProfileID", PROFILE_ID)
    add(root, "cbc:ID", response_id)
    add(root, "cbc:IssueDate", issue_date.isoformat())
    for tag, party in (("cac:SenderParty", sender), ("cac:ReceiverParty", receiver)):
        element = add(root, tag)
        add(element, "cbc:EndpointID", party.participant.value, schemeID=party.participant.scheme)
        legal = add(element, "cac:PartyLegalEntity")
        add(legal, "cbc:RegistrationName", (party.name or str(party.participant))[:300])
    document_response = add(root, "cac:DocumentResponse")
    response = add(document_response, "cac:Response")
    add(response, "cbc:ResponseCode", REJECTED)
    add(response, "cbc:EffectiveDate", issue_date.isoformat())
    listed = list(reasons[:MAX_REASONS])
    if len(reasons) > MAX_REASONS:
        rest = len(reasons) - MAX_REASONS + 1
        listed[-1] = Reason(OTHER, f"and {rest} further findings")
    for reason in listed:
        status = add(response, "cac:Status")
        add(status, "cbc:StatusReasonCode", reason.code, listID=STATUS_REASON_LIST)
        add(status, "cbc:StatusReason", reason.text)
    reference = add(document_response, "cac:DocumentReference")
    add(reference, "cbc:ID", invoice_number[:200])
    if invoice_issue_date is not None:
        add(reference, "cbc:IssueDate", invoice_issue_date.isoformat())
    if invoice_type_code:
        add(reference, "cbc:DocumentTypeCode", invoice_type_code)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
