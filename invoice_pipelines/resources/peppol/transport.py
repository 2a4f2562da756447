"""Sending over Peppol through an access point with a phase4-style HTTP API (`PeppolTransport`),
and what each answer of that API means for the document (`send_outcome`, the one place that
decides it). Plain Python without Dagster: the `peppol_access_point` resource (resources/peppol/access_point.py)
configures it and hands it to a run, a command gets it without Dagster. Delivery's Peppol
channel (resources/messaging/channels.py `PeppolChannel`, delivery/domain/peppol.py) asks `lookup` before it
sends and hands each document to `send` through the outbox.

The API, as the public README and sources of phase4-peppol-standalone (phax) describe it, NOT
verified against a running access point (docs/peppol.md, "The facts and their sources"):

- sending: `POST {base_url}/sendas4/{senderId}/{receiverId}/{docTypeId}/{processId}/{countryC1}`
  with the document as the body and the token in an `X-Token` header (a missing or wrong token:
  403). The access point wraps the document in an SBDH, looks the receiver up in the SMP, sends
  the AS4 message and answers 200 with a JSON sending report: `as4MessageId`,
  `sbdhInstanceIdentifier`, `sendingResult` (`SUCCESS`, `AS4_ERROR_MESSAGE_RECEIVED`, ...),
  `sendingSuccess`, `overallSuccess`, `as4ResponseErrors` (the receiver's errors). The ids go into
  the path with their scheme (`iso6523-actorid-upis::0208:0123456749`, `busdox-docid-qns::...`),
  percent-encoded.
- looking a receiver up: phase4-peppol-standalone has no such endpoint (it looks up inside
  `sendas4`). OUR ASSUMPTION, the shape our stand-in answers and an access point in front of an
  SMP client would need to offer: `GET {base_url}/lookup/{participantId}` with the same token
  answers 200 with `{"participantId": ..., "services": [{"docTypeId": ..., "processIds":
  [...]}]}` (the participant's SMP service group resolved into its document types and processes),
  404 when the participant is not registered in the SMP.

A send's answer is sorted by whether the document may have reached the receiver's access point,
because a document that reached it goes to the customer whatever we do next (as for SMS and
WhatsApp, `resources/messaging/text_messages.py`):

- accepted: a sending report that says so, with the AS4 message id;
- rejected (for good): the token refused (401, 403), the request refused (any other 4xx, a 3xx),
  a report that the receiver's access point answered an AS4 error, or that nothing was sent
  (the SMP knows no such receiver or document type, invalid parameters, configuration);
- retryable (nothing left us): no connection was made (refused, no such host, connect timeout),
  a 429, a 408, a 503 that says when to come back (Retry-After);
- unknown (never resent on its own, see `invoice_pipelines.outbox`): the connection broke or timed
  out after the request was on its way, any other 5xx (phase4 sends the AS4 message inside the
  request, so its 500 may follow a message that went out; a gateway's 502/504 may follow one
  too), a 2xx that is not a sending report, a report of a transport error or of a missing or
  invalid receipt (the receiver may hold the document).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from urllib.parse import quote

import requests

from invoice_pipelines.resources.http_faults import never_connected
from invoice_pipelines.resources.messaging.mail_types import SendError
from invoice_pipelines.settings import NOW, Reading

PARTICIPANT_SCHEME = "iso6523-actorid-upis"
# Peppol BIS Billing 3.0's document types and process (Peppol's code lists; the sending report
# examples of phase4-peppol-standalone carry the same)
INVOICE_DOC_TYPE = (
    "busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice"
    "##urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1"
)
CREDIT_NOTE_DOC_TYPE = (
    "busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2::CreditNote"
    "##urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1"
)
BILLING_PROCESS = "cenbii-procid-ubl::urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
# Peppol BIS Invoice Response 3.0's document type and process (the answer to a received invoice)
INVOICE_RESPONSE_DOC_TYPE = (
    "busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:ApplicationResponse-2::"
    "ApplicationResponse##urn:fdc:peppol.eu:poacc:trns:invoice_response:3::2.1"
)
INVOICE_RESPONSE_PROCESS = "cenbii-procid-ubl::urn:fdc:peppol.eu:poacc:bis:invoice_response:3"

# sendingResult values after which the receiver's access point may hold the document
_MAYBE_DELIVERED = frozenset(
    {"TRANSPORT_ERROR", "NO_SIGNAL_MESSAGE_RECEIVED", "INVALID_SIGNAL_MESSAGE_RECEIVED"}
)
# sendingResult values that say nothing went out, or that the receiver answered with an error
_NOT_DELIVERED = frozenset(
    {"AS4_ERROR_MESSAGE_RECEIVED", "INVALID_PARAMETERS", "CONFIGURATION_ERROR"}
)


class Outcome(enum.Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    RETRYABLE = "retryable"
    UNKNOWN = "unknown"


class Reach(enum.Enum):
    """What the SMP says about a receiver and one document type."""

    ACCEPTS = "accepts"  # registered, with this document type and process
    NOT_THIS_DOCUMENT = "not_this_document"  # registered, but not for this document type
    NOT_ON_PEPPOL = "not_on_peppol"  # not registered in the SMP


@dataclass(frozen=True)
class Sending:
    """One send's outcome. `message_id`: the AS4 message id, where the access point named one
    (also on a rejection or an unknown outcome that came with a report)."""

    outcome: Outcome
    reason: str = ""
    message_id: str | None = None
    sbdh_instance_id: str | None = None
    status: int | None = None

    def as_send_error(self) -> SendError | None:
        """The outbox's terms (`SendError`) for anything but accepted, None for accepted."""
        if self.outcome is Outcome.ACCEPTED:
            return None
        return SendError(
            self.reason,
            temporary=self.outcome is Outcome.RETRYABLE,
            code=self.status,
            unknown=self.outcome is Outcome.UNKNOWN,
        )


