"""What goes over the wire: JSON with exact decimal amounts, company-local timestamps, and QBO's
fault bodies in their JSON (both key spellings) and XML forms."""

from __future__ import annotations

import json
import re
import uuid
import xml.etree.ElementTree as ET  # noqa: N817 - the usual name
import zlib
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from xml.sax.saxutils import escape, quoteattr

# Decimals are written as JSON numbers without ever passing through float: each one is first
# written as a string carrying this process-wide marker, which is then unquoted.
_MARK = f"dec{uuid.uuid4().hex[:12]}:"
_MARKED = re.compile(r'"' + _MARK + r'(-?[0-9.E+-]+)"')


def _mark(value: object) -> object:
    if isinstance(value, Decimal):
        return _MARK + format(value, "f")
    if isinstance(value, dict):
        return {key: _mark(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_mark(item) for item in value]
    return value


def dumps(value: object) -> bytes:
    """JSON bytes; Decimal amounts become plain JSON numbers with their exact digits."""
    text = json.dumps(_mark(value), ensure_ascii=False, separators=(",", ":"))
    return _MARKED.sub(r"\1", text).encode()


def loads(body: bytes | str) -> object:
    """JSON with every non-integer number read as Decimal."""
    return json.loads(body, parse_float=Decimal)


# The largest request body the simulator reads, as sent and once inflated. QBO's own limit on a
# request is far below this (a batch holds at most 30 items); without a bound a 0.5 MB gzip body
# inflated to 1.1 GB before the request was even authenticated.
MAX_REQUEST_BYTES = 10 * 1024 * 1024


class BodyTooLarge(ValueError):
    """A request body over MAX_REQUEST_BYTES, as sent or inflated: answered 413."""


def decode_body(
    body: bytes, content_encoding: str | None, *, max_bytes: int = MAX_REQUEST_BYTES
) -> bytes:
    """A request body as sent with `Content-Encoding` gzip or deflate (the default of Intuit's Java
    and .NET SDKs) or none; ValueError when it does not decompress, BodyTooLarge (a ValueError)
    as soon as it inflates past `max_bytes`, never inflated further."""
    encoding = (content_encoding or "").strip().lower()
    if not body or encoding in ("", "identity"):
        return body
    try:
        if encoding in ("gzip", "x-gzip"):
            return _inflate(body, 16 + zlib.MAX_WBITS, max_bytes, members=True)
        if encoding == "deflate":
            try:
                return _inflate(body, zlib.MAX_WBITS, max_bytes)
            except zlib.error:  # raw deflate without the zlib header, as some clients send it
                return _inflate(body, -zlib.MAX_WBITS, max_bytes)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"the request body is not valid {encoding} data ({exc})") from None
    raise ValueError(f"Content-Encoding {content_encoding!r} is not supported")


def _inflate(data: bytes, wbits: int, max_bytes: int, *, members: bool = False) -> bytes:
    """Inflate at most `max_bytes` + 1 bytes; gzip's concatenated members one after another."""
    out = bytearray()
    while data:
        inflater = zlib.decompressobj(wbits)
        out += inflater.decompress(data, max_bytes + 1 - len(out))
        if len(out) > max_bytes or inflater.unconsumed_tail:
            raise BodyTooLarge(f"the request body inflates to more than {max_bytes} bytes")
        if not inflater.eof:
            raise EOFError("the compressed data ends early")
        data = inflater.unused_data if members else b""
        if data.strip(b"\0") == b"":  # gzip's trailing zero padding
            break
    return bytes(out)


# Customer tax registration numbers: PrimaryTaxIdentifier ("Tax Reg. No", minor version 4) exists
# in the UK, Canadian, Australian and Indian editions, SecondaryTaxIdentifier in the UK and Indian
# ones; QBO answers both masked, all but the last five characters as X (Intuit's Customer reference)
TAX_ID_REGIONS = {"PrimaryTaxIdentifier": ("GB", "UK", "CA", "AU", "IN")}
TAX_ID_REGIONS["SecondaryTaxIdentifier"] = ("GB", "UK", "IN")


def mask_tax_id(value: object) -> str:
    text = str(value)
    return "X" * max(0, len(text) - 5) + text[-5:]


def mask_tax_ids(record: dict) -> None:
    for name in TAX_ID_REGIONS:
        if record.get(name):
            record[name] = mask_tax_id(record[name])


