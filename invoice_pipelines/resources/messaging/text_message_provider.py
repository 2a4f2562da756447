"""The `text_messages` resource: SMS and WhatsApp through a Twilio-style REST API. Dagster shows
and configures its settings and hands a run the plain `resources.messaging.text_messages.TextMessages`
(where the requests and what each answer of the API means for the message, `outcome`, live) that
`provider()` builds, the object a command sends through too, so a run and a command send the same
way. An asset or op takes it as `ResourceParam[TextMessages]`. Tests and the demo point `base_url`
at the local stand-in (devtools/standins/sms.py).
"""

from __future__ import annotations

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field

from invoice_pipelines.resources.messaging.text_messages import TextMessages, outcome  # noqa: F401

# what an answer means, also importable from here, beside the resource
from invoice_pipelines.resources.plain_settings import OfPlain


class TextMessageProvider(OfPlain, ConfigurableResource):
    """The message provider's settings; a run gets the plain `TextMessages` they configure
    (Dagster's `create_resource`), never this object."""

    base_url: str = Field(
        default="http://127.0.0.1:8031", description="API root (INVOICE_PIPELINES_SMS_URL)"
    )
    account: str = Field(
        default="AC-local", description="Account id (INVOICE_PIPELINES_SMS_ACCOUNT)"
    )
    token: str = Field(
        default="local-token", description="Auth token (INVOICE_PIPELINES_SMS_TOKEN)"
    )
    sender: str = Field(default="+4915100000000", description="SMS sender number")
    whatsapp_sender: str = Field(default="+4915100000001", description="WhatsApp sender number")
    timeout_seconds: float = Field(default=15.0, description="Time limit per request")

    def provider(self) -> TextMessages:
        """The plain provider these settings make: its settings by the same names."""
        return self._plain(TextMessages)

    def create_resource(self, context: InitResourceContext) -> TextMessages:  # type: ignore[override]
        return self.provider()
