"""Documents a Peppol access point forwards, into the intake as uploads (issue 58, receiving).

`receive_peppol` takes what the access point hands over (a UBL Invoice or CreditNote in an SBDH
envelope, or bare: einvoice/sbdh.py) and registers it once per SBDH InstanceIdentifier (a bare
document's key is `sha256:<its content hash>`) in `peppol_received`:

- The receiving organization is the one whose `organizations.peppol_participant` is the
  envelope's receiver (a bare document's: its buyer's electronic address, BT-49), compared
  without the scheme prefix and case, as Peppol compares participant ids. `organization` (the
  command's `--org`) routes a document whose receiver is no organization's id; it may not
  contradict one that is.
- Registered: the document is archived in the organization's upload store and recorded as an
  upload (`register_uploads`, created by `peppol`) in the transaction that records the message:
  an UPLOADED incoming invoice that the upload sensor dispatches to the intake like any upload,
  read, validated (CEN, KoSIT for an XRechnung, OpenPEPPOL's rules for Peppol BIS) and classified
  as every other document is. The same bytes received or uploaded before make a duplicate upload
  of that invoice, as for the drop zone.
- A replay (an InstanceIdentifier registered before) changes nothing and says so.
- No organization has the receiver's id: the message is recorded `unknown_receiver` without an
  organization, the document held in the row, and the caller told; receiving it again once an
  organization has that id (or with `organization`) registers it then, and so does `route_held`
  from the held copy once an organization has that id (`peppol route`). Nothing is lost.
- A broken envelope (not XML, no InstanceIdentifier or receiver, no invoice inside, too large) is
  `ReceiveRefused` with one sentence; nothing is recorded: the access point still has it. So is a
  receiver that is no participant id by the Peppol Policy for use of Identifiers (`check_receiver`:
  `<four-digit ICD on the EAS list>:<1 to 130 of A-Z a-z 0-9 - . _ ~>`): blanks, control or bidi
  characters, `::`, a path or 10,000 digits are no id anyone can be, and are not held as if one
  organization might become it.

Who sent it: an envelope's sender is a claim of the sending access point, and the document's
seller's electronic address (BT-34: UBL `cac:AccountingSupplierParty/cac:Party/cbc:EndpointID`,
CII `ram:SellerTradeParty/ram:URIUniversalCommunication/ram:URIID`, each with its scheme) is the
seller's. An SBDH sender that is not that address (scheme and value, the value without regard to
case, as the policy compares `iso6523-actorid-upis` ids) is IP-PEP-01, a document without one is
IP-PEP-02 (`sender_findings`): recorded with the document's findings (stage `envelope`, of the
version it is registered with) in the transaction that registers it, carried into its review
findings by the intake (`sender_doubts`, so it ends NEEDS_REVIEW, not VALIDATED), and read by
intake/domain/peppol_responses.py, which sends no Invoice Response to such a sender.

The file is archived before the transaction that records it: a crash between the two leaves an
archived file no row names, and the access point, which got no answer, sends the message again,
which writes the same file again and records it. The receiving spans organizations (a message may
belong to none yet), so it runs in system scope, as the upload sensor's listing does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import secrets
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.rules import Finding
from invoice_pipelines.core.text import terminal_text
from invoice_pipelines.db.tables import organizations, peppol_received, processing_errors
from invoice_pipelines.db.tenancy import organizations_with_participant, system_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.einvoice.peppol_ids import EAS_CODES
from invoice_pipelines.einvoice.readers.cii import CII_NS
from invoice_pipelines.einvoice.readers.cii import NAMESPACES as CII_NAMESPACES
from invoice_pipelines.einvoice.readers.ubl import NAMESPACES as UBL_NAMESPACES
from invoice_pipelines.einvoice.readers.xmlsafe import XmlRejected, parse_xml
from invoice_pipelines.einvoice.sbdh import Envelope, EnvelopeError, open_envelope, participant
from invoice_pipelines.intake.domain.incoming_invoices import NewUpload, register_uploads
from invoice_pipelines.resources.files.uploads import ARCHIVE, Uploads, limit_or_setting

if TYPE_CHECKING:
    from invoice_pipelines.einvoice.read import ParseOutcome

CREATED_BY = "peppol"
# what one call did
REGISTERED = "registered"  # a new upload and incoming invoice of the organization
DUPLICATE = "duplicate"  # registered, the same bytes as an earlier document: a duplicate upload
REPLAY = "replay"  # this InstanceIdentifier was registered before: nothing new
UNKNOWN_RECEIVER = "unknown_receiver"  # recorded and held, handed to no organization
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

# the findings on who sent a received document, recorded with it (module docstring)
# (stage "peppol" is OpenPEPPOL's rules')
STAGE = "envelope"
SENDER_NOT_SELLER = "IP-PEP-01"
NO_SELLER_ADDRESS = "IP-PEP-02"
SENDER_RULES = (SENDER_NOT_SELLER, NO_SELLER_ADDRESS)
# Peppol Policy for use of Identifiers (4.x), POLICY 1: a participant id's value is the ICD, a
# colon and 1 to 130 characters of these (135 in all), compared without regard to case
_ICD = frozenset(EAS_CODES)
_ID_CHARACTERS = re.compile(r"[A-Za-z0-9._~-]+")
MAX_ID_CHARS = 130
_SELLER_ADDRESS = {
    "ubl": "cac:AccountingSupplierParty/cac:Party/cbc:EndpointID",
    "cii": "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/"
    "ram:SellerTradeParty/ram:URIUniversalCommunication/ram:URIID",
}


class ReceiveRefused(ValueError):
    """The document cannot be received (a broken envelope, a receiver two organizations claim,
    `--org` contradicting the receiver); nothing was recorded. The message is one sentence."""


class ReceiverClaimedTwice(ReceiveRefused):
    """Two organizations have the receiver's participant id: our records' fault, not the
    document's (the HTTP receiver asks the access point to send it again later)."""