def keep_tax_ids(data: dict, stored: dict | None, country: str) -> None:
    """A customer's tax ids as QBO keeps them from a write: dropped where the company's edition
    has no such field; the masked value a client read and sent back keeps the stored one."""
    for name, regions in TAX_ID_REGIONS.items():
        if name not in data:
            continue
        if str(country).upper() not in regions:
            del data[name]
            continue
        before = (stored or {}).get(name)
        if before and data[name] == mask_tax_id(before):
            data[name] = before


def to_decimal(value: object) -> Decimal | None:
    """An amount as the clients send it (number or numeric string; python-quickbooks sends
    strings), or None when it is not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def parse_offset(text: str) -> timezone:
    """'-07:00' -> a fixed offset timezone."""
    match = re.fullmatch(r"([+-])(\d{2}):(\d{2})", text.strip())
    if not match:
        raise ValueError(f"time zone offset {text!r} is not of the form +HH:MM or -HH:MM")
    sign = -1 if match[1] == "-" else 1
    return timezone(sign * timedelta(hours=int(match[2]), minutes=int(match[3])))


def local_time(epoch: float, tz: timezone) -> str:
    """A record timestamp as QBO writes it: company-local with offset, whole seconds."""
    return datetime.fromtimestamp(int(epoch), tz).isoformat(timespec="seconds")


def response_time(epoch: float, tz: timezone) -> str:
    """The top-level "time" of a response: company-local with milliseconds."""
    return datetime.fromtimestamp(epoch, tz).isoformat(timespec="milliseconds")


def local_date(epoch: float, tz: timezone) -> str:
    return datetime.fromtimestamp(epoch, tz).date().isoformat()


def parse_instant(text: str, tz: timezone) -> float | None:
    """Epoch seconds of an ISO date or datetime; one without an offset is company-local time."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.timestamp()


def utc_now_epoch() -> float:
    return datetime.now(UTC).timestamp()


