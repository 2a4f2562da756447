"""The `text_messages` resource: SMS and WhatsApp through a Twilio-style REST API. It wraps the plain
`resources.text_messages.TextMessages` (where the requests and what each answer of the API means
for the message, `outcome`, live) whose settings Dagster shows and configures: every session and
message goes to the provider `provider()` gives, so a run and a command (which sends through the
plain `TextMessages` without Dagster) send the same way. Tests and the demo point `base_url` at
the local stand-in (devtools/standins/sms.py).
"""

from __future__ import annotations

import requests
from dagster import ConfigurableResource
from pydantic import Field

# what an answer means, also importable from here, beside the resource
from invoice_pipelines.resources.text_messages import TextMessages, outcome  # noqa: F401
from invoice_pipelines.settings import env, env_var_or_default


class TextMessageProvider(ConfigurableResource):
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
        """The plain provider this resource wraps: its settings by the same names."""
        return TextMessages(**{name: getattr(self, name) for name in type(self).model_fields})

    def session(self) -> requests.Session:
        return self.provider().session()

    def send_text(self, session: requests.Session, to: str, body: str, *, whatsapp: bool) -> str:
        """Send one message; the provider's message id, or SendError (see resources/text_messages)."""
        return self.provider().send_text(session, to, body, whatsapp=whatsapp)


def provider_from_env() -> TextMessageProvider:

    return TextMessageProvider(
        base_url=env("INVOICE_PIPELINES_SMS_URL"),
        account=env("INVOICE_PIPELINES_SMS_ACCOUNT"),
        token=env_var_or_default("INVOICE_PIPELINES_SMS_TOKEN"),
    )