@dataclass(frozen=True)
class Received:
    """What `receive_peppol` did with one message."""

    outcome: str  # REGISTERED, DUPLICATE, REPLAY or UNKNOWN_RECEIVER
    instance_identifier: str
    message_id: int  # the peppol_received row
    receiver: str | None
    organization: str | None  # the receiving organization's slug
    document_id: int | None  # its incoming invoice
    message: str

    def to_json_dict(self) -> dict:
        return asdict(self)


def received_filename(key: str, root: str) -> str:
    """The upload's file name: where it came from and its message id, readable in every list."""
    return f"peppol-{root.lower()}-{_UNSAFE.sub('_', key)[:120]}.xml"


def _shown(text: str, limit: int = 60) -> str:
    """A stated id as a sentence may quote it: bounded, control and bidi characters escaped."""
    cut = text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
    return f"'{terminal_text(cut)}'"


def receiver_problem(receiver: str) -> str | None:
    """Why `receiver` (as the envelope states it, its `iso6523-actorid-upis::` prefix taken off) is
    no participant id by the Peppol Policy for use of Identifiers, or None when it is one."""
    scheme, colon, value = receiver.partition(":")
    if not colon or not re.fullmatch(r"[0-9]{4}", scheme):
        return "a participant id is a four-digit ICD, a colon and the id (e.g. 0088:4035811991021)"
    if scheme not in _ICD:
        return f"the ICD {scheme} is not on the Peppol code list (EAS, PEPPOL-EN16931-CL008)"
    if not value:
        return "the id after the ICD is empty"
    if len(value) > MAX_ID_CHARS:
        return f"the id after the ICD is {len(value)} characters long; at most {MAX_ID_CHARS}"
    if not _ID_CHARACTERS.fullmatch(value):
        return (
            "the id after the ICD may hold only letters A-Z and a-z, digits and - . _ ~ (no "
            "blanks, colons, slashes, control or bidi characters)"
        )
    return None


def check_receiver(receiver: str | None) -> None:
    """ReceiveRefused when the envelope's receiver is stated but no participant id; an absent one
    (a bare document without a buyer's electronic address) is held as before."""
    if receiver is None:
        return
    problem = receiver_problem(receiver)
    if problem is not None:
        raise ReceiveRefused(
            f"the receiver {_shown(receiver)} is no Peppol participant id: {problem} (Peppol "
            "Policy for use of Identifiers); nothing was recorded"
        )


