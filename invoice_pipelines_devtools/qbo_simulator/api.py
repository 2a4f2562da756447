"""The simulator's request handling without HTTP: companies, faults to inject, throttles, tokens,
requestid replay, and the QBO endpoints (entities, query, CDC, batch). The HTTP layer (server.py)
turns a request into a call here and the `Outcome` back into bytes on the socket."""

from __future__ import annotations

import math
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from invoice_pipelines_devtools.qbo_simulator import query as qbo_query
from invoice_pipelines_devtools.qbo_simulator import wire
from invoice_pipelines_devtools.qbo_simulator.auth import OAuthError, Tokens, TokenSettings
from invoice_pipelines_devtools.qbo_simulator.clock import Clock
from invoice_pipelines_devtools.qbo_simulator.company import (
    PATHS,
    WRITABLE,
    Company,
    Settings,
    WriteContext,
)
from invoice_pipelines_devtools.qbo_simulator.limits import Limits, Meter, retry_after_header
from invoice_pipelines_devtools.qbo_simulator.webhooks import WebhookSender
from invoice_pipelines_devtools.qbo_simulator.wire import Fault

DAY = 86400.0
CDC_MAX_DAYS = 30
CDC_MAX_OBJECTS = 1000
BATCH_MAX_ITEMS = 30
MIN_MINOR_VERSION = 75
FAULT_KINDS = ("429", "500", "503", "timeout", "delay", "drop", "drop_after_commit", "401")
JSON = "application/json;charset=UTF-8"
XML = "application/xml;charset=UTF-8"


@dataclass
class Outcome:
    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without an answer


@dataclass
class InjectedFault:
    fault: str
    count: int
    path_contains: str | None = None
    seconds: float | None = None
    xml: bool = False


