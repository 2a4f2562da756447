"""The `text_messages` resource: SMS and WhatsApp through a Twilio-style REST API. Its settings
are declared once, on the plain `resources.messaging.text_messages.TextMessages` (where the
requests and what each answer of the API means for the message, `outcome`, live); Dagster shows
and configures them here and hands a run the `TextMessages` they make, the object a command sends
through too, so a run and a command send the same way. An asset or op takes it as
`ResourceParam[TextMessages]`. Tests and the demo point `base_url` at the local stand-in
(devtools/standins/sms.py).
"""

from __future__ import annotations

# what an answer means, also importable from here, beside the resource
from invoice_pipelines.resources.messaging.text_messages import TextMessages, outcome  # noqa: F401
from invoice_pipelines.resources.plain_settings import dagster_resource

TextMessageProvider = dagster_resource(
    TextMessages,
    "TextMessageProvider",
    doc="The message provider's settings; a run gets the plain `TextMessages` they configure, "
    "never this object.",
    made_by="provider",
)