def same_participant(one: str | None, other: str | None) -> bool:
    """Whether two stated participant ids (with or without the `iso6523-actorid-upis::` prefix)
    are one: the same ICD and the same value without regard to (ASCII) case, as the policy
    compares `iso6523-actorid-upis` ids. An absent or schemeless one is no one's."""
    one, other = participant(one), participant(other)
    if one is None or other is None:
        return False
    (scheme, colon, value), (other_scheme, other_colon, other_value) = (
        one.partition(":"),
        other.partition(":"),
    )
    if not (colon and other_colon and value and scheme == other_scheme):
        return False
    if value.isascii() and other_value.isascii():
        return value.lower() == other_value.lower()
    return value == other_value


def seller_address(document: bytes) -> str | None:
    """The seller's electronic address (BT-34) of a UBL or CII document as `<scheme>:<value>`
    (the value alone where it names no scheme), or None where it names none or cannot be read."""
    try:
        safe = parse_xml(document, max_bytes=len(document) + 1)
    except XmlRejected:
        return None
    cii = safe.namespace == CII_NS
    node = safe.root.find(
        _SELLER_ADDRESS["cii" if cii else "ubl"], CII_NAMESPACES if cii else UBL_NAMESPACES
    )
    if node is None or not (node.text or "").strip():
        return None
    value, scheme = node.text.strip(), (node.get("schemeID") or "").strip()
    return f"{scheme}:{value}" if scheme else value


def sender_findings(envelope: Envelope) -> list[Finding]:
    """IP-PEP-01 when the SBDH's sender is not the document's seller's electronic address,
    IP-PEP-02 when the document names none; nothing for a bare document (its sender is that
    address) or a sender that is the seller."""
    if not envelope.wrapped:
        return []
    seller, sender = seller_address(envelope.document), envelope.sender
    if seller is None:
        return [
            Finding(
                NO_SELLER_ADDRESS,
                f"the document names no seller electronic address (BT-34, EndpointID with its "
                f"scheme): the Peppol envelope's sender {_shown(sender or '(none)')} cannot be "
                "checked against the seller; confirm it only if that sender is the seller",
                "warning",
                STAGE,
            )
        ]
    if same_participant(sender, seller):
        return []
    return [
        Finding(
            SENDER_NOT_SELLER,
            f"the Peppol envelope's sender {_shown(sender or '(none)')} is not the seller's "
            f"electronic address {_shown(seller)} (BT-34): the document may not come from its "
            "seller; confirm it only if that sender sends for the seller",
            "warning",
            STAGE,
        )
    ]


def _record_findings(
    conn: Connection, organization_id: int, document_id: int, findings: list[Finding]
) -> None:
    """The findings of a newly registered document, of the version it is registered with (0):
    what `incoming show` lists before the intake reads it, and what the intake carries on."""
    if findings:
        conn.execute(
            processing_errors.insert(),
            [
                {
                    "organization_id": organization_id,
                    "incoming_invoice_id": document_id,
                    "processing_version": 0,
                    "stage": f.stage,
                    "rule_id": f.rule,
                    "severity": f.severity,
                    "message": f.message,
                }
                for f in findings
            ],
        )


def sender_doubts(conn: Connection, outcomes: dict[int, ParseOutcome]) -> dict[int, ParseOutcome]:
    """The intake's hook (intake/domain/pipeline.py): each read document's outcome with the findings its
    Peppol receipt recorded (IP-PEP-01/02, not resolved) among its review findings, so that the
    decision holds it for a person; the others as they are. One query for the group."""
    read = sorted(doc_id for doc_id, outcome in outcomes.items() if outcome.invoice is not None)
    if not read:
        return outcomes
    e = processing_errors.c
    rows = conn.execute(
        select(e.incoming_invoice_id, e.rule_id, e.message)
        .where(
            e.incoming_invoice_id.in_(read),
            e.stage == STAGE,
            e.rule_id.in_(SENDER_RULES),
            e.resolved_at.is_(None),
        )
        .order_by(e.id)
    ).all()
    checked = dict(outcomes)
    for row in rows:
        outcome = checked[row.incoming_invoice_id]
        finding = Finding(row.rule_id, row.message, "warning", STAGE)
        if finding not in outcome.review:  # a retry finds the copies of earlier versions too
            checked[row.incoming_invoice_id] = dataclasses.replace(
                outcome, review=[*outcome.review, finding]
            )
    return checked


