"""Intuit's OAuth 2.0 as QBO clients meet it: apps (client id and secret), authorization codes,
access tokens (one hour), refresh tokens that rotate on every refresh (the superseded one keeps
working for a grace period, 24 hours by default), the 100-day idle expiry and a 5-year maximum,
and revocation of a whole grant."""

from __future__ import annotations

import base64
import secrets
import threading
from dataclasses import dataclass, field

from invoice_pipelines_devtools.qbo_simulator import wire
from invoice_pipelines_devtools.qbo_simulator.wire import Fault

DAY = 86400.0


@dataclass
class TokenSettings:
    access_ttl: float = 3600.0
    refresh_idle_ttl: float = 100 * DAY
    refresh_max_ttl: float = 5 * 365 * DAY
    # how long a refresh token still works after a newer one was issued from it
    refresh_grace: float = DAY
    code_ttl: float = 600.0


@dataclass
class App:
    client_id: str
    client_secret: str
    realms: list[str] = field(default_factory=list)


@dataclass
class Grant:
    """One app's authorization for one realm; revoking any of its tokens ends all of them."""

    client_id: str
    realm_id: str
    started: float
    revoked: bool = False


@dataclass
class RefreshToken:
    value: str
    grant: Grant
    issued: float
    superseded: float | None = None


@dataclass
class AccessToken:
    value: str
    grant: Grant
    expires: float


@dataclass
class Code:
    grant: Grant
    redirect_uri: str
    expires: float
    used: bool = False


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.body = {"error": error, "error_description": description}


