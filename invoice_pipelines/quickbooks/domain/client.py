"""The QuickBooks Online Accounting API v3 client: a thin layer over httpx.

Every call carries `minorversion` (75 at least) and the access token from the `TokenStore`; a 401
refreshes once and repeats the call. Every write carries a `requestid` chosen by the caller and
deterministic per entity version, so repeating a write whose outcome is unknown (timeout, dropped
connection) replays QBO's original answer instead of writing twice; that is why writes, too, are
retried after transport errors. 429 and 5xx are retried with jittered backoff, honouring
Retry-After (60 s on a 429 without one, as Intuit asks). Requests pass the realm's rate limiter
first. Amounts travel as exact decimals both ways, never floats.

The payables (vendors, terms, accounts, bills, vendor credits, bill payments, attachments) have
typed methods on the shapes of payables.py; an attachment is uploaded as multipart/form-data to
/upload, on the same path (limiter, retries, requestid) as every other write.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

import httpx

from invoice_pipelines.quickbooks.domain.errors import (
    AuthenticationFailed,
    QboError,
    Throttled,
    TransportError,
    error_from_response,
    fault_from_dict,
)
from invoice_pipelines.quickbooks.domain.limits import (
    Clock,
    Limiter,
    Ticket,
    backoff_seconds,
    limiter_for,
)
from invoice_pipelines.quickbooks.domain.payables import (
    AccountDraft,
    AttachmentLink,
    BillDraft,
    BillPaymentDraft,
    QboAccount,
    QboAttachable,
    QboBill,
    QboBillPayment,
    QboTerm,
    QboVendor,
    QboVendorCredit,
    TermDraft,
    VendorCreditDraft,
    VendorDraft,
)

MIN_MINOR_VERSION = 75
MAX_PAGE = 1000
MAX_BATCH = 30
CDC_MAX_OBJECTS = 1000
CDC_MAX_AGE = timedelta(days=30)
THROTTLE_WAIT = 60.0
NAME_LISTS = {"Customer", "Item", "Vendor", "Employee", "Account", "TaxCode", "Term"}
T = TypeVar("T")
# characters a file name cannot carry inside a quoted multipart header value
_UNSAFE_IN_HEADER = re.compile(r'[\\"\r\n]')

_MARK = f"decimal-{uuid.uuid4().hex[:10]}:"
_MARKED = re.compile(r'"' + re.escape(_MARK) + r'(-?[0-9.]+)"')


def _with_marks(value):
    if isinstance(value, Decimal):
        return _MARK + format(value, "f")
    if isinstance(value, dict):
        return {k: _with_marks(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_with_marks(v) for v in value]
    return value


def encode_json(value) -> bytes:
    """JSON in which Decimal amounts are plain numbers with exactly their digits."""
    text = json.dumps(_with_marks(value), ensure_ascii=False, separators=(",", ":"))
    return _MARKED.sub(r"\1", text).encode()


def decode_json(body: bytes | str):
    return json.loads(body, parse_float=Decimal)


def request_id(*parts: object) -> str:
    """A deterministic requestid (36 characters) for one version of one entity's write."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "invoice-pipelines:" + ":".join(map(str, parts))))


