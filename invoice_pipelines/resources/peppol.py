"""The `peppol_access_point` resource: sending over Peppol through an access point's phase4-style
HTTP API. It wraps the plain `resources.peppol_transport.PeppolTransport` (where the requests and
what each answer means live) whose settings Dagster shows and configures: every session, lookup
and send goes to the transport `transport()` gives, so a run and a command (which uses the plain
transport without Dagster) send the same way. Tests and the demo point `base_url` at the local
stand-in (devtools/standins/peppol.py).
"""

from __future__ import annotations

import requests
from dagster import ConfigurableResource
from pydantic import Field

from invoice_pipelines.resources.peppol_transport import (
    BILLING_PROCESS,
    INVOICE_DOC_TYPE,
    PeppolTransport,
    Reach,
    Sending,
)
from invoice_pipelines.settings import env, env_var_or_default


class PeppolAccessPoint(ConfigurableResource):
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
        """The plain transport this resource wraps: its settings by the same names."""
        return PeppolTransport(**{name: getattr(self, name) for name in type(self).model_fields})

    def session(self) -> requests.Session:
        return self.transport().session()

    def lookup(
        self,
        session: requests.Session,
        receiver_id: str,
        doc_type_id: str = INVOICE_DOC_TYPE,
        process_id: str = BILLING_PROCESS,
    ) -> Reach:
        return self.transport().lookup(session, receiver_id, doc_type_id, process_id)

    def send(self, session: requests.Session, **document) -> Sending:
        return self.transport().send(session, **document)


def access_point_from_env() -> PeppolAccessPoint:
    return PeppolAccessPoint(
        base_url=env("INVOICE_PIPELINES_PEPPOL_AP_URL"),
        token=env_var_or_default("INVOICE_PIPELINES_PEPPOL_AP_TOKEN"),
    )