class Fault(Exception):
    """One QBO error as the API reports it: HTTP status, code, message, detail and fault type."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        detail: str = "",
        fault_type: str = "ValidationFault",
        element: str = "",
    ) -> None:
        super().__init__(f"{code} {message}: {detail}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.fault_type = fault_type
        self.element = element

    def fault(self) -> dict:
        """The "Fault" object (upper-case keys) as in a response body or a batch item."""
        error = {"Message": self.message, "Detail": self.detail, "code": self.code}
        error["element"] = self.element
        return {"Error": [error], "type": self.fault_type}


def fault_json(fault: Fault, time: str) -> bytes:
    if fault.status == 401:
        # QBO writes its authentication faults with lower-case keys
        return dumps(
            {
                "warnings": None,
                "intuitObject": None,
                "fault": {
                    "error": [
                        {
                            "message": fault.message,
                            "detail": fault.detail,
                            "code": fault.code,
                            "element": None,
                        }
                    ],
                    "type": fault.fault_type,
                },
                "report": None,
                "queryResponse": None,
                "batchItemResponse": [],
                "attachableResponse": [],
                "syncErrorResponse": None,
                "requestId": None,
                "time": time,
                "status": None,
                "cdcresponse": [],
            }
        )
    return dumps({"Fault": fault.fault(), "time": time})


def fault_xml(fault: Fault, time: str) -> bytes:
    element = f" element={quoteattr(fault.element)}" if fault.element else ""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time={quoteattr(time)}>'
        f"<Fault type={quoteattr(fault.fault_type)}>"
        f"<Error code={quoteattr(fault.code)}{element}>"
        f"<Message>{escape(fault.message)}</Message><Detail>{escape(fault.detail)}</Detail>"
        "</Error></Fault></IntuitResponse>"
    ).encode()


def wants_xml(accept: str | None) -> bool:
    """QBO answers in XML unless the client asks for JSON: to `Accept: application/xml`, and also
    to no Accept or `*/*` (Intuit's PHP SDK queries with `*/*` and reads XML back, PHP SDK issue
    #287; a misspelled Accept got XML, oauth-jsclient issue #135)."""
    return "json" not in (accept or "").lower()


def effective_accept(accept: str | None, format_param: str | None) -> str | None:
    """`?format=json|xml` (node-quickbooks sends format=json) chooses the answer's format over the
    Accept header."""
    chosen = (format_param or "").strip().lower()
    if chosen in ("json", "xml"):
        return f"application/{chosen}"
    return accept


# ---- XML bodies: the same objects as the JSON ones, in QBO's XML form ---------------------------

NAMESPACE = "http://schema.intuit.com/finance/v3"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
# keys QBO writes as XML attributes: of any entity, of a QueryResponse, of batch items and faults
_ENTITY_ATTRIBUTES = ("domain", "sparse", "status")
_ATTRIBUTES_OF = {
    "QueryResponse": ("startPosition", "maxResults", "totalCount"),
    "BatchItemResponse": ("bId",),
    "BatchItemRequest": ("bId", "operation", "optionsData"),
    "Fault": ("type",),
    "Error": ("code", "element"),
}
# elements that are lists even when one is sent
_LIST_ELEMENTS = {"Line", "LinkedTxn", "BatchItemRequest", "CustomField", "TaxLine", "NameValue"}
# free text where "true" stays text
_TEXT_ELEMENTS = {
    "DisplayName",
    "Name",
    "CompanyName",
    "Description",
    "Notes",
    "PrivateNote",
    "Memo",
    "Query",
    "Line1",
    "Line2",
    "Line3",
    "City",
}


def _xml_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _is_reference(value: dict) -> bool:
    return "value" in value and set(value) <= {"value", "name", "type"}


def _append(parent: ET.Element, tag: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, list | tuple):
        for item in value:
            _append(parent, tag, item)
        return
    element = ET.SubElement(parent, tag)
    if not isinstance(value, dict):
        element.text = _xml_text(value)
        return
    if _is_reference(value):  # <CustomerRef name="Acme">1</CustomerRef>
        element.text = _xml_text(value["value"])
        for key in ("name", "type"):
            if value.get(key) not in (None, ""):
                element.set(key, _xml_text(value[key]))
        return
    attributes = _ATTRIBUTES_OF.get(tag, _ENTITY_ATTRIBUTES)
    for key, item in value.items():
        if key in attributes and not isinstance(item, dict | list):
            if item not in (None, ""):
                element.set(key, _xml_text(item))
        else:
            _append(element, key, item)


def xml_response(payload: dict) -> bytes:
    """A JSON answer (`{"Customer": {...}, "time": ...}`, a QueryResponse, a batch, CDC) as QBO
    writes it in XML: <IntuitResponse time=...> with the same elements, references as text with a
    name attribute, domain/sparse/status, startPosition/maxResults/totalCount and bId as
    attributes."""
    root = ET.Element("IntuitResponse", {"xmlns": NAMESPACE})
    if payload.get("time"):
        root.set("time", str(payload["time"]))
    for key, value in payload.items():
        if key != "time":
            _append(root, key, value)
    return (XML_DECLARATION + ET.tostring(root, encoding="unicode")).encode()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _scalar(tag: str, text: str) -> object:
    if tag not in _TEXT_ELEMENTS and text in ("true", "false"):
        return text == "true"
    return text


def _read(element: ET.Element) -> object:
    tag = _local(element.tag)
    attributes = {_local(k): v for k, v in element.attrib.items()}
    children = list(element)
    text = element.text or ""
    if not children:
        if tag.endswith("Ref") or (attributes and text.strip()):
            return {"value": text.strip(), **attributes}
        if attributes:
            return {k: _scalar(k, v) for k, v in attributes.items()}
        return _scalar(tag, text if text.strip() else "")
    out: dict = {k: _scalar(k, v) for k, v in attributes.items()}
    for child in children:
        key = _local(child.tag)
        value = _read(child)
        if key in out:
            if not isinstance(out[key], list):
                out[key] = [out[key]]
            out[key].append(value)
        else:
            out[key] = [value] if key in _LIST_ELEMENTS else value
    return out


def xml_request(body: bytes) -> dict:
    """An XML request body (quickbooks-ruby, Intuit's PHP SDK and, unconfigured, its .NET SDK send
    XML) as the JSON object it stands for: `<Customer>...</Customer>` is the Customer object,
    `<IntuitBatchRequest>` the batch; ValueError when it is not XML we read."""
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise ValueError("the XML request body declares a DTD or entities, which are not accepted")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ValueError(f"the request body is not well-formed XML ({exc})") from None
    value = _read(root)
    return value if isinstance(value, dict) else {}


# The faults the simulator raises, with QBO's codes and wording.


def stale_object() -> Fault:
    return Fault(
        400,
        "5010",
        "Stale Object Error",
        "Stale Object Error : You and QuickBooks User were working on this at the same time. "
        "QuickBooks User finished before you did, so your work was not saved.",
    )


def object_not_found(entity: str, entity_id: str) -> Fault:
    return Fault(
        400,
        "610",
        "Object Not Found",
        f"Object Not Found : Something you're trying to use has been made inactive. Check the "
        f"fields with accounts, customers, items, vendors or employees. ({entity} {entity_id})",
    )


def invalid_reference(entity: str, entity_id: str) -> Fault:
    return Fault(
        400,
        "2500",
        "Invalid Reference Id",
        f"Invalid Reference Id : {entity} assigned to this transaction has been deleted or does "
        f"not exist: {entity_id}",
    )


def duplicate_name() -> Fault:
    return Fault(
        400,
        "6240",
        "Duplicate Name Exists Error",
        "The name supplied already exists. : Another customer, vendor or employee is already "
        "using this name. Please use a different name.",
    )


_LIST_NOUNS = {"Item": "product or service", "Term": "term", "Account": "account"}


def duplicate_list_name(entity: str, name: str) -> Fault:
    """6240 for an item, term or account name (the wording for the last two assumed, after the
    item's)."""
    return Fault(
        400,
        "6240",
        "Duplicate Name Exists Error",
        f"The name supplied already exists. : Another {_LIST_NOUNS.get(entity, entity.lower())} "
        f"is already using the name {name}. Please use a different name.",
    )


def duplicate_doc_number(doc_number: str, txn_type: str, txn_id: str) -> Fault:
    return Fault(
        400,
        "6140",
        "Duplicate Document Number Error",
        f"Duplicate Document Number Error : You must specify a different number. This number has "
        f"already been used. DocNumber={doc_number} is assigned to TxnType={txn_type} with "
        f"TxnId={txn_id}",
    )


def business_validation(detail: str) -> Fault:
    return Fault(
        400,
        "6000",
        "A business validation error has occurred while processing your request",
        f"Business Validation Error: {detail}",
    )


def invalid_body(detail: str) -> Fault:
    return Fault(400, "2010", "Request has invalid or unsupported property", detail)


def check_batch_request_id(requestid: str | None, bid: str) -> None:
    """With a requestid, QBO keys each batch item by requestid + bId and faults an item whose key
    is over 50 characters (6000, seen with a 32-character requestid and UUID bIds)."""
    if requestid is None or len(requestid) + len(bid) <= 50:
        return
    key = requestid + bid
    raise business_validation(
        f"You cannot enter more than 50 characters in the request_id field. You tried entering "
        f"{key[:10]}..., which is {len(key)} characters."
    )


def required_param(name: str) -> Fault:
    return Fault(
        400,
        "2020",
        "Required param missing, need to supply the required value for the API",
        f"Required parameter {name} is missing in the request",
        element=name,
    )


def invalid_value(name: str, detail: str) -> Fault:
    return Fault(
        400,
        "2010",
        "Request has invalid or unsupported property",
        f"Property Name:{name} specified is unsupported or invalid: {detail}",
        element=name,
    )


def invalid_string(name: str, value: str) -> Fault:
    """2040: a name with a colon, tab or line break (QBO keeps the colon for "Parent:Child")."""
    return Fault(
        400,
        "2040",
        "Invalid String",
        f"The string may contain unsupported or illegal characters: {name} {value!r}",
        element=name,
    )


NAME_FORBIDDEN = (":", "\t", "\n", "\r")


def check_name_characters(name: str, value: object) -> None:
    if isinstance(value, str) and any(ch in value for ch in NAME_FORBIDDEN):
        raise invalid_string(name, value)


def unsupported_operation(detail: str) -> Fault:
    return Fault(400, "500", "Unsupported Operation", detail)


def query_parse_error(detail: str) -> Fault:
    return Fault(400, "4000", "Error parsing query", f"QueryParserError: {detail}")


def query_validation_error(detail: str) -> Fault:
    return Fault(400, "4001", "Invalid query", f"QueryValidationError: {detail}")


def authentication_failed(detail: str) -> Fault:
    return Fault(
        401,
        "3200",
        "message=AuthenticationFailed; errorCode=003200; statusCode=401",
        detail,
        fault_type="AUTHENTICATION",
    )


def authorization_failed(detail: str) -> Fault:
    return Fault(
        403,
        "3100",
        "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
        detail,
        fault_type="AUTHORIZATION",
    )


def throttled() -> Fault:
    return Fault(
        429,
        "3001",
        "message=ThrottleExceeded; errorCode=003001; statusCode=429",
        "The request limit was reached.",
        fault_type="SERVICE",
    )


def server_error(status: int) -> Fault:
    if status == 503:
        return Fault(
            503,
            "10000",
            "Service Unavailable",
            "The service is temporarily unavailable. Please retry later.",
            fault_type="SystemFault",
        )
    return Fault(
        status,
        "10000",
        "An application error has occurred while processing your request",
        "System Failure Error: An unexpected error occurred while accessing or saving your data. "
        "Please wait a few minutes and try again. If the problem persists, contact customer "
        "support.",
        fault_type="SystemFault",
    )
