"""The `quickbooks` resource: where QBO is (production, Intuit's sandbox or the local simulator),
the key of the tokens at rest, and clients for organizations' connected companies."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field
from sqlalchemy import Engine

from invoice_pipelines.quickbooks.client import QboClient
from invoice_pipelines.quickbooks.sync.common import QboSettings, open_client


class QuickBooks(ConfigurableResource):
    base_url: str = Field(
        default="https://quickbooks.api.intuit.com",
        description="QBO API root (INVOICE_PIPELINES_QBO_BASE_URL): production, "
        "https://sandbox-quickbooks.api.intuit.com, or the local simulator.",
    )
    token_url: str = Field(
        default="https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
        description="OAuth 2.0 token endpoint (INVOICE_PIPELINES_QBO_TOKEN_URL).",
    )
    token_key: str = Field(
        default="",
        description="Fernet key of the tokens at rest (INVOICE_PIPELINES_QBO_TOKEN_KEY, an EnvVar).",
    )
    minor_version: int = Field(
        default=75, ge=75, description="minorversion sent on every call (at least 75)."
    )
    time_scale: float = Field(
        default=1.0,
        gt=0,
        description="Simulated seconds per real second; 1 except against a sped-up simulator.",
    )
    # a push run is bounded (issue 56), so that hours of an organization's push at QBO's 500
    # requests a minute are runs of minutes with room between them for a schedule's or a person's
    # run of the same company; the push sensor asks for the next run
    push_per_run: int = Field(
        default=3000,
        ge=1,
        description="Sales invoices one qbo_invoices run pushes at most (about 6 minutes at "
        "QBO's 500 requests a minute); the push sensor starts the next run for the rest.",
    )
    push_minutes: float = Field(
        default=10.0,
        gt=0,
        description="Minutes after which a qbo_invoices run starts no further batch (it always "
        "pushes one); the rest waits for the next run.",
    )

    def push_bounds(self) -> dict:
        """What bounds one run of the invoice push (sync/invoices.py `push_invoices`)."""
        return {"limit": self.push_per_run, "minutes": self.push_minutes}

    def settings(self) -> QboSettings:
        return QboSettings(
            base_url=self.base_url,
            token_url=self.token_url,
            token_key=self.token_key,
            minor_version=self.minor_version,
            time_scale=self.time_scale,
        )

    def client(self, engine: Engine, organization_id: int) -> QboClient:
        """A client of the organization's connected company (close it when done)."""
        return open_client(engine, organization_id, self.settings())


def quickbooks_from_env() -> QuickBooks:
    from invoice_pipelines.settings import env, env_var_or_default

    return QuickBooks(
        base_url=env("INVOICE_PIPELINES_QBO_BASE_URL"),
        token_url=env("INVOICE_PIPELINES_QBO_TOKEN_URL"),
        token_key=env_var_or_default("INVOICE_PIPELINES_QBO_TOKEN_KEY"),
        minor_version=int(env("INVOICE_PIPELINES_QBO_MINOR_VERSION")),
    )