class PeppolLookupError(RuntimeError):
    """A lookup that got no answer about the receiver. `temporary`: asking again may help (the
    access point was unreachable or busy); otherwise a configuration to fix (token, URL)."""

    def __init__(self, message: str, *, temporary: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.temporary = temporary
        self.status = status


@dataclass(frozen=True, kw_only=True)
class PeppolTransport:
    """An access point's HTTP API: INVOICE_PIPELINES_PEPPOL_AP_* (`peppol_transport`)."""

    base_url: str = field(
        default="http://127.0.0.1:8034",
        metadata={"description": "The access point's API root (INVOICE_PIPELINES_PEPPOL_AP_URL)"},
    )
    token: str = field(
        default="local-token",
        repr=False,
        metadata={"description": "API token, sent as X-Token (INVOICE_PIPELINES_PEPPOL_AP_TOKEN)"},
    )
    connect_timeout_seconds: float = field(
        default=5.0, metadata={"description": "Time limit to connect"}
    )
    # sending waits for the SMP lookup, the AS4 exchange and the receipt inside one request
    timeout_seconds: float = field(
        default=60.0,
        metadata={"description": "Time limit per request (a send waits for the AS4 receipt)"},
    )

    def session(self) -> requests.Session:
        session = requests.Session()
        session.headers["X-Token"] = self.token
        return session

    def lookup(
        self,
        session: requests.Session,
        receiver_id: str,
        doc_type_id: str = INVOICE_DOC_TYPE,
        process_id: str = BILLING_PROCESS,
    ) -> Reach:
        """Whether the receiver takes this document type and process over Peppol, or
        PeppolLookupError (the endpoint's shape is an assumption: see the module)."""
        receiver = participant(receiver_id)
        url = f"{self._root()}/lookup/{_segment(receiver)}"
        try:
            response = session.get(
                url, timeout=(self.connect_timeout_seconds, self.timeout_seconds)
            )
        except requests.RequestException as exc:  # a read: asking again sends nothing
            raise PeppolLookupError(
                f"the access point's lookup failed: {exc}", temporary=True
            ) from exc
        status = response.status_code
        if status == 404:
            return Reach.NOT_ON_PEPPOL
        if status != 200:
            raise PeppolLookupError(
                f"the access point's lookup of {receiver} answered {status} ({_excerpt(response)})",
                temporary=status in (408, 429) or status >= 500,
                status=status,
            )
        try:
            services = response.json().get("services") or []
            offered = {
                (str(s["docTypeId"]).lower(), str(p).lower())
                for s in services
                for p in s.get("processIds") or []
            }
        except (ValueError, AttributeError, KeyError, TypeError) as exc:
            raise PeppolLookupError(
                f"the access point's lookup of {receiver} answered 200 without its capabilities "
                f"({_excerpt(response)})",
                temporary=False,
                status=status,
            ) from exc
        # Peppol's identifier schemes named here compare case-insensitively
        if (doc_type_id.lower(), process_id.lower()) in offered:
            return Reach.ACCEPTS
        return Reach.NOT_THIS_DOCUMENT

    def send(
        self,
        session: requests.Session,
        *,
        sender_id: str,
        receiver_id: str,
        document: bytes,
        country: str,
        doc_type_id: str = INVOICE_DOC_TYPE,
        process_id: str = BILLING_PROCESS,
    ) -> Sending:
        """Hand one document to the access point; its outcome (see the module). Never raises
        for an answer or a broken connection: the outcome says what happened."""
        path = "/".join(
            _segment(part)
            for part in (
                participant(sender_id),
                participant(receiver_id),
                doc_type_id,
                process_id,
                country.upper(),
            )
        )
        try:
            # a redirect is an answer of its own: re-posting elsewhere could send twice
            response = session.post(
                f"{self._root()}/sendas4/{path}",
                data=document,
                headers={"Content-Type": "application/xml"},
                timeout=(self.connect_timeout_seconds, self.timeout_seconds),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            return _broken(exc)
        return send_outcome(response)

    def _root(self) -> str:
        return self.base_url.rstrip("/")


def participant(value: str) -> str:
    """A participant id with its scheme: `0208:0123456749` -> `iso6523-actorid-upis::0208:...`."""
    value = value.strip()
    if "::" in value:
        return value
    return f"{PARTICIPANT_SCHEME}::{value}"


def send_outcome(response: requests.Response) -> Sending:
    """What the access point's answer to `sendas4` means for the document (see the module)."""
    status = response.status_code
    if 200 <= status < 300:
        return _report_outcome(response)
    detail = _excerpt(response)
    if status in (401, 403):
        return Sending(
            Outcome.REJECTED,
            f"the access point refused the token ({status}); check INVOICE_PIPELINES_PEPPOL_AP_TOKEN",
            status=status,
        )
    if status in (408, 429) or (status == 503 and response.headers.get("Retry-After")):
        return Sending(
            Outcome.RETRYABLE,
            f"the access point turned the document away for now: {status} {detail}",
            status=status,
        )
    if status >= 500:
        return Sending(
            Outcome.UNKNOWN,
            f"the access point answered {status} ({detail}) after the document reached it: "
            "it may have sent it",
            status=status,
        )
    if 300 <= status < 400:
        return Sending(
            Outcome.REJECTED,
            f"the access point answered {status} (a redirect to "
            f"{response.headers.get('Location', 'nowhere')!r}); check INVOICE_PIPELINES_PEPPOL_AP_URL",
            status=status,
        )
    return Sending(
        Outcome.REJECTED, f"the access point refused the document: {status} {detail}", status=status
    )


def _report_outcome(response: requests.Response) -> Sending:
    status = response.status_code
    try:
        report = response.json()
    except ValueError:
        report = None
    if not isinstance(report, dict) or not any(
        key in report for key in ("sendingSuccess", "overallSuccess", "sendingResult")
    ):
        return Sending(
            Outcome.UNKNOWN,
            f"the access point answered {status} without a sending report ({_excerpt(response)}): "
            "it may have sent the document",
            status=status,
        )
    message_id = report.get("as4MessageId") or None
    instance = report.get("sbdhInstanceIdentifier") or None
    result = str(report.get("sendingResult") or "")
    ids = {"message_id": message_id, "sbdh_instance_id": instance, "status": status}
    if report.get("sendingSuccess") is True and result in ("", "SUCCESS"):
        if message_id:
            return Sending(Outcome.ACCEPTED, "sent", **ids)
        return Sending(
            Outcome.UNKNOWN, "the access point reported success without an AS4 message id", **ids
        )
    errors = "; ".join(
        " ".join(str(e.get(k) or "") for k in ("errorCode", "description", "errorDetails")).strip()
        for e in report.get("as4ResponseErrors") or []
        if isinstance(e, dict)
    )
    said = f"{result or 'not sent'}{': ' + errors if errors else ''}"
    if result in _MAYBE_DELIVERED or (result and result not in _NOT_DELIVERED):
        return Sending(
            Outcome.UNKNOWN, f"the access point reported {said}: the receiver may hold it", **ids
        )
    if not result and report.get("errorMessage"):
        said = f"not sent: {report['errorMessage']}"
    return Sending(Outcome.REJECTED, f"the access point reported {said}", **ids)


def _broken(exc: requests.RequestException) -> Sending:
    """A request that got no answer: retryable when no connection was made, else unknown."""
    if never_connected(exc):
        return Sending(Outcome.RETRYABLE, f"cannot reach the access point: {exc}")
    if isinstance(exc, requests.Timeout):
        return Sending(
            Outcome.UNKNOWN, f"the access point did not answer in time: {exc}: it may have sent it"
        )
    return Sending(
        Outcome.UNKNOWN, f"the request to the access point broke: {exc}: it may have sent it"
    )


def _segment(value: str) -> str:
    """One path segment: `#`, `:` and `/` of a Peppol id percent-encoded."""
    return quote(value, safe="")


def _excerpt(response: requests.Response) -> str:
    try:
        detail = response.json()
    except ValueError:
        detail = None
    if isinstance(detail, dict):
        for key in ("errorMessage", "message", "error"):
            if detail.get(key):
                return str(detail[key])[:200]
    text = " ".join(response.text[:200].split())
    return text or "no body"


def peppol_transport(read: Reading = NOW) -> PeppolTransport:
    """The access point INVOICE_PIPELINES_PEPPOL_AP_* configure: the one builder of the
    `peppol_access_point` resource (resources/area.py). A command sends through it (the token
    read now); a run's resource wraps it (`resources.peppol.access_point.PeppolAccessPoint.of`, the token an
    EnvVar)."""

    return PeppolTransport(
        base_url=read.value("INVOICE_PIPELINES_PEPPOL_AP_URL"),
        token=read.secret("INVOICE_PIPELINES_PEPPOL_AP_TOKEN"),
    )
