"""The `text_messages` resource: SMS and WhatsApp through a Twilio-style REST API.

One provider implementation over HTTP (`POST {base_url}/2010-04-01/Accounts/{account}/Messages.json`
with `To`, `From`, `Body`, basic auth; WhatsApp numbers carry a `whatsapp:` prefix). Answers are
sorted like the mailer's: 429 (rate limit) and 5xx are temporary, other 4xx permanent (an invalid
number, a blocked recipient), a request that breaks or times out after it was sent has an unknown
outcome. Tests and the demo point `base_url` at the local stand-in (standins/sms.py).
"""

from __future__ import annotations

import requests
from dagster import ConfigurableResource
from pydantic import Field

from invoice_pipelines.resources.mail import SendError


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

    def session(self) -> requests.Session:
        session = requests.Session()
        session.auth = (self.account, self.token)
        return session

    def send_text(self, session: requests.Session, to: str, body: str, *, whatsapp: bool) -> str:
        """Send one message; the provider's message id, or SendError."""
        prefix = "whatsapp:" if whatsapp else ""
        url = f"{self.base_url.rstrip('/')}/2010-04-01/Accounts/{self.account}/Messages.json"
        data = {
            "To": f"{prefix}{to}",
            "From": f"{prefix}{self.whatsapp_sender if whatsapp else self.sender}",
            "Body": body,
        }
        try:
            response = session.post(url, data=data, timeout=self.timeout_seconds)
        except requests.ConnectionError as exc:
            if _not_sent(exc):
                raise SendError(
                    f"cannot reach the message provider: {exc}", temporary=True
                ) from exc
            raise SendError(
                f"the request to the message provider broke: {exc}", temporary=False, unknown=True
            ) from exc
        except requests.Timeout as exc:
            raise SendError(
                f"the message provider did not answer in time: {exc}", temporary=False, unknown=True
            ) from exc
        if response.status_code in (200, 201):
            return str(response.json().get("sid", ""))
        try:
            detail = response.json()
        except ValueError:
            detail = {"message": response.text[:200]}
        message = (
            f"{response.status_code} {detail.get('code', '')} {detail.get('message', '')}".strip()
        )
        temporary = response.status_code == 429 or response.status_code >= 500
        raise SendError(
            f"the provider refused the message: {message}",
            temporary=temporary,
            code=response.status_code,
        )


def _not_sent(exc: requests.ConnectionError) -> bool:
    """A refused connection never carried the request: safe to try again."""
    text = str(exc)
    return "Connection refused" in text or "NewConnectionError" in text


def provider_from_env() -> TextMessageProvider:
    from invoice_pipelines.settings import env, env_var_or_default

    return TextMessageProvider(
        base_url=env("INVOICE_PIPELINES_SMS_URL"),
        account=env("INVOICE_PIPELINES_SMS_ACCOUNT"),
        token=env_var_or_default("INVOICE_PIPELINES_SMS_TOKEN"),
    )
