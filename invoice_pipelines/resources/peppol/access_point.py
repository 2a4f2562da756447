"""The `peppol_access_point` resource: sending over Peppol through an access point's phase4-style
HTTP API. Its settings are declared once, on the plain `resources.peppol.transport.PeppolTransport`
(where the requests and what each answer means live); Dagster shows and configures them here and
hands a run the `PeppolTransport` they make, the object a command sends through too, so a run and
a command send the same way. An asset or op takes it as `ResourceParam[PeppolTransport]`. Tests
and the demo point `base_url` at the local stand-in (devtools/standins/peppol.py).
"""

from __future__ import annotations

from invoice_pipelines.resources.peppol.transport import PeppolTransport
from invoice_pipelines.resources.plain_settings import dagster_resource

PeppolAccessPoint = dagster_resource(
    PeppolTransport,
    "PeppolAccessPoint",
    doc="The access point's settings; a run gets the plain `PeppolTransport` they configure, "
    "never this object.",
    made_by="transport",
)
