"""Typed QuickBooks Online errors, read from QBO's JSON and XML fault bodies.

QBO answers faults as `{"Fault": {"Error": [{"Message", "Detail", "code", "element"}], "type"}}`,
the 401 with lower-case keys (`{"fault": {"error": [...]}}`), and throttling sometimes as XML even
when JSON was asked for. Every shape becomes one `QboError` subclass carrying the QBO code, so the
sync decides on `isinstance`, never on message text.
"""

from __future__ import annotations

import json
import re
from xml.etree import ElementTree


class QboError(Exception):
    """A fault QBO returned (or a transport problem talking to it)."""

    code: str = ""

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        detail: str = "",
        status: int | None = None,
        fault_type: str = "",
        element: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.detail = detail
        self.status = status
        self.fault_type = fault_type
        self.element = element

    def __str__(self) -> str:
        parts = [f"QBO {self.code}" if self.code else "QBO", self.message]
        if self.detail and self.detail != self.message:
            parts.append(f"({self.detail})")
        return " ".join(p for p in parts if p)

    @property
    def temporary(self) -> bool:
        """Worth retrying the same request later (throttling, server trouble)."""
        return False


class StaleObject(QboError):
    """5010: the SyncToken we sent is not the current one (someone changed the record)."""

    code = "5010"


class DuplicateName(QboError):
    """6240: DisplayName/Name already used by another customer, vendor, employee or item."""

    code = "6240"


class DuplicateDocNumber(QboError):
    """6140: an invoice with this DocNumber exists; `existing_id` is its TxnId when QBO names it."""

    code = "6140"

    @property
    def existing_id(self) -> str | None:
        match = re.search(r"TxnId=(\d+)", f"{self.message} {self.detail}")
        return match.group(1) if match else None


class ObjectNotFound(QboError):
    """610: the object (or one it refers to) does not exist or is inactive."""

    code = "610"


class InvalidReference(QboError):
    """2500: a reference id that QBO does not know."""

    code = "2500"


class AuthenticationFailed(QboError):
    """3200 (HTTP 401): the access token expired or was revoked."""

    code = "3200"


class BusinessValidation(QboError):
    """6000: a business rule refused the request (e.g. an invoice without lines, over-payment)."""

    code = "6000"


class QueryParseError(QboError):
    """4000: the query did not parse (our bug, never retried)."""

    code = "4000"


class Throttled(QboError):
    """3001 / HTTP 429: over a rate limit; `retry_after` seconds when the server said so."""

    code = "3001"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    @property
    def temporary(self) -> bool:
        return True


class ServerError(QboError):
    """HTTP 5xx or code 10000: QBO had trouble; the same request may succeed later."""

    @property
    def temporary(self) -> bool:
        return True


class TransportError(QboError):
    """The request may or may not have reached QBO (timeout, dropped connection).

    `sent` is False only when the connection was never made, so the request surely did nothing.
    """

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent

    @property
    def temporary(self) -> bool:
        return True


class TokenError(QboError):
    """The OAuth token endpoint refused (invalid_grant: the refresh token is used, expired or
    revoked; invalid_client: wrong client id/secret). A person must reconnect the company."""


class NotConnected(QboError):
    """The organization has no QuickBooks connection (or it was revoked)."""


class RealmInUse(QboError):
    """The QBO company is connected to another organization already: a company's books are one
    organization's (its webhooks name the realm alone, QBO's request limits are the realm's)."""


class BadRealmId(ValueError):
    """A QBO company id (realmId) not in Intuit's form (quickbooks/domain/company.py `REALM_ID`)."""


_BY_CODE: dict[str, type[QboError]] = {
    cls.code: cls
    for cls in (
        StaleObject,
        DuplicateName,
        DuplicateDocNumber,
        ObjectNotFound,
        InvalidReference,
        AuthenticationFailed,
        BusinessValidation,
        QueryParseError,
        Throttled,
    )
}


def _normalize_code(raw: str) -> str:
    """QBO writes codes as "5010" or zero-padded inside messages ("errorCode=003200")."""
    raw = str(raw or "").strip()
    return raw.lstrip("0") or raw


def _first_error_json(body: dict) -> tuple[dict, str] | None:
    fault = body.get("Fault") or body.get("fault")
    if not isinstance(fault, dict):
        return None
    errors = fault.get("Error") or fault.get("error") or []
    first = errors[0] if errors else {}
    lowered = {str(k).lower(): v for k, v in first.items()}
    return lowered, str(fault.get("type") or "")


def _first_error_xml(text: str) -> tuple[dict, str] | None:
    try:
        root = ElementTree.fromstring(text.encode() if isinstance(text, str) else text)
    except ElementTree.ParseError:
        return None
    for element in root.iter():
        if element.tag.split("}")[-1] == "Fault":
            error = next((e for e in element if e.tag.split("}")[-1] == "Error"), None)
            values: dict = {}
            if error is not None:
                values["code"] = error.get("code", "")
                values["element"] = error.get("element", "")
                for child in error:
                    values[child.tag.split("}")[-1].lower()] = (child.text or "").strip()
            return values, element.get("type", "")
    return None


def fault_from_dict(
    fault_body: dict, *, status: int | None = None, retry_after: float | None = None
) -> QboError | None:
    """The typed error of a JSON body that holds a Fault (top level or a batch item), else None."""
    found = _first_error_json(fault_body)
    if found is None:
        return None
    return _build(*found, status=status, retry_after=retry_after)


def _build(
    values: dict, fault_type: str, *, status: int | None, retry_after: float | None
) -> QboError:
    message = str(values.get("message") or "").strip()
    detail = str(values.get("detail") or "").strip()
    code = _normalize_code(values.get("code", ""))
    if not code:
        match = re.search(r"errorCode=0*(\d+)", message)
        code = match.group(1) if match else ""
    kwargs = dict(
        code=code,
        detail=detail,
        status=status,
        fault_type=fault_type,
        element=str(values.get("element") or ""),
    )
    if code == "3001" or status == 429:
        return Throttled(message or "ThrottleExceeded", retry_after=retry_after, **kwargs)
    cls = _BY_CODE.get(code)
    if cls is None and status == 401:
        cls = AuthenticationFailed
    if cls is None and (code == "10000" or (status or 0) >= 500):
        cls = ServerError
    return (cls or QboError)(message or f"HTTP {status}", **kwargs)


def error_from_response(
    status: int, content_type: str, text: str, *, retry_after: float | None = None
) -> QboError:
    """The typed error for a non-2xx answer, whatever its body (JSON, XML, HTML, empty)."""
    found = None
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            found = _first_error_json(json.loads(stripped))
        except ValueError:
            found = None
    elif stripped.startswith("<"):
        found = _first_error_xml(stripped)
    if found is None:
        found = ({"message": f"HTTP {status}: {stripped[:200]}".strip()}, "")
    return _build(*found, status=status, retry_after=retry_after)