def parse_qbo_time(value: str | None) -> datetime | None:
    """QBO's company-local timestamp ("2019-07-11T13:04:17-07:00") as an aware UTC datetime."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def qbo_time(moment: datetime) -> str:
    """An aware datetime as QBO accepts it in queries and changedSince (with its offset)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def quote(value: str) -> str:
    """A string literal for QBO's query language (single quotes escaped with a backslash)."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class Changes:
    """What changed in one entity since a moment: full records, and ids QBO deleted."""

    records: list[dict]
    deleted_ids: list[str]
    # False when the changes came from a query (beyond CDC's 30 days): deletions are unknown then
    deletions_known: bool = True


class QboClient:
    """One realm's API. `tokens` hands out access tokens (a TokenStore); `clock` scales waits."""

    def __init__(
        self,
        *,
        base_url: str,
        realm_id: str,
        tokens,
        minor_version: int = MIN_MINOR_VERSION,
        clock: Clock | None = None,
        limiter: Limiter | None = None,
        http: httpx.Client | None = None,
        timeout: float = 60.0,
        max_attempts: int = 6,
    ) -> None:
        root = base_url.rstrip("/")
        if root.endswith("/v3"):
            root = root[: -len("/v3")]
        self.company_url = f"{root}/v3/company/{realm_id}"
        self.realm_id = realm_id
        self.tokens = tokens
        self.minor_version = max(int(minor_version), MIN_MINOR_VERSION)
        self.clock = clock or Clock()
        self.limiter = limiter or limiter_for(realm_id, self.clock)
        self._own_http = http is None
        self.http = http or httpx.Client(timeout=timeout)
        self.timeout = timeout
        self.max_attempts = max_attempts
        # the connection's settings (tax codes, accounts, skew) when opened for an organization
        self.connection_settings: dict = {}
        self._server_time: tuple[datetime, float] | None = None
        self.stats = {"requests": 0, "retries": 0, "throttled": 0, "refreshes": 0}

    def close(self) -> None:
        if self._own_http:
            self.http.close()

    def __enter__(self) -> QboClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the one path every call takes -------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        body: dict | None = None,
        text_body: str | None = None,
        raw_body: tuple[str, bytes] | None = None,
        cost: int = 1,
        batch: bool = False,
        ticket: Ticket | None = None,
    ) -> dict:
        """Call `{company_url}/{path}` and return the decoded JSON; raises a typed QboError.
        `raw_body`: (Content-Type, bytes) sent as they are (a multipart upload). `ticket`: room
        the caller took from the limiter already (`acquire_up_to`), for the first attempt; a
        retry takes its own."""
        return self._call(
            method, path, params, body, text_body, raw_body, cost, batch, False, ticket
        )

    def request_text(self, method: str, path: str, *, params: dict | None = None) -> str:
        """A call QBO answers with text, not JSON (GET /download/{id}: a link)."""
        return self._call(method, path, params, None, None, None, 1, False, True)

    def _call(
        self, method, path, params, body, text_body, raw_body, cost, batch, as_text, ticket=None
    ):
        query = dict(params or {})
        query["minorversion"] = str(self.minor_version)
        headers = {"Accept": "text/plain" if as_text else "application/json"}
        content: bytes | None = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = encode_json(body)
        elif text_body is not None:
            headers["Content-Type"] = "application/text"
            content = text_body.encode()
        elif raw_body is not None:
            headers["Content-Type"], content = raw_body
        url = f"{self.company_url}/{path.lstrip('/')}"
        # the caller's ticket, until the first attempt takes it (and `_send` releases it)
        unused = [ticket] if ticket is not None else []
        try:
            return self._attempts(
                method, url, query, headers, content, cost, batch, as_text, unused
            )
        finally:
            if unused:  # never sent (no access token, say): it counts for nothing
                self.limiter.cancel(unused.pop())

    def _attempts(self, method, url, query, headers, content, cost, batch, as_text, unused):
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            token = self.tokens.access_token()
            headers["Authorization"] = f"Bearer {token}"
            given = unused.pop() if unused else None
            try:
                return self._send(method, url, query, headers, content, cost, batch, as_text, given)
            except AuthenticationFailed:
                if refreshed:
                    raise
                refreshed = True
                self.tokens.refresh(stale=token)
                self.stats["refreshes"] += 1
                attempt -= 1  # a refresh is not a failed attempt
                continue
            except QboError as exc:
                if not exc.temporary or attempt >= self.max_attempts:
                    raise
                self.stats["retries"] += 1
                if isinstance(exc, Throttled):
                    self.stats["throttled"] += 1
                    # Retry-After is wall-clock seconds; our clock may run compressed
                    wait = (
                        exc.retry_after * self.clock.scale
                        if exc.retry_after is not None
                        else THROTTLE_WAIT
                    )
                    # a little jitter so workers held back together do not return together
                    wait += backoff_seconds(1, base=min(5.0, wait / 10 + 0.5))
                else:
                    wait = backoff_seconds(attempt)
                self.clock.sleep(wait)

    def _send(self, method, url, query, headers, content, cost, batch, as_text=False, ticket=None):
        if ticket is None:
            ticket = self.limiter.acquire(cost, batch=batch)
        try:
            self.stats["requests"] += 1
            response = self.http.request(
                method, url, params=query, headers=headers, content=content, timeout=self.timeout
            )
        except httpx.ConnectError as exc:
            raise TransportError(
                f"QBO could not be reached ({type(exc).__name__})", sent=False
            ) from exc
        except httpx.TransportError as exc:
            # timeout after sending, connection dropped mid-answer: the outcome is unknown
            raise TransportError(
                f"the request to QBO broke ({type(exc).__name__})", sent=True
            ) from exc
        finally:
            self.limiter.release(ticket)
        if response.status_code >= 400:
            error = error_from_response(
                response.status_code,
                response.headers.get("content-type", ""),
                response.text,
                retry_after=_retry_after(response.headers.get("retry-after")),
            )
            if isinstance(error, Throttled):
                self.limiter.forget(ticket)
            raise error
        if as_text:
            text = response.text.strip()
            return str(json.loads(text)) if text.startswith('"') else text
        try:
            data = decode_json(response.content)
        except ValueError:
            # QBO has answered 200 with an XML fault (seen on throttling): read it as the error
            raise error_from_response(response.status_code, "", response.text) from None
        error = (
            fault_from_dict(data, status=response.status_code) if isinstance(data, dict) else None
        )
        if error is not None:
            raise error
        if isinstance(data, dict) and data.get("time"):
            self._note_server_time(str(data["time"]))
        return data

    def _note_server_time(self, value: str) -> None:
        try:
            moment = parse_qbo_time(value)
        except ValueError:
            return
        self._server_time = (moment, time.monotonic())

    def server_now(self) -> datetime:
        """QBO's clock (from the `time` of the last answer), so the 30-day CDC limit and cursors
        are judged on the server's time, not ours; our clock before the first answer."""
        if self._server_time is None:
            return datetime.now(UTC)
        moment, seen = self._server_time
        return moment + timedelta(seconds=(time.monotonic() - seen) * self.clock.scale)

    # -- reads --------------------------------------------------------------------------------

    def get(self, entity: str, qbo_id: str) -> dict:
        data = self.request("GET", f"{entity.lower()}/{qbo_id}")
        return data[entity]

    def query(self, statement: str) -> dict:
        """One query page: the `QueryResponse` object ({} when nothing matched)."""
        data = self.request("POST", "query", text_body=statement)
        return data.get("QueryResponse", {})

    def query_pages(
        self,
        entity: str,
        where: str = "",
        *,
        order_by: str = "MetaData.LastUpdatedTime",
        page_size: int = MAX_PAGE,
        start: int = 1,
        include_inactive: bool | None = None,
    ) -> Iterator[tuple[int, list[dict]]]:
        """Every matching record, page by page: (start position of the page, its records)."""
        if not 1 <= page_size <= MAX_PAGE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE}")
        conditions = [where] if where else []
        if include_inactive if include_inactive is not None else entity in NAME_LISTS:
            conditions.append("Active IN (true, false)")
        clause = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        order = f" ORDERBY {order_by}" if order_by else ""
        position = start
        while True:
            page = self.query(
                f"SELECT * FROM {entity}{clause}{order} "
                f"STARTPOSITION {position} MAXRESULTS {page_size}"
            )
            records = page.get(entity, [])
            if records:
                yield position, records
            if len(records) < page_size:
                return
            position += len(records)

    def query_all(self, entity: str, where: str = "", **kwargs) -> list[dict]:
        return [r for _, page in self.query_pages(entity, where, **kwargs) for r in page]

    def cdc(self, entities: list[str], changed_since: datetime) -> dict[str, list[dict]]:
        """One CDC call: every object of `entities` changed after `changed_since` (<= 30 days),
        deleted ones as stubs with status "Deleted". At most 1,000 objects, silently cut."""
        data = self.request(
            "GET",
            "cdc",
            params={"entities": ",".join(entities), "changedSince": qbo_time(changed_since)},
        )
        found: dict[str, list[dict]] = {entity: [] for entity in entities}
        for block in data.get("CDCResponse", []):
            for response in block.get("QueryResponse", []):
                for entity in entities:
                    found[entity].extend(response.get(entity, []))
        return found

    def changes(
        self, entity: str, since: datetime | None, *, now: datetime | None = None
    ) -> Changes:
        """Everything of `entity` changed since `since` (None: everything), with deletions.

        Within 30 days CDC is used; when a response holds 1,000 objects (CDC cuts silently), the
        window is shrunk: the older part is read with a paged query, the newest part with CDC
        from a later moment that stays under the cap. Beyond 30 days (or with no cursor) only the
        paged query can answer, and deletions are unknown (`deletions_known` False).
        """
        now = now or self.server_now()
        if since is None or now - since > CDC_MAX_AGE - timedelta(minutes=5):
            where = f"MetaData.LastUpdatedTime >= {quote(qbo_time(since))}" if since else ""
            return Changes(self.query_all(entity, where), [], deletions_known=False)
        found = self.cdc([entity], since)[entity]
        if len(found) < CDC_MAX_OBJECTS:
            return _split(found)
        # shrink: find a later start whose CDC answer is under the cap (up to the server's time
        # as the CDC answer just told it)
        low, high = since, self.server_now()
        tail: list[dict] | None = None
        for _ in range(12):
            middle = low + (high - low) / 2
            attempt = self.cdc([entity], middle)[entity]
            if len(attempt) < CDC_MAX_OBJECTS:
                tail, high = attempt, middle
            else:
                low = middle
            if tail is not None and (high - low) < timedelta(seconds=1):
                break
        if tail is None:
            raise QboError(
                f"more than {CDC_MAX_OBJECTS} {entity} changes within one second; cannot page CDC"
            )
        head = self.query_all(
            entity,
            f"MetaData.LastUpdatedTime >= {quote(qbo_time(since))} "
            f"AND MetaData.LastUpdatedTime <= {quote(qbo_time(high))}",
        )
        tail_changes = _split(tail)
        by_id = {r["Id"]: r for r in head}
        by_id.update({r["Id"]: r for r in tail_changes.records})
        return Changes(list(by_id.values()), tail_changes.deleted_ids)

    # -- writes -------------------------------------------------------------------------------

    def create(
        self, entity: str, body: dict, *, requestid: str, params: dict | None = None
    ) -> dict:
        query = {"requestid": requestid, **(params or {})}
        data = self.request("POST", entity.lower(), params=query, body=body)
        return data[entity]

    def sparse_update(
        self, entity: str, qbo_id: str, sync_token: str, fields: dict, *, requestid: str
    ) -> dict:
        body = {"Id": qbo_id, "SyncToken": sync_token, "sparse": True, **fields}
        return self.create(entity, body, requestid=requestid)

    def void_invoice(self, qbo_id: str, sync_token: str, *, requestid: str) -> dict:
        data = self.request(
            "POST",
            "invoice",
            params={"operation": "void", "requestid": requestid},
            body={"Id": qbo_id, "SyncToken": sync_token},
        )
        return data["Invoice"]

    def batch(
        self, items: list[dict], *, requestid: str, ticket: Ticket | None = None
    ) -> dict[str, dict]:
        """One batch request (<= 30 items, each with a unique `bId` of <= 10 characters); the
        answer per bId: {"<Entity>": {...}} or {"Fault": ...} or {"QueryResponse": ...}.
        `ticket`: room the caller took from the limiter for as many items at least
        (`limiter.acquire_up_to`: a push sends as many as fit), used by the first attempt."""
        problem = None
        if not 1 <= len(items) <= MAX_BATCH:
            problem = f"a batch holds 1..{MAX_BATCH} operations, got {len(items)}"
        elif len(requestid) > 36:
            problem = "a batch requestid has at most 36 characters"
        elif ticket is not None and ticket.cost < len(items):
            problem = f"a batch of {len(items)} on a ticket for {ticket.cost}"
        if problem:
            if ticket is not None:
                self.limiter.cancel(ticket)
            raise ValueError(problem)
        data = self.request(
            "POST",
            "batch",
            params={"requestid": requestid},
            body={"BatchItemRequest": items},
            cost=len(items),
            batch=True,
            ticket=ticket,
        )
        return {str(item.get("bId")): item for item in data.get("BatchItemResponse", [])}

    # -- payables: vendors, terms, accounts, bills, vendor credits, bill payments -------------

    def create_vendor(self, draft: VendorDraft, *, requestid: str) -> QboVendor:
        return QboVendor.from_qbo(self.create("Vendor", draft.to_qbo(), requestid=requestid))

    def update_vendor(
        self,
        qbo_id: str,
        sync_token: str,
        draft: VendorDraft,
        *,
        requestid: str,
        sparse: bool = True,
    ) -> QboVendor:
        """Sparse: the draft's fields change, the rest stays; full: what the draft leaves out
        is cleared. A stale `sync_token` raises StaleObject."""
        data = self._update("Vendor", qbo_id, sync_token, draft.to_qbo(), requestid, sparse)
        return QboVendor.from_qbo(data)

    def get_vendor(self, qbo_id: str) -> QboVendor:
        return QboVendor.from_qbo(self.get("Vendor", qbo_id))

    def find_vendors(self, where: str = "", *, include_inactive: bool = True) -> list[QboVendor]:
        """Every vendor matching `where` (QBO's query language), inactive ones too by default."""
        return self._find("Vendor", where, QboVendor.from_qbo, include_inactive)

    def create_term(self, draft: TermDraft, *, requestid: str) -> QboTerm:
        return QboTerm.from_qbo(self.create("Term", draft.to_qbo(), requestid=requestid))

    def update_term(
        self, qbo_id: str, sync_token: str, draft: TermDraft, *, requestid: str, sparse: bool = True
    ) -> QboTerm:
        data = self._update("Term", qbo_id, sync_token, draft.to_qbo(), requestid, sparse)
        return QboTerm.from_qbo(data)

    def get_term(self, qbo_id: str) -> QboTerm:
        return QboTerm.from_qbo(self.get("Term", qbo_id))

    def find_terms(self, where: str = "", *, include_inactive: bool = True) -> list[QboTerm]:
        return self._find("Term", where, QboTerm.from_qbo, include_inactive)

    def create_account(self, draft: AccountDraft, *, requestid: str) -> QboAccount:
        return QboAccount.from_qbo(self.create("Account", draft.to_qbo(), requestid=requestid))

    def update_account(
        self,
        qbo_id: str,
        sync_token: str,
        draft: AccountDraft,
        *,
        requestid: str,
        sparse: bool = True,
    ) -> QboAccount:
        data = self._update("Account", qbo_id, sync_token, draft.to_qbo(), requestid, sparse)
        return QboAccount.from_qbo(data)

    def get_account(self, qbo_id: str) -> QboAccount:
        return QboAccount.from_qbo(self.get("Account", qbo_id))

    def find_accounts(self, where: str = "", *, include_inactive: bool = True) -> list[QboAccount]:
        """The chart of accounts, e.g. `where="AccountType = 'Expense'"`."""
        return self._find("Account", where, QboAccount.from_qbo, include_inactive)

    def create_bill(
        self, draft: BillDraft, *, requestid: str, allow_duplicate_doc_number: bool = False
    ) -> QboBill:
        """A bill; `allow_duplicate_doc_number` sends include=allowduplicatedocnum for a company
        that refuses a vendor's bill number twice (6140, DuplicateDocNumber)."""
        params = {"include": "allowduplicatedocnum"} if allow_duplicate_doc_number else None
        data = self.create("Bill", draft.to_qbo(), requestid=requestid, params=params)
        return QboBill.from_qbo(data)

    def update_bill(
        self, qbo_id: str, sync_token: str, draft: BillDraft, *, requestid: str, sparse: bool = True
    ) -> QboBill:
        """Sending `lines` replaces all of the bill's lines."""
        data = self._update("Bill", qbo_id, sync_token, draft.to_qbo(), requestid, sparse)
        return QboBill.from_qbo(data)

    def get_bill(self, qbo_id: str) -> QboBill:
        return QboBill.from_qbo(self.get("Bill", qbo_id))

    def find_bills(self, where: str = "") -> list[QboBill]:
        """Bills matching `where`, e.g. `f"DocNumber = {quote(number)}"`."""
        return self._find("Bill", where, QboBill.from_qbo, False)

    def delete_bill(self, qbo_id: str, sync_token: str, *, requestid: str) -> None:
        """QBO has no void for a bill: a bill is deleted (one with payments is refused)."""
        self._delete("Bill", qbo_id, sync_token, requestid)

    def create_vendor_credit(self, draft: VendorCreditDraft, *, requestid: str) -> QboVendorCredit:
        data = self.create("VendorCredit", draft.to_qbo(), requestid=requestid)
        return QboVendorCredit.from_qbo(data)

    def update_vendor_credit(
        self,
        qbo_id: str,
        sync_token: str,
        draft: VendorCreditDraft,
        *,
        requestid: str,
        sparse: bool = True,
    ) -> QboVendorCredit:
        data = self._update("VendorCredit", qbo_id, sync_token, draft.to_qbo(), requestid, sparse)
        return QboVendorCredit.from_qbo(data)

    def get_vendor_credit(self, qbo_id: str) -> QboVendorCredit:
        return QboVendorCredit.from_qbo(self.get("VendorCredit", qbo_id))

    def find_vendor_credits(self, where: str = "") -> list[QboVendorCredit]:
        return self._find("VendorCredit", where, QboVendorCredit.from_qbo, False)

    def delete_vendor_credit(self, qbo_id: str, sync_token: str, *, requestid: str) -> None:
        self._delete("VendorCredit", qbo_id, sync_token, requestid)

    def create_bill_payment(self, draft: BillPaymentDraft, *, requestid: str) -> QboBillPayment:
        data = self.create("BillPayment", draft.to_qbo(), requestid=requestid)
        return QboBillPayment.from_qbo(data)

    def update_bill_payment(
        self,
        qbo_id: str,
        sync_token: str,
        draft: BillPaymentDraft,
        *,
        requestid: str,
        sparse: bool = True,
    ) -> QboBillPayment:
        data = self._update("BillPayment", qbo_id, sync_token, draft.to_qbo(), requestid, sparse)
        return QboBillPayment.from_qbo(data)

    def get_bill_payment(self, qbo_id: str) -> QboBillPayment:
        return QboBillPayment.from_qbo(self.get("BillPayment", qbo_id))

    def find_bill_payments(self, where: str = "") -> list[QboBillPayment]:
        return self._find("BillPayment", where, QboBillPayment.from_qbo, False)

    def void_bill_payment(self, qbo_id: str, sync_token: str, *, requestid: str) -> QboBillPayment:
        """Its amounts become zero and what it paid is open on its bills again (QBO voids a bill
        payment as a payment: operation=update&include=void with a sparse body)."""
        data = self.request(
            "POST",
            "billpayment",
            params={"operation": "update", "include": "void", "requestid": requestid},
            body={"Id": qbo_id, "SyncToken": sync_token, "sparse": True},
        )
        return QboBillPayment.from_qbo(data["BillPayment"])

    def delete_bill_payment(self, qbo_id: str, sync_token: str, *, requestid: str) -> None:
        self._delete("BillPayment", qbo_id, sync_token, requestid)

    # -- attachments ------------------------------------------------------------------------

    def upload_attachment(
        self,
        content: bytes,
        *,
        file_name: str,
        content_type: str,
        links: Sequence[AttachmentLink] = (),
        note: str | None = None,
        requestid: str,
    ) -> QboAttachable:
        """The file as an Attachable linked to `links` (a bill, say): POST /upload with the
        Attachable's fields and the bytes as two multipart parts. QBO answers each file on its
        own; a file it refuses (content type, size, a link to nothing) raises its typed error
        (BusinessValidation 6000)."""
        metadata = {
            "AttachableRef": [link.to_qbo() for link in links],
            "FileName": file_name,
            "ContentType": content_type,
        }
        if note is not None:
            metadata["Note"] = note
        data = self.request(
            "POST",
            "upload",
            params={"requestid": requestid},
            raw_body=_multipart(
                [
                    ("file_metadata_01", None, "application/json", encode_json(metadata)),
                    ("file_content_01", file_name, content_type, content),
                ]
            ),
        )
        answers = data.get("AttachableResponse") or []
        answer = answers[0] if answers and isinstance(answers[0], dict) else {}
        error = fault_from_dict(answer)
        if error is not None:
            raise error
        if "Attachable" not in answer:
            raise QboError(f"QBO's answer to an upload holds no Attachable: {str(data)[:200]}")
        return QboAttachable.from_qbo(answer["Attachable"])

    def create_note(
        self, note: str, *, links: Sequence[AttachmentLink], requestid: str
    ) -> QboAttachable:
        """A note attached to `links` (an Attachable without a file)."""
        body = {"Note": note, "AttachableRef": [link.to_qbo() for link in links]}
        return QboAttachable.from_qbo(self.create("Attachable", body, requestid=requestid))

    def get_attachable(self, qbo_id: str) -> QboAttachable:
        return QboAttachable.from_qbo(self.get("Attachable", qbo_id))

    def find_attachables(self, entity_type: str, entity_id: str) -> list[QboAttachable]:
        """The attachments linked to one record (a bill's documents)."""
        where = (
            f"AttachableRef.EntityRef.Type = {quote(entity_type)} "
            f"AND AttachableRef.EntityRef.value = {quote(entity_id)}"
        )
        return self._find("Attachable", where, QboAttachable.from_qbo, False)

    def delete_attachable(self, qbo_id: str, sync_token: str, *, requestid: str) -> None:
        self._delete("Attachable", qbo_id, sync_token, requestid)

    def download_attachment(self, qbo_id: str) -> bytes:
        """The file's bytes: QBO's temporary link (GET /download/{id}), then the file behind it
        (no token: the link is signed). A refused link raises QboError."""
        link = self.request_text("GET", f"download/{qbo_id}")
        try:
            response = self.http.get(link, timeout=self.timeout)
        except httpx.TransportError as exc:
            raise TransportError(
                f"the attachment could not be fetched ({type(exc).__name__})"
            ) from exc
        if response.status_code != 200:
            raise QboError(
                f"the attachment's link was refused (HTTP {response.status_code})",
                status=response.status_code,
            )
        return response.content

    # -- the typed calls' shared steps ---------------------------------------------------------

    def _update(
        self, entity: str, qbo_id: str, sync_token: str, fields: dict, requestid: str, sparse: bool
    ) -> dict:
        body = {**fields, "Id": qbo_id, "SyncToken": sync_token, "sparse": bool(sparse)}
        return self.create(entity, body, requestid=requestid)

    def _delete(self, entity: str, qbo_id: str, sync_token: str, requestid: str) -> None:
        self.request(
            "POST",
            entity.lower(),
            params={"operation": "delete", "requestid": requestid},
            body={"Id": qbo_id, "SyncToken": sync_token},
        )

    def _find(
        self, entity: str, where: str, parse: Callable[[dict], T], include_inactive: bool
    ) -> list[T]:
        records = self.query_all(entity, where, order_by="", include_inactive=include_inactive)
        return [parse(record) for record in records]


def _multipart(parts: list[tuple[str, str | None, str, bytes]]) -> tuple[str, bytes]:
    """(Content-Type, body) of a multipart/form-data request: (name, file name, type, bytes)
    per part, CRLF line ends, a boundary that occurs in none of them."""
    while True:
        boundary = f"invoice-pipelines-{uuid.uuid4().hex}"
        if not any(boundary.encode() in content for *_, content in parts):
            break
    body = bytearray()
    for name, file_name, content_type, content in parts:
        disposition = f'form-data; name="{name}"'
        if file_name is not None:
            disposition += f'; filename="{_UNSAFE_IN_HEADER.sub("_", file_name)}"'
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        body += f"Content-Type: {content_type}\r\n\r\n".encode()
        body += content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", bytes(body)


def _split(found: list[dict]) -> Changes:
    records = [r for r in found if r.get("status") != "Deleted"]
    deleted = [str(r["Id"]) for r in found if r.get("status") == "Deleted"]
    return Changes(records, deleted)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def batch_fault(answer: dict) -> QboError | None:
    """The typed error of one batch item's answer, or None when it succeeded."""
    if "Fault" in answer or "fault" in answer:
        return fault_from_dict(answer)
    return None