@dataclass
class CompanyHandle:
    """What a connected app knows about a company: everything a client needs to call it."""

    realm_id: str
    client_id: str
    client_secret: str
    refresh_token: str
    access_token: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class Simulator:
    def __init__(
        self,
        time_scale: float = 1.0,
        limits: Limits | None = None,
        token_settings: TokenSettings | None = None,
        request_timeout: float = 120.0,
    ) -> None:
        self.clock = Clock(time_scale)
        self.limits = limits or Limits()
        self.tokens = Tokens(token_settings)
        self.request_timeout = request_timeout
        self.companies: dict[str, Company] = {}
        self.meters: dict[str, Meter] = {}
        self.faults: dict[str, list[InjectedFault]] = {}
        self.log: deque[dict] = deque(maxlen=50_000)
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self.changed = threading.Event()  # something to persist
        self.base_url = "http://127.0.0.1"
        self.webhooks = WebhookSender()

    # ---- test controls ------------------------------------------------------------------

    def create_company(
        self,
        realm_id: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        name: str | None = None,
        tz_offset: str = "-07:00",
        currency: str = "USD",
        country: str = "US",
        custom_txn_numbers: bool = True,
        inactive_names_conflict: bool = True,
        throttle_xml: bool = False,
        refresh_token: str | None = None,
        multicurrency: bool = False,
        unique_bill_numbers: bool = False,
    ) -> CompanyHandle:
        """A new company connected to an app (a new app unless `client_id` names one);
        `refresh_token` fixes the first refresh token's value (known demo credentials)."""
        with self.lock:
            realm_id = str(realm_id or f"9130{secrets.randbelow(10**12):012d}")
            if realm_id in self.companies:
                raise ValueError(f"company {realm_id} exists already")
            settings = Settings(
                custom_txn_numbers,
                inactive_names_conflict,
                throttle_xml,
                multicurrency,
                unique_bill_numbers,
            )
            company = Company(
                realm_id,
                self.clock.now,
                name=name or f"Sandbox Company {realm_id[-4:]}",
                tz_offset=tz_offset,
                currency=currency,
                country=country,
                settings=settings,
            )
            self.attach(company)
        app = self.tokens.app(client_id, client_secret)
        pair = self.tokens.connect(app, realm_id, self.clock.now(), refresh_token)
        self.changed.set()
        return CompanyHandle(
            realm_id, app.client_id, app.client_secret, pair["refresh_token"], pair["access_token"]
        )

    def attach(self, company: Company) -> None:
        """Register a company (new, reset or loaded): its meter and its webhook events."""
        realm = company.realm_id
        self.companies[realm] = company
        self.meters[realm] = Meter()
        company.base_url = lambda: self.base_url
        company.notify = lambda entity, entity_id, operation, when: self.webhooks.event(
            realm, entity, entity_id, operation, when
        )

    def configure_webhook(
        self, realm_id: str, url: str | None, verifier_token: str = "", fmt: str = "cloudevents"
    ) -> None:
        self.company(realm_id)
        self.webhooks.configure(str(realm_id), url, verifier_token, fmt)

    def company(self, realm_id: str) -> Company:
        company = self.companies.get(str(realm_id))
        if company is None:
            raise KeyError(f"no company {realm_id} in the simulator")
        return company

    def inject(
        self,
        realm_id: str,
        fault: str,
        count: int = 1,
        path_contains: str | None = None,
        seconds: float | None = None,
        xml: bool = False,
    ) -> None:
        fault = str(fault)
        if fault not in FAULT_KINDS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULT_KINDS)}")
        self.company(realm_id)
        with self.lock:
            self.faults.setdefault(str(realm_id), []).append(
                InjectedFault(fault, int(count), path_contains, seconds, bool(xml))
            )

    def clear_faults(self, realm_id: str | None = None) -> None:
        with self.lock:
            if realm_id is None:
                self.faults.clear()
            else:
                self.faults.pop(str(realm_id), None)

    def pending_faults(self, realm_id: str) -> list[dict]:
        with self.lock:
            return [dict(f.__dict__) for f in self.faults.get(str(realm_id), [])]

    def _take_fault(self, realm_id: str, target: str, api: bool) -> InjectedFault | None:
        with self.lock:
            queue = self.faults.get(realm_id)
            if not queue:
                return None
            for fault in queue:
                if fault.path_contains is None and not api:
                    continue  # without a path, faults hit API calls, not token refreshes
                if fault.path_contains is not None and fault.path_contains not in target:
                    continue
                fault.count -= 1
                if fault.count <= 0:
                    queue.remove(fault)
                return InjectedFault(fault.fault, 1, fault.path_contains, fault.seconds, fault.xml)
            return None

    def edit_as_user(self, realm_id: str, entity: str, entity_id: str, changes: dict) -> dict:
        company = self.company(realm_id)
        with company.lock:
            record = company.edit_as_user(entity, str(entity_id), changes)
        self.changed.set()
        return record

    def create_as_user(self, realm_id: str, entity: str, fields: dict) -> dict:
        company = self.company(realm_id)
        with company.lock:
            record = company.create_as_user(entity, fields)
        self.changed.set()
        return record

    def records(self, realm_id: str, entity: str) -> list[dict]:
        company = self.company(realm_id)
        with company.lock:
            return company.all_records(entity)

    def deleted(self, realm_id: str, entity: str) -> list[str]:
        company = self.company(realm_id)
        with company.lock:
            return [t.id for t in company.tombstones if t.entity == entity]

    def advance(self, seconds: float) -> float:
        return self.clock.advance(float(seconds))

    def requests(self, realm_id: str | None = None, limit: int | None = None) -> list[dict]:
        with self.lock:
            entries = [e for e in self.log if realm_id is None or e.get("realm_id") == realm_id]
        return entries[-limit:] if limit else entries

    def stats(self, realm_id: str) -> dict:
        self.company(realm_id)
        return self.meters[str(realm_id)].stats(self.clock.now())

    def expire_access_tokens(self, realm_id: str | None = None) -> int:
        return self.tokens.expire_access_tokens(realm_id, self.clock.now())

    def configure(self, realm_id: str | None = None, **settings: Any) -> dict:
        """Limits, token lifetimes and the request timeout for all; company switches per realm."""
        for key, value in settings.items():
            if key in Limits.__dataclass_fields__:
                setattr(self.limits, key, type(getattr(self.limits, key))(value))
            elif key in TokenSettings.__dataclass_fields__:
                setattr(self.tokens.settings, key, float(value))
            elif key == "request_timeout":
                self.request_timeout = float(value)
            elif key in Settings.__dataclass_fields__:
                if realm_id is None:
                    raise ValueError(f"{key} is a company setting: name the realm")
                setattr(self.company(realm_id).settings, key, bool(value))
                prefs = self.company(realm_id).records["Preferences"]["1"].data
                if key == "custom_txn_numbers":
                    prefs.setdefault("SalesFormsPrefs", {})["CustomTxnNumbers"] = bool(value)
                if key == "multicurrency":
                    prefs.setdefault("CurrencyPrefs", {})["MultiCurrencyEnabled"] = bool(value)
            else:
                raise ValueError(f"unknown simulator setting {key!r}")
        self.changed.set()
        return self.settings(realm_id)

    def settings(self, realm_id: str | None = None) -> dict:
        out = {
            **self.limits.__dict__,
            **self.tokens.settings.__dict__,
            "request_timeout": self.request_timeout,
            "time_scale": self.clock.time_scale,
        }
        if realm_id is not None:
            out.update(self.company(realm_id).settings.__dict__)
        return out

    def reset(self, realm_id: str | None = None) -> None:
        """Forget the data of one company (or all): records, tombstones, requestids, faults."""
        with self.lock:
            realms = [str(realm_id)] if realm_id else list(self.companies)
            for realm in realms:
                old = self.company(realm)
                fresh = Company(
                    realm,
                    self.clock.now,
                    name=old.name,
                    tz_offset=old.tz_offset,
                    currency=old.currency,
                    country=old.country,
                    settings=old.settings,
                )
                self.attach(fresh)
                self.faults.pop(realm, None)
        self.changed.set()

    # ---- OAuth --------------------------------------------------------------------------

    def discovery(self) -> dict:
        base = self.base_url
        return {
            "issuer": f"{base}/op/v1",
            "authorization_endpoint": f"{base}/connect/oauth2",
            "token_endpoint": f"{base}/oauth2/v1/tokens/bearer",
            "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo",
            "revocation_endpoint": f"{base}/oauth2/v1/tokens/revoke",
            "jwks_uri": f"{base}/oauth2/v1/keys",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile", "com.intuit.quickbooks.accounting"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
        }

    def _oauth_fault(self, realm_id: str | None, path: str) -> Outcome | None:
        if realm_id is None:
            return None
        fault = self._take_fault(realm_id, path, api=False)
        if fault is None:
            return None
        if fault.fault in ("500", "503", "429"):
            return Outcome(int(fault.fault), wire.dumps({"error": "server_error"}))
        return self._hold(fault) or Outcome(0, drop=True)

    def token(self, authorization: str | None, form: dict[str, str], path: str) -> Outcome:
        refresh = self.tokens.refresh_tokens.get(form.get("refresh_token") or "")
        injected = self._oauth_fault(refresh.grant.realm_id if refresh else None, path)
        if injected is not None:
            return injected
        try:
            body = self.tokens.token(authorization, form, self.clock.now())
        except OAuthError as exc:
            return Outcome(exc.status, wire.dumps(exc.body))
        self.changed.set()
        body = dict(body)
        body.pop("realmId", None)
        return Outcome(200, wire.dumps(body), headers={"Cache-Control": "no-store"})

    def revoke(self, authorization: str | None, body: bytes) -> Outcome:
        try:
            payload = wire.loads(body or b"{}")
            token = payload.get("token") if isinstance(payload, dict) else None
        except ValueError:
            token = None
        if not token:
            return Outcome(400, wire.dumps({"error": "invalid_request"}))
        try:
            self.tokens.revoke(authorization, str(token), self.clock.now())
        except OAuthError as exc:
            return Outcome(exc.status, wire.dumps(exc.body))
        self.changed.set()
        return Outcome(200, b"")

    def authorize(self, params: dict[str, str]) -> Outcome:
        redirect = params.get("redirect_uri") or ""
        try:
            code = self.tokens.authorize(
                params.get("client_id") or "", redirect, params.get("realmId"), self.clock.now()
            )
        except OAuthError as exc:
            return Outcome(exc.status, wire.dumps(exc.body))
        realm = self.tokens.codes[code].grant.realm_id
        query = urlencode({"code": code, "state": params.get("state") or "", "realmId": realm})
        sep = "&" if "?" in redirect else "?"
        return Outcome(302, b"", headers={"Location": f"{redirect}{sep}{query}"})

    # ---- the storage behind TempDownloadUri ---------------------------------------------

    def attachment_file(self, path: str, params: dict[str, str]) -> Outcome:
        """GET /attachments/{realm}/{id}/{name}?Expires=&Signature=: the file, as QBO's storage
        hands it out from a temporary link (no bearer token; the signature is the key)."""
        parts = path.split("/")  # ['', 'attachments', realm, id, name]
        company = self.companies.get(parts[2]) if len(parts) >= 4 else None
        if company is None:
            return Outcome(404, b"", "application/xml")
        with company.lock:
            status, content_type, body = company.fetch_file(
                parts[3], params.get("Expires") or "", params.get("Signature") or ""
            )
        return Outcome(status, body, content_type)

    # ---- the API ------------------------------------------------------------------------

    def _reply(self, company: Company | None, status: int, payload: dict) -> Outcome:
        tz = company.tz if company else wire.parse_offset("-07:00")
        payload = {**payload, "time": wire.response_time(self.clock.now(), tz)}
        return Outcome(status, wire.dumps(payload))

    def _fault(self, company: Company | None, fault: Fault, accept: str | None, xml=False):
        tz = company.tz if company else wire.parse_offset("-07:00")
        stamp = wire.response_time(self.clock.now(), tz)
        if xml or wire.wants_xml(accept):
            return Outcome(fault.status, wire.fault_xml(fault, stamp), XML)
        return Outcome(fault.status, wire.fault_json(fault, stamp))

    def _hold(self, fault: InjectedFault) -> Outcome | None:
        """Wait on the simulated clock (advance() ends it early); a timeout then drops."""
        seconds = fault.seconds if fault.seconds is not None else self.request_timeout
        deadline = self.clock.now() + seconds
        while self.clock.now() < deadline and not self.closing.is_set():
            left = self.clock.real_seconds(deadline - self.clock.now())
            time.sleep(min(max(left, 0.001), 0.05))
        if fault.fault in ("timeout", "drop"):
            return Outcome(0, drop=True)
        return None

    def handle_api(
        self,
        method: str,
        path: str,
        query: str,
        params: dict[str, str],
        body: bytes,
        headers: dict,
    ) -> Outcome:
        """One call under /v3/company/{realm}/; `headers` has lower-case names."""
        parts = path.split("/")  # ['', 'v3', 'company', realm, ...]
        realm_id = parts[3] if len(parts) > 3 else ""
        rest = parts[4:]
        company = self.companies.get(realm_id)
        entry = {
            "time": self.clock.now(),
            "realm_id": realm_id,
            "method": method,
            "path": path,
            "params": dict(params),
            "requestid": params.get("requestid"),
        }
        target = f"{path}?{query}" if query else path
        outcome = self._api(company, realm_id, method, rest, params, body, headers, entry, target)
        entry["status"] = outcome.status if not outcome.drop else "dropped"
        entry["intuit_tid"] = outcome.headers.setdefault("intuit_tid", str(uuid.uuid4()))
        with self.lock:
            self.log.append(entry)
        return outcome

    def _api(self, company, realm_id, method, rest, params, body, headers, entry, target):
        accept = headers.get("accept")
        injected = self._take_fault(realm_id, target, True)
        if injected is not None:
            entry["injected"] = injected.fault
            if injected.fault == "429":
                xml = injected.xml or bool(company and company.settings.throttle_xml)
                outcome = self._fault(company, wire.throttled(), accept, xml)
                if self.limits.retry_after:  # Intuit's 60 s, in real seconds on our clock
                    outcome.headers["Retry-After"] = retry_after_header(60, self.clock.time_scale)
                return outcome
            if injected.fault in ("500", "503"):
                return self._fault(
                    company, wire.server_error(int(injected.fault)), accept, injected.xml
                )
            if injected.fault == "401":
                return self._fault(company, wire.authentication_failed("Token expired"), accept)
            if injected.fault == "drop":
                return Outcome(0, drop=True)
        try:
            client_id = self.tokens.check(headers.get("authorization"), realm_id, self.clock.now())
        except Fault as fault:
            return self._fault(company, fault, accept)
        entry["client_id"] = client_id
        if company is None:
            return self._fault(
                None, wire.authorization_failed(f"Unknown company {realm_id}"), accept
            )
        minor = params.get("minorversion")
        try:
            entry["minorversion"] = (
                max(MIN_MINOR_VERSION, int(minor)) if minor else MIN_MINOR_VERSION
            )
        except ValueError:
            return self._fault(company, wire.invalid_value("minorversion", f"{minor!r}"), accept)
        resource = rest[0].lower() if rest else ""
        batch_items = 1
        payload: Any = None
        if method == "POST" and resource not in ("query", "upload"):
            try:
                payload = wire.loads(body) if body.strip() else {}
            except ValueError:
                return self._fault(
                    company,
                    Fault(
                        400,
                        "2010",
                        "Request has invalid or unsupported property",
                        "The request body is not valid JSON.",
                    ),
                    accept,
                )
            if resource == "batch" and isinstance(payload, dict):
                items = payload.get("BatchItemRequest")
                batch_items = max(1, len(items)) if isinstance(items, list) else 1
        meter = self.meters[realm_id]
        metered_at = self.clock.now()
        wait = meter.admit(self.limits, metered_at, batch_items, resource == "batch")
        # what the throttle counted, and when: a test counts a window's items from the log
        entry["items"] = batch_items
        if wait is None:
            entry["metered_at"] = metered_at
        if wait is not None:
            entry["throttled"] = True
            xml = company.settings.throttle_xml
            outcome = self._fault(company, wire.throttled(), accept, xml)
            if self.limits.retry_after:
                outcome.headers["Retry-After"] = retry_after_header(wait, self.clock.time_scale)
            return outcome
        try:
            if injected is not None and injected.fault in ("timeout", "delay"):
                held = self._hold(injected)
                if held is not None:
                    return held
            outcome = self._route(company, method, resource, rest, params, payload, body, headers)
        finally:
            meter.release()
        if injected is not None and injected.fault == "drop_after_commit":
            outcome.drop = True
        return outcome

    def _route(self, company, method, resource, rest, params, payload, body, headers) -> Outcome:
        accept = headers.get("accept")
        with company.lock:
            try:
                if resource == "query":
                    if method == "GET":
                        text = params.get("query") or ""
                    else:
                        text = body.decode("utf-8", "replace")
                    result = qbo_query.run(company, text)
                    return self._reply(company, 200, {"QueryResponse": result})
                if resource == "cdc" and method == "GET":
                    return self._reply(company, 200, self._cdc(company, params))
                if resource == "companyinfo" and method == "GET":
                    return self._reply(
                        company, 200, {"CompanyInfo": company.read("CompanyInfo", "1")}
                    )
                if resource == "preferences" and method == "GET":
                    return self._reply(
                        company, 200, {"Preferences": company.read("Preferences", "1")}
                    )
                if method == "POST" and resource == "upload":
                    limit = self.limits.upload_max_bytes
                    content_type = headers.get("content-type")
                    return self._replayable(
                        company,
                        params,
                        50,
                        lambda: {"AttachableResponse": company.upload(body, content_type, limit)},
                        accept,
                    )
                if method == "GET" and resource == "download" and len(rest) == 2:
                    link = company.download_link(rest[1])
                    return Outcome(200, link.encode(), "text/plain;charset=UTF-8")
                if method == "POST" and (resource == "batch" or resource in PATHS):
                    return self._write(company, resource, params, payload, accept)
                if method == "GET" and resource in PATHS and len(rest) == 2:
                    entity = PATHS[resource]
                    return self._reply(company, 200, {entity: company.read(entity, rest[1])})
                raise wire.unsupported_operation(
                    f"Operation {method} /{'/'.join(rest)} is not supported."
                )
            except Fault as fault:
                return self._fault(company, fault, accept)

    def _write(self, company: Company, resource: str, params, payload, accept) -> Outcome:
        """POST: entity writes and batches, with requestid replay (the company lock is held)."""
        if resource == "batch":
            requestid = params.get("requestid")
            return self._replayable(
                company, params, 36, lambda: self._batch(company, payload, requestid), accept
            )
        entity = PATHS[resource]
        return self._replayable(
            company,
            params,
            50,
            lambda: {entity: company.write(entity, payload, params, WriteContext())},
            accept,
        )

    def _replayable(self, company: Company, params, limit: int, answer, accept) -> Outcome:
        """A write's answer (`answer()`, or its Fault), kept under its requestid (of at most
        `limit` characters) and answered again, byte for byte, to a request with the same one."""
        requestid = params.get("requestid")
        if requestid is not None:
            if not requestid or len(requestid) > limit:
                raise wire.invalid_value(
                    "requestid", f"a requestid has 1 to {limit} characters here"
                )
            stored = company.replies.get(requestid)
            if stored is not None:
                status, content_type, data = stored
                return Outcome(status, data, content_type, {"X-Simulator-Replay": "true"})
        try:
            outcome = self._reply(company, 200, answer())
        except Fault as fault:
            outcome = self._fault(company, fault, accept)
        if requestid is not None:
            company.replies[requestid] = (outcome.status, outcome.content_type, outcome.body)
        self.changed.set()
        return outcome

    def _batch(self, company: Company, payload: Any, requestid: str | None) -> dict:
        items = payload.get("BatchItemRequest") if isinstance(payload, dict) else None
        if not isinstance(items, list) or not items:
            raise wire.required_param("BatchItemRequest")
        if len(items) > BATCH_MAX_ITEMS:
            raise Fault(
                400,
                "4001",
                "Invalid request",
                f"BatchItemRequest has {len(items)} items; the maximum is {BATCH_MAX_ITEMS}.",
            )
        ids = [str(item.get("bId", "")) if isinstance(item, dict) else "" for item in items]
        if any(not b for b in ids) or len(set(ids)) != len(ids):
            raise wire.invalid_value("bId", "every batch item needs its own bId")
        ctx = WriteContext()
        answers = []
        for bid, item in zip(ids, items, strict=True):
            try:
                wire.check_batch_request_id(requestid, bid)
                answers.append({"bId": bid, **self._batch_item(company, item, ctx)})
            except Fault as fault:
                answers.append({"bId": bid, "Fault": fault.fault()})
        return {"BatchItemResponse": answers}

    def _batch_item(self, company: Company, item: dict, ctx: WriteContext) -> dict:
        if "Query" in item:
            return {"QueryResponse": qbo_query.run(company, str(item["Query"]), ctx.hidden)}
        if "CDCQuery" in item:  # Intuit's Java SDK: BatchOperation.addCDCQuery
            cdc = item["CDCQuery"] if isinstance(item["CDCQuery"], dict) else {}
            params = {"entities": cdc.get("Entities"), "changedSince": cdc.get("ChangedSince")}
            return {"CDCResponse": self._cdc(company, params)["CDCResponse"][0]}
        entities = [key for key in item if key in WRITABLE]
        if len(entities) != 1:
            raise wire.invalid_value("BatchItemRequest", "an item names exactly one entity")
        entity = entities[0]
        obj = item[entity]
        if not isinstance(obj, dict):
            raise wire.invalid_value(entity, "not an object")
        operation = str(item.get("operation") or "create").lower()
        ctx.include = set()
        if operation == "create":
            saved = company.create(entity, {k: v for k, v in obj.items() if k != "Id"}, ctx)
            ctx.hidden.add((entity, saved["Id"]))
        elif operation == "update":
            if str(item.get("optionsData") or "").lower() == "void":
                if entity == "Invoice":
                    saved = company.void_invoice(obj, ctx)
                elif entity == "Payment":
                    saved = company.void_payment(obj, ctx)
                elif entity == "BillPayment":
                    saved = company.void_bill_payment(obj, ctx)
                else:
                    raise wire.unsupported_operation(
                        f"Operation Void is not supported for {entity}."
                    )
            else:
                if obj.get("Id") in (None, ""):
                    raise wire.required_param("Id")
                saved = company.update(entity, obj, ctx)
        elif operation == "delete":
            saved = company.delete(entity, obj, ctx)
        else:
            raise wire.unsupported_operation(f"Operation {operation} is not supported in a batch.")
        return {entity: saved}

    def _cdc(self, company: Company, params: dict[str, str]) -> dict:
        names = [
            qbo_query.cdc_entity(n) for n in (params.get("entities") or "").split(",") if n.strip()
        ]
        if not names:
            raise wire.required_param("entities")
        text = params.get("changedSince")
        if not text:
            raise wire.required_param("changedSince")
        since = wire.parse_instant(text, company.tz)
        if since is None:
            raise wire.invalid_value("changedSince", f"{text!r} is not a date and time")
        if since < self.clock.now() - CDC_MAX_DAYS * DAY:
            raise Fault(
                400,
                "2010",
                "Request has invalid or unsupported property",
                f"Operation cdc with changedSince date {text} which is older than fixed days "
                f"is not supported.",
                element="changedSince",
            )
        # timestamps have whole seconds: everything of the second named is included
        since = math.floor(since)
        changes: list[tuple[float, int, str, dict]] = []
        for order, name in enumerate(names):
            for record in company.records.get(name, {}).values():
                if math.floor(record.updated) >= since:
                    changes.append((record.updated, order, record.id, company.render(record)))
            for tomb in company.tombstones:
                if tomb.entity == name and math.floor(tomb.deleted) >= since:
                    stub = {
                        "Id": tomb.id,
                        "status": "Deleted",
                        "domain": "QBO",
                        "MetaData": {"LastUpdatedTime": company.stamp(tomb.deleted)},
                    }
                    changes.append((tomb.deleted, order, tomb.id, stub))
        changes.sort(key=lambda c: (c[0], c[1], int(c[2]) if c[2].isdigit() else 0))
        changes = changes[:CDC_MAX_OBJECTS]  # QBO cuts silently: no paging, no error
        responses = []
        for order, name in enumerate(names):
            found = [c[3] for c in changes if c[1] == order]
            if found:
                responses.append({name: found, "startPosition": 1, "maxResults": len(found)})
            else:
                responses.append({})
        return {"CDCResponse": [{"QueryResponse": responses}]}
