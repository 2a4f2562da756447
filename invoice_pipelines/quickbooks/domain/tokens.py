"""OAuth 2.0 tokens of an organization's QBO connection: encrypted at rest, refreshed under a lock.

Intuit rotates refresh tokens: each refresh returns a new one and the old one goes stale. Runs on
several machines may find the access token expired at the same moment, so the refresh is
serialized by the database, not by process memory: the connection row is locked (`SELECT ... FOR
UPDATE` on PostgreSQL, SQLite's write lock), the one that gets it first refreshes and commits the
new pair before anybody uses it, and the others, once they get the lock, find a fresh access token
and use it without refreshing again.

Tokens and the client secret are stored as Fernet tokens with the key in
INVOICE_PIPELINES_QBO_TOKEN_KEY; they never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

import base64
import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Engine, func, insert, select, update

from invoice_pipelines.db.locks import LeaseName, Lock, lease, realm_key, xact_lock
from invoice_pipelines.db.tables import organizations, qbo_connections
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.quickbooks.domain.company import checked_realm_id, switch_company
from invoice_pipelines.quickbooks.domain.errors import (
    NotConnected,
    RealmInUse,
    TokenError,
    TransportError,
)
from invoice_pipelines.settings import ConfigError, env

KEY_VAR = "INVOICE_PIPELINES_QBO_TOKEN_KEY"
# refresh this long before the access token's end, so a request never starts with a dying token
EXPIRY_MARGIN = timedelta(seconds=60)
# Intuit: the refresh token's idle lifetime (rolling) and its hard maximum (policy of 2025)
REFRESH_IDLE_LIFETIME = timedelta(days=100)


def token_cipher(key: str | None = None, *, system: Engine | None = None) -> Fernet:
    """The cipher for tokens at rest; `key` defaults to INVOICE_PIPELINES_QBO_TOKEN_KEY. Without
    a key, the error says what to set it to: the key of the tokens the database holds (counted
    over every organization on `system`, the system engine, when given), when it holds any; how
    to make one only when it holds none (and so none are made unreadable by a new key)."""
    raw = (key if key is not None else env(KEY_VAR)).strip()
    if not raw:
        raise ConfigError(_missing_key(system))
    try:
        return Fernet(raw.encode())
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{KEY_VAR} is not a Fernet key (32 url-safe base64 bytes)") from exc


def _missing_key(system: Engine | None) -> str:
    connected = None
    if system is not None:
        with system_transaction(system) as conn:
            connected = conn.execute(select(func.count()).select_from(qbo_connections)).scalar()
    if connected == 0:
        return (
            f"{KEY_VAR} is empty, and no organization is connected to QuickBooks yet: set it to "
            "a new Fernet key, and keep it, for every token stored from now on is encrypted with "
            'it (python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())")'
        )
    stored = f"{connected} organization(s) have" if connected else "organizations may have"
    return (
        f"{KEY_VAR} is empty, and {stored} QuickBooks tokens stored encrypted with a key: set it "
        "to that key (the demo's is in <data dir>/qbo/token.key, which `make run` reads itself; a "
        "shell beside it finds it while the demo's QuickBooks runs). A new key would leave the "
        "stored tokens unreadable, and every company would have to be connected again"
    )


@dataclass
class QboConnection:
    """One organization's QBO company; the secrets are kept out of repr."""

    organization_id: int
    realm_id: str
    client_id: str
    status: str
    settings: dict
    token_version: int
    access_expires_at: datetime | None
    refresh_expires_at: datetime | None
    refresh_hard_expires_at: datetime | None
    last_refreshed_at: datetime | None
    client_secret: str = field(repr=False, default="")
    refresh_token: str = field(repr=False, default="")
    access_token: str | None = field(repr=False, default=None)

    def access_valid(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        return bool(
            self.access_token
            and self.access_expires_at
            and self.access_expires_at - EXPIRY_MARGIN > now
        )


def _decrypt(cipher: Fernet, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return cipher.decrypt(value.encode()).decode()
    except InvalidToken as exc:
        raise ConfigError(
            f"the stored QuickBooks tokens cannot be read with {KEY_VAR} (was the key changed?)"
        ) from exc


def _encrypt(cipher: Fernet, value: str) -> str:
    return cipher.encrypt(value.encode()).decode()


def _row_to_connection(row, cipher: Fernet) -> QboConnection:
    return QboConnection(
        organization_id=row.organization_id,
        realm_id=row.realm_id,
        client_id=row.client_id,
        status=row.status,
        settings=dict(row.settings or {}),
        token_version=row.token_version,
        access_expires_at=row.access_expires_at,
        refresh_expires_at=row.refresh_expires_at,
        refresh_hard_expires_at=row.refresh_hard_expires_at,
        last_refreshed_at=row.last_refreshed_at,
        client_secret=_decrypt(cipher, row.client_secret_enc) or "",
        refresh_token=_decrypt(cipher, row.refresh_token_enc) or "",
        access_token=_decrypt(cipher, row.access_token_enc),
    )


def save_connection(
    engine: Engine,
    organization_id: int,
    *,
    system: Engine,
    realm_id: str,
    client_id: str,
    client_secret: str,
    refresh_token: str,
    cipher: Fernet,
    access_token: str | None = None,
    access_expires_at: datetime | None = None,
    settings: dict | None = None,
    by: str = "qbo-connect",
) -> dict | None:
    """Connect (or reconnect) an organization to a QBO company after the user's consent.

    `realm_id` must be in Intuit's form (company.checked_realm_id, else BadRealmId). Connecting
    an organization to another company than its current one is a switch (company.py): the first
    company's links are archived in this transaction, audited as done `by`, and every push waits
    for the new company's import; what was archived is returned (None: no switch). The same
    company again (new tokens) keeps everything. `system`: the system engine, which looks for
    another organization connected to the company.

    Refused with `RealmInUse` when another organization is connected to that company (actively):
    its webhooks and its request limit are the company's, and our webhook receiver, the request
    counter and the books themselves take a company to be one organization's. Connects to one
    company are serialized (`Lock.QBO_REALM`), so two at once cannot both pass the check."""
    realm_id = checked_realm_id(realm_id)
    now = datetime.now(UTC)
    values = dict(
        realm_id=realm_id,
        client_id=client_id,
        client_secret_enc=_encrypt(cipher, client_secret),
        refresh_token_enc=_encrypt(cipher, refresh_token),
        access_token_enc=_encrypt(cipher, access_token) if access_token else None,
        access_expires_at=access_expires_at,
        refresh_expires_at=now + REFRESH_IDLE_LIFETIME,
        status="active",
        last_error=None,
    )
    with (
        _switch_guard(engine, organization_id, realm_id),
        tenant_transaction(engine, organization_id, write=True) as conn,
    ):
        xact_lock(conn, Lock.QBO_REALM, realm_key(realm_id))
        holder = _realm_holder(system, realm_id, organization_id)
        if holder is not None:
            raise RealmInUse(
                f"QuickBooks company {realm_id} is already connected to organization {holder!r}: "
                "a company's books belong to one organization (its webhooks and its request "
                "limit are the company's); disconnect it there first, or connect another company"
            )
        exists = conn.execute(
            select(qbo_connections.c.id, qbo_connections.c.realm_id).where(
                qbo_connections.c.organization_id == organization_id
            )
        ).first()
        switched = None
        if exists and exists.realm_id != realm_id:
            switched = switch_company(conn, organization_id, exists.realm_id, realm_id, by)
        if exists:
            conn.execute(
                update(qbo_connections)
                .where(qbo_connections.c.organization_id == organization_id)
                .values(**values)
            )
            if settings is not None:
                conn.execute(
                    update(qbo_connections)
                    .where(qbo_connections.c.organization_id == organization_id)
                    .values(settings=settings)
                )
        else:
            conn.execute(
                insert(qbo_connections).values(
                    organization_id=organization_id, settings=settings or {}, **values
                )
            )
    return switched


def _switch_guard(engine: Engine, organization_id: int, realm_id: str):
    """For a switch of company, the organization's sync lease while it is made: a run pushing
    to the first company now would write its links after they were archived. Busy: LockBusy
    (try again when the run is done). Nothing to hold for a first connect or the same company."""
    with tenant_transaction(engine, organization_id) as conn:
        current = conn.execute(
            select(qbo_connections.c.realm_id).where(
                qbo_connections.c.organization_id == organization_id
            )
        ).scalar()
    if current is None or current == realm_id:
        return nullcontext()
    return lease(
        engine,
        LeaseName.QBO_SYNC,
        organization_id,
        f"qbo-connect-{os.getpid()}",
        ttl=timedelta(minutes=10),
        renew_every=timedelta(minutes=2),
        message="a run is syncing this organization with QuickBooks; switch the company when "
        "it is done",
    )


def _realm_holder(system: Engine, realm_id: str, organization_id: int) -> str | None:
    """The slug of another organization actively connected to `realm_id`, if there is one (read
    across organizations on the system engine: the caller holds the realm's lock)."""
    with system_transaction(system) as conn:
        return conn.execute(
            select(organizations.c.slug)
            .join(qbo_connections, qbo_connections.c.organization_id == organizations.c.id)
            .where(
                qbo_connections.c.realm_id == realm_id,
                qbo_connections.c.status == "active",
                qbo_connections.c.organization_id != organization_id,
            )
            .order_by(organizations.c.id)
        ).scalar()


def load_connection(engine: Engine, organization_id: int, cipher: Fernet) -> QboConnection:
    with tenant_transaction(engine, organization_id) as conn:
        row = conn.execute(
            select(qbo_connections).where(qbo_connections.c.organization_id == organization_id)
        ).first()
    if row is None:
        raise NotConnected("the organization is not connected to QuickBooks Online")
    return _row_to_connection(row, cipher)


def _expiry_fields(payload: dict, now: datetime) -> dict:
    values: dict = {}
    if payload.get("x_refresh_token_expires_in") is not None:
        values["refresh_expires_at"] = now + timedelta(
            seconds=int(payload["x_refresh_token_expires_in"])
        )
    # Intuit announced (2025-11) a field telling the refresh token's hard end; its final name is
    # not published yet, so any other x_refresh_token_*expires* number is read as that
    for key, value in payload.items():
        if (
            key.startswith("x_refresh_token")
            and "expire" in key
            and key != "x_refresh_token_expires_in"
            and str(value).isdigit()
        ):
            values["refresh_hard_expires_at"] = now + timedelta(seconds=int(value))
    return values


class TokenStore:
    """Hands out a valid access token for one organization, refreshing (once, under the row lock)
    when it is missing, about to expire, or was refused with a 401."""

    def __init__(
        self,
        engine: Engine,
        organization_id: int,
        *,
        cipher: Fernet,
        token_url: str,
        http: httpx.Client,
        timeout: float = 30.0,
    ) -> None:
        self.engine = engine
        self.organization_id = organization_id
        self.cipher = cipher
        self.token_url = token_url
        self.http = http
        self.timeout = timeout
        self._cached: QboConnection | None = None
        self.refreshes = 0  # refreshes this store did itself (metadata, tests)

    def connection(self) -> QboConnection:
        if self._cached is None:
            self._cached = load_connection(self.engine, self.organization_id, self.cipher)
        return self._cached

    def access_token(self) -> str:
        current = self.connection()
        if current.status != "active":
            raise NotConnected("the QuickBooks connection was revoked; reconnect the company")
        if current.access_valid():
            return current.access_token or ""
        return self.refresh(stale=current.access_token)

    def refresh(self, stale: str | None) -> str:
        """A new access token. `stale` is the one that failed: when the stored one differs (someone
        refreshed meanwhile) and is still valid, it is used instead of refreshing again."""
        try:
            return self._refresh_locked(stale)
        except TokenError as exc:
            # after the locked transaction ended: recording inside it would wait on its own lock
            self._record_error(str(exc))
            raise

    def _refresh_locked(self, stale: str | None) -> str:
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            query = select(qbo_connections).where(
                qbo_connections.c.organization_id == self.organization_id
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).first()
            if row is None:
                raise NotConnected("the organization is not connected to QuickBooks Online")
            current = _row_to_connection(row, self.cipher)
            if current.status != "active":
                raise NotConnected("the QuickBooks connection was revoked; reconnect the company")
            if current.access_valid() and current.access_token != stale:
                self._cached = current
                return current.access_token or ""
            payload = self._call_token_endpoint(current)
            now = datetime.now(UTC)
            access = str(payload["access_token"])
            # the rotated refresh token is committed before the new access token is used
            values = dict(
                access_token_enc=_encrypt(self.cipher, access),
                access_expires_at=now + timedelta(seconds=int(payload.get("expires_in", 3600))),
                refresh_token_enc=_encrypt(
                    self.cipher, str(payload.get("refresh_token") or current.refresh_token)
                ),
                token_version=current.token_version + 1,
                last_refreshed_at=now,
                last_error=None,
                **_expiry_fields(payload, now),
            )
            conn.execute(
                update(qbo_connections)
                .where(qbo_connections.c.organization_id == self.organization_id)
                .values(**values)
            )
        self.refreshes += 1
        self._cached = None
        return access

    def _call_token_endpoint(self, current: QboConnection) -> dict:
        basic = base64.b64encode(f"{current.client_id}:{current.client_secret}".encode()).decode()
        try:
            response = self.http.post(
                self.token_url,
                data={"grant_type": "refresh_token", "refresh_token": current.refresh_token},
                headers={
                    "Authorization": f"Basic {basic}",
                    "Accept": "application/json",
                    "Content-Type": "application/x-www-form-urlencoded",
                },
                timeout=self.timeout,
            )
        except httpx.TransportError as exc:
            raise TransportError(
                f"the token endpoint could not be reached: {type(exc).__name__}"
            ) from exc
        if response.status_code == 200:
            return response.json()
        try:
            reason = response.json().get("error", "")
        except ValueError:
            reason = ""
        reason = reason or f"HTTP {response.status_code}"
        raise TokenError(
            f"the token endpoint refused the refresh ({reason}); the company must be reconnected"
            if reason in ("invalid_grant", "invalid_client")
            else f"the token endpoint refused the refresh ({reason})",
            code=reason,
            status=response.status_code,
        )

    def _record_error(self, message: str) -> None:
        # a separate transaction: the refresh's own transaction is rolled back by the raise
        try:
            with tenant_transaction(self.engine, self.organization_id) as conn:
                conn.execute(
                    update(qbo_connections)
                    .where(qbo_connections.c.organization_id == self.organization_id)
                    .values(last_error=message)
                )
        except Exception:  # noqa: BLE001 - recording is best effort; the TokenError is what counts
            pass
