"""The `quickbooks` resource: where QBO is (production, Intuit's sandbox or the local simulator),
the key of the tokens at rest, and what bounds a push run. Its settings are declared once, on the
plain `quickbooks.domain.sync.common.QboSettings`; Dagster shows and configures them here and
hands a run the `QboSettings` they make, the object a command gets too (which opens the clients
of organizations' connected companies, `client()`). An asset or op takes it as
`ResourceParam[QboSettings]`."""

from __future__ import annotations

from dagster import ConfigurableResource

from invoice_pipelines.quickbooks.domain.sync.common import QboSettings
from invoice_pipelines.resources.plain_settings import dagster_resource

QuickBooks: type[ConfigurableResource] = dagster_resource(
    QboSettings,
    "QuickBooks",
    doc="QBO's settings; a run gets the plain `QboSettings` they configure, never this object.",
    made_by="settings",
)