class Tokens:
    def __init__(self, settings: TokenSettings | None = None) -> None:
        self.settings = settings or TokenSettings()
        self.lock = threading.Lock()
        self.apps: dict[str, App] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.codes: dict[str, Code] = {}

    # ---- set-up -------------------------------------------------------------------------

    def app(self, client_id: str | None = None, client_secret: str | None = None) -> App:
        with self.lock:
            client_id = client_id or f"sim-client-{secrets.token_hex(8)}"
            app = self.apps.get(client_id)
            if app is None:
                app = App(client_id, client_secret or f"sim-secret-{secrets.token_hex(16)}")
                self.apps[client_id] = app
            elif client_secret and client_secret != app.client_secret:
                raise ValueError(f"client {client_id} exists with another secret")
            return app

    def connect(
        self, app: App, realm_id: str, now: float, refresh_token: str | None = None
    ) -> dict:
        """A consented connection (as after the authorization-code flow): a fresh token pair;
        `refresh_token` chooses the first refresh token's value (the demo's known credentials)."""
        with self.lock:
            if refresh_token is not None and refresh_token in self.refresh_tokens:
                raise ValueError("that refresh token exists already")
            if realm_id not in app.realms:
                app.realms.append(realm_id)
            grant = Grant(app.client_id, realm_id, now)
            return self._issue(grant, now, refresh_token)

    def _issue(self, grant: Grant, now: float, refresh_value: str | None = None) -> dict:
        access = AccessToken(
            f"sim-at-{secrets.token_urlsafe(32)}", grant, now + self.settings.access_ttl
        )
        refresh_value = refresh_value or f"sim-rt-{secrets.token_urlsafe(24)}"
        refresh = RefreshToken(refresh_value, grant, now)
        self.access_tokens[access.value] = access
        self.refresh_tokens[refresh.value] = refresh
        hard_left = grant.started + self.settings.refresh_max_ttl - now
        return {
            "access_token": access.value,
            "expires_in": int(self.settings.access_ttl),
            "refresh_token": refresh.value,
            "x_refresh_token_expires_in": int(min(self.settings.refresh_idle_ttl, hard_left)),
            "token_type": "bearer",
            "realmId": grant.realm_id,
        }

    # ---- the token endpoint -------------------------------------------------------------

    def _client(self, authorization: str | None, form: dict[str, str]) -> App:
        client_id = client_secret = None
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization.split(None, 1)[1]).decode()
                client_id, _, client_secret = decoded.partition(":")
            except (ValueError, UnicodeDecodeError):
                client_id = None
        else:
            client_id, client_secret = form.get("client_id"), form.get("client_secret")
        app = self.apps.get(client_id or "")
        if app is None or not secrets.compare_digest(app.client_secret, client_secret or ""):
            raise OAuthError(401, "invalid_client", "Client authentication failed.")
        return app

    def token(self, authorization: str | None, form: dict[str, str], now: float) -> dict:
        with self.lock:
            app = self._client(authorization, form)
            grant_type = form.get("grant_type")
            if grant_type == "refresh_token":
                return self._refresh(app, form.get("refresh_token") or "", now)
            if grant_type == "authorization_code":
                code = self.codes.get(form.get("code") or "")
                if (
                    code is None
                    or code.used
                    or code.expires < now
                    or code.grant.client_id != app.client_id
                    or code.redirect_uri != (form.get("redirect_uri") or "")
                ):
                    raise OAuthError(400, "invalid_grant", "The authorization code is not valid.")
                code.used = True
                if code.grant.realm_id not in app.realms:
                    app.realms.append(code.grant.realm_id)
                return self._issue(code.grant, now)
            raise OAuthError(400, "unsupported_grant_type", f"grant_type {grant_type!r}")

    def _refresh(self, app: App, value: str, now: float) -> dict:
        token = self.refresh_tokens.get(value)
        s = self.settings
        if (
            token is None
            or token.grant.client_id != app.client_id
            or token.grant.revoked
            or now > token.issued + s.refresh_idle_ttl
            or now > token.grant.started + s.refresh_max_ttl
            or (token.superseded is not None and now > token.superseded + s.refresh_grace)
        ):
            raise OAuthError(400, "invalid_grant", "Incorrect or invalid refresh token")
        if token.superseded is None:
            token.superseded = now
        return self._issue(token.grant, now)

    def revoke(self, authorization: str | None, token_value: str, now: float) -> None:
        with self.lock:
            app = self._client(authorization, {})
            token = self.refresh_tokens.get(token_value) or self.access_tokens.get(token_value)
            if token is None or token.grant.client_id != app.client_id:
                raise OAuthError(400, "invalid_request", "The token is not known.")
            token.grant.revoked = True

    def authorize(self, client_id: str, redirect_uri: str, realm_id: str | None, now: float) -> str:
        """The consent screen, always answered "Connect": a code for the app's realm."""
        with self.lock:
            app = self.apps.get(client_id)
            if app is None:
                raise OAuthError(400, "invalid_client", f"Unknown client {client_id}")
            realm = realm_id or (app.realms[0] if app.realms else None)
            if realm is None:
                raise OAuthError(400, "invalid_request", "No company to connect to")
            value = f"sim-code-{secrets.token_urlsafe(16)}"
            self.codes[value] = Code(
                Grant(client_id, realm, now), redirect_uri, now + self.settings.code_ttl
            )
            return value

    # ---- API calls ----------------------------------------------------------------------

    def check(self, authorization: str | None, realm_id: str, now: float) -> str:
        """The client id behind a bearer token valid for the realm, or a 401/403 Fault."""
        value = ""
        if authorization and authorization.lower().startswith("bearer "):
            value = authorization.split(None, 1)[1].strip()
        with self.lock:
            token = self.access_tokens.get(value)
            if token is None:
                raise wire.authentication_failed("Token invalid")
            if token.grant.revoked:
                raise wire.authentication_failed("Token revoked")
            if now >= token.expires:
                raise wire.authentication_failed("Token expired")
            if token.grant.realm_id != realm_id:
                raise wire.authorization_failed(
                    "Authorization Failure: the token was not issued for this company"
                )
            return token.grant.client_id

    def expire_access_tokens(self, realm_id: str | None, now: float) -> int:
        with self.lock:
            count = 0
            for token in self.access_tokens.values():
                if realm_id is None or token.grant.realm_id == realm_id:
                    token.expires = min(token.expires, now)
                    count += 1
            return count

    def forget_expired(self, now: float) -> None:
        with self.lock:
            for value in [v for v, t in self.access_tokens.items() if t.expires < now - DAY]:
                del self.access_tokens[value]


__all__ = ["Fault", "OAuthError", "TokenSettings", "Tokens"]