def receive_peppol(
    system: Engine,
    uploads: Uploads,
    data: bytes,
    *,
    organization: Organization | None = None,
    max_bytes: int | None = None,
) -> Received:
    """Register one forwarded document once per InstanceIdentifier and hand it to the intake of
    its receiving organization (module docstring). ReceiveRefused when it cannot be received."""
    try:
        envelope = open_envelope(data, max_bytes=limit_or_setting(max_bytes))
    except EnvelopeError as exc:
        raise ReceiveRefused(str(exc)) from None
    check_receiver(envelope.receiver)
    digest = hashlib.sha256(envelope.document).hexdigest()
    key = envelope.instance_identifier or f"sha256:{digest}"
    with system_transaction(system) as conn:
        known = _known(conn, key)
        if known is not None and known.state == REGISTERED:
            return _replay(known)
        target = _route(conn, envelope.receiver, organization)
    if target is None:
        return _hold(system, envelope, key, digest)
    return _register(system, uploads, envelope, key, digest, target)


def _known(conn: Connection, key: str):
    m, o = peppol_received.c, organizations.c
    return conn.execute(
        select(m.id, m.state, m.receiver, m.instance_identifier, m.incoming_invoice_id, o.slug)
        .select_from(peppol_received.outerjoin(organizations, o.id == m.organization_id))
        .where(m.instance_identifier == key)
    ).first()


def _replay(known) -> Received:
    return Received(
        REPLAY,
        known.instance_identifier,
        known.id,
        known.receiver,
        known.slug,
        known.incoming_invoice_id,
        f"{known.instance_identifier} was received before (incoming invoice "
        f"{known.incoming_invoice_id} of {known.slug}); nothing new is registered",
    )


def _route(
    conn: Connection, receiver: str | None, chosen: Organization | None
) -> tuple[int, str] | None:
    """The receiving organization (id, slug), or None when no organization is the receiver."""
    addressed = []
    if receiver:
        addressed = organizations_with_participant(conn, receiver)
    if len(addressed) > 1:
        slugs = ", ".join(row.slug for row in addressed)
        raise ReceiverClaimedTwice(
            f"the organizations {slugs} all have the Peppol participant id {receiver}; "
            "a participant id must be one organization's"
        )
    if chosen is None:
        return (addressed[0].id, addressed[0].slug) if addressed else None
    if addressed and addressed[0].id != chosen.id:
        raise ReceiveRefused(
            f"the document is addressed to {receiver}, the Peppol participant id of "
            f"{addressed[0].slug}, not to {chosen.slug}"
        )
    return chosen.id, chosen.slug


def _values(envelope: Envelope, digest: str) -> dict:
    return {
        "envelope": "sbdh" if envelope.wrapped else "bare",
        "sender": (envelope.sender or "")[:160] or None,
        "receiver": (envelope.receiver or "")[:160] or None,
        "document_type": (envelope.document_type or "")[:500] or None,
        "process": (envelope.process or "")[:300] or None,
        "country": (envelope.country or "")[:8] or None,
        "content_hash": digest,
        "size_bytes": len(envelope.document),
    }


