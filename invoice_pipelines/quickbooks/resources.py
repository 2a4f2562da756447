"""The `quickbooks` resource: where QBO is (production, Intuit's sandbox or the local simulator),
the key of the tokens at rest, and what bounds a push run. Dagster shows and configures these
settings and hands a run the plain `quickbooks.sync.common.QboSettings` that `settings()` builds,
the object a command gets too (which opens the clients of organizations' connected companies,
`client()`). An asset or op takes it as `ResourceParam[QboSettings]`."""

from __future__ import annotations

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field

from invoice_pipelines.quickbooks.domain.sync.common import PUSH_MINUTES, PUSH_PER_RUN, QboSettings
from invoice_pipelines.resources.plain_settings import OfPlain


class QuickBooks(OfPlain, ConfigurableResource):
    """QBO's settings; a run gets the plain `QboSettings` they configure (Dagster's
    `create_resource`), never this object."""

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
    # a push run is bounded (issue 56, sync/common.py)
    push_per_run: int = Field(
        default=PUSH_PER_RUN,
        ge=1,
        description="Sales invoices one qbo_invoices run pushes at most (about 6 minutes at "
        "QBO's 500 requests a minute); the push sensor starts the next run for the rest.",
    )
    push_minutes: float = Field(
        default=PUSH_MINUTES,
        gt=0,
        description="Minutes after which a qbo_invoices run starts no further batch (it always "
        "pushes one); the rest waits for the next run.",
    )

    def settings(self) -> QboSettings:
        """The plain settings these make: the same names."""
        return self._plain(QboSettings)

    def create_resource(self, context: InitResourceContext) -> QboSettings:  # type: ignore[override]
        return self.settings()
