"""The QuickBooks Online Accounting API v3 client: a thin layer over httpx.

Every call carries `minorversion` (75 at least) and the access token from the `TokenStore`; a 401
refreshes once and repeats the call. Every write carries a `requestid` chosen by the caller and
deterministic per entity version, so repeating a write whose outcome is unknown (timeout, dropped
connection) replays QBO's original answer instead of writing twice; that is why writes, too, are
retried after transport errors. 429 and 5xx are retried with jittered backoff, honouring
Retry-After (60 s on a 429 without one, as Intuit asks). Requests pass the realm's rate limiter
first. Amounts travel as exact decimals both ways, never floats.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from invoice_pipelines.quickbooks.errors import (
    AuthenticationFailed,
    QboError,
    Throttled,
    TransportError,
    error_from_response,
    fault_from_dict,
)
from invoice_pipelines.quickbooks.limits import Clock, RealmLimiter, backoff_seconds, limiter_for

MIN_MINOR_VERSION = 75
MAX_PAGE = 1000
MAX_BATCH = 30
CDC_MAX_OBJECTS = 1000
CDC_MAX_AGE = timedelta(days=30)
THROTTLE_WAIT = 60.0
NAME_LISTS = {"Customer", "Item", "Vendor", "Employee", "Account", "TaxCode"}

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
        limiter: RealmLimiter | None = None,
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
        cost: int = 1,
        batch: bool = False,
    ) -> dict:
        """Call `{company_url}/{path}` and return the decoded JSON; raises a typed QboError."""
        query = dict(params or {})
        query["minorversion"] = str(self.minor_version)
        headers = {"Accept": "application/json"}
        content: bytes | None = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = encode_json(body)
        elif text_body is not None:
            headers["Content-Type"] = "application/text"
            content = text_body.encode()
        url = f"{self.company_url}/{path.lstrip('/')}"
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            token = self.tokens.access_token()
            headers["Authorization"] = f"Bearer {token}"
            try:
                return self._send(method, url, query, headers, content, cost, batch)
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

    def _send(self, method, url, query, headers, content, cost, batch) -> dict:
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

    def batch(self, items: list[dict], *, requestid: str) -> dict[str, dict]:
        """One batch request (<= 30 items, each with a unique `bId` of <= 10 characters); the
        answer per bId: {"<Entity>": {...}} or {"Fault": ...} or {"QueryResponse": ...}."""
        if not 1 <= len(items) <= MAX_BATCH:
            raise ValueError(f"a batch holds 1..{MAX_BATCH} operations, got {len(items)}")
        if len(requestid) > 36:
            raise ValueError("a batch requestid has at most 36 characters")
        data = self.request(
            "POST",
            "batch",
            params={"requestid": requestid},
            body={"BatchItemRequest": items},
            cost=len(items),
            batch=True,
        )
        return {str(item.get("bId")): item for item in data.get("BatchItemResponse", [])}


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