def _insert(conn: Connection, key: str, values: dict) -> int | None:
    """The new message's row id, or None when the InstanceIdentifier is taken (a replay, or one
    received at the same moment by another process)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(peppol_received)
        .values(instance_identifier=key, **values)
        .on_conflict_do_nothing(index_elements=["instance_identifier"])
        .returning(peppol_received.c.id)
    )
    return conn.execute(statement).scalar()


def _hold(system: Engine, envelope: Envelope, key: str, digest: str) -> Received:
    receiver = envelope.receiver
    why = (
        f"no organization has the Peppol participant id {receiver}"
        if receiver
        else "the document names no receiver (no SBDH, no buyer EndpointID)"
    )
    with system_transaction(system, write=True) as conn:
        values = {
            **_values(envelope, digest),
            "state": UNKNOWN_RECEIVER,
            "held_document": envelope.document,
            "error": why,
        }
        message_id = _insert(conn, key, values)
        again = message_id is None
        if again:  # held before: the newest copy and reason
            message_id = conn.execute(
                update(peppol_received)
                .where(
                    peppol_received.c.instance_identifier == key,
                    peppol_received.c.state == UNKNOWN_RECEIVER,
                )
                .values(**values, updated_at=utcnow())
                .returning(peppol_received.c.id)
            ).scalar()
            if message_id is None:  # registered meanwhile by another process
                return _replay(_known(conn, key))
    before = " (received before, still held)" if again else ""
    return Received(
        UNKNOWN_RECEIVER,
        key,
        message_id,
        receiver,
        None,
        None,
        f"{why}: {key} is kept{before} and handed to no intake; receive it again once an "
        "organization has that id, or with --org",
    )


def _register(
    system: Engine,
    uploads: Uploads,
    envelope: Envelope,
    key: str,
    digest: str,
    target: tuple[int, str],
) -> Received:
    org_id, slug = target
    name = received_filename(key, envelope.root)
    storage_key = f"{slug}/{ARCHIVE}/{digest[:16]}-{name}"
    # staged under a name the upload sensor ignores, then moved where the record will say
    staged = uploads.put(slug, f".{secrets.token_hex(8)}.part", envelope.document)
    uploads.move(staged, storage_key)
    with system_transaction(system, write=True) as conn:
        values = {**_values(envelope, digest), "organization_id": org_id, "state": REGISTERED}
        message_id = _insert(conn, key, values)
        if message_id is None:  # held before: routed now (or registered meanwhile: a replay)
            message_id = conn.execute(
                update(peppol_received)
                .where(
                    peppol_received.c.instance_identifier == key,
                    peppol_received.c.state == UNKNOWN_RECEIVER,
                )
                .values(**values, held_document=None, error=None, updated_at=utcnow())
                .returning(peppol_received.c.id)
            ).scalar()
            if message_id is None:
                return _replay(_known(conn, key))
        upload = NewUpload(name, storage_key, digest, len(envelope.document), "application/xml")
        [registration] = register_uploads(
            conn, organization_id=org_id, files=[upload], created_by=CREATED_BY
        )
        # a duplicate's document was judged as it came first
        doubts = [] if registration.duplicate else sender_findings(envelope)
        _record_findings(conn, org_id, registration.document_id, doubts)
        conn.execute(
            update(peppol_received)
            .where(peppol_received.c.id == message_id)
            .values(upload_id=registration.upload_id, incoming_invoice_id=registration.document_id)
        )
    document_id = registration.document_id
    if registration.duplicate:
        return Received(
            DUPLICATE, key, message_id, envelope.receiver, slug, document_id,
            f"{key} for {slug}: the same document as incoming invoice {document_id}, received "
            "or uploaded before; recorded as a duplicate upload of it",
        )  # fmt: skip
    held = "".join(f"; it waits for a person: {f.rule} {f.message}" for f in doubts)
    return Received(
        REGISTERED, key, message_id, envelope.receiver, slug, document_id,
        f"{key} for {slug}: incoming invoice {document_id}, UPLOADED; the next intake run "
        f"reads and validates it{held}",
    )  # fmt: skip


def route_held(system: Engine, uploads: Uploads, org: Organization) -> list[Received]:
    """Register the held messages (`unknown_receiver`) whose receiver is now `org`'s
    Peppol participant id, from the copy each row holds, as if each had been received now: the
    same InstanceIdentifier, envelope fields and file, the row moved to `registered` (or a replay
    where another process routed it first). ReceiveRefused when it has no participant id or
    shares it with another one."""
    participant = org.peppol_participant
    if not participant:
        raise ReceiveRefused(
            f"{org.slug} has no Peppol participant id; held messages are routed by the id "
            "they are addressed to"
        )
    m = peppol_received.c
    with system_transaction(system) as conn:
        target = _route(conn, participant, None)
        held = conn.execute(
            select(
                m.instance_identifier, m.held_document, m.envelope, m.sender, m.receiver,
                m.document_type, m.process, m.country, m.content_hash,
            )
            .where(m.state == UNKNOWN_RECEIVER, func.lower(m.receiver) == participant.lower())
            .order_by(m.id)
        ).all()  # fmt: skip
    routed = []
    for row in held:
        # the held copy is the document out of its envelope, as it was received (within the
        # upload limit of that day)
        document = open_envelope(row.held_document, max_bytes=len(row.held_document))
        envelope = replace(
            document,
            wrapped=row.envelope == "sbdh",
            instance_identifier=row.instance_identifier,
            sender=row.sender,
            receiver=row.receiver,
            document_type=row.document_type,
            process=row.process,
            country=row.country,
        )
        routed.append(
            _register(system, uploads, envelope, row.instance_identifier, row.content_hash, target)
        )
    return routed
