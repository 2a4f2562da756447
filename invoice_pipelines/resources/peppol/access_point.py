"""The `peppol_access_point` resource: sending over Peppol through an access point's phase4-style
HTTP API. Dagster shows and configures its settings and hands a run the plain
`resources.peppol.transport.PeppolTransport` (where the requests and what each answer means live)
that `transport()` builds, the object a command sends through too, so a run and a command send the
same way. An asset or op takes it as `ResourceParam[PeppolTransport]`. Tests and the demo point
`base_url` at the local stand-in (devtools/standins/peppol.py).
"""

from __future__ import annotations

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field

from invoice_pipelines.resources.peppol.transport import PeppolTransport
from invoice_pipelines.resources.plain_settings import OfPlain


class PeppolAccessPoint(OfPlain, ConfigurableResource):
    """The access point's settings; a run gets the plain `PeppolTransport` they configure
    (Dagster's `create_resource`), never this object."""

    base_url: str = Field(
        default="http://127.0.0.1:8034",
        description="The access point's API root (INVOICE_PIPELINES_PEPPOL_AP_URL)",
    )
    token: str = Field(
        default="local-token",
        description="API token, sent as X-Token (INVOICE_PIPELINES_PEPPOL_AP_TOKEN)",
    )
    connect_timeout_seconds: float = Field(default=5.0, description="Time limit to connect")
    timeout_seconds: float = Field(
        default=60.0, description="Time limit per request (a send waits for the AS4 receipt)"
    )

    def transport(self) -> PeppolTransport:
        """The plain transport these settings make: its settings by the same names."""
        return self._plain(PeppolTransport)

    def create_resource(self, context: InitResourceContext) -> PeppolTransport:  # type: ignore[override]
        return self.transport()
