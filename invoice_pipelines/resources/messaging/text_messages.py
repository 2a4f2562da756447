"""SMS and WhatsApp through a Twilio-style REST API in plain Python (`TextMessages`), and what each
answer of that API means for the message (`outcome`, the one place that decides it, for invoices
and dunning notices alike). The `text_messages` resource (`resources/messaging/text_message_provider.py`) configures it
and hands it to a run; a command gets it without Dagster: both send through this class.

One provider implementation over HTTP (`POST {base_url}/2010-04-01/Accounts/{account}/Messages.json`
with `To`, `From`, `Body`, basic auth; WhatsApp numbers carry a `whatsapp:` prefix). Tests and the
demo point `base_url` at the local stand-in (devtools/standins/sms.py).

An answer is sorted by whether the provider may have taken the message, because a message it took
goes out whatever we do next, and sending it again would put a second one on the customer's phone:

- sent: a 2xx carrying the API's JSON with the message id;
- refused for now (`temporary`; the outbox may try again later): no connection was made (refused,
  no such host, connect timeout), a 429 (the provider's rate limit turns the request away before
  taking it), a 408, or a 503 that says when to come back (Retry-After: a deliberate "not now" of the
  service; a 503 without it may be a gateway giving up on the service after passing the request on);
- refused for good (failed): any other 4xx (invalid number, wrong credentials, a proxy's 403: the
  request went no further), and a 3xx (the configured URL is not the API's);
- unknown (`unknown`; never sent again on its own, see `invoice_pipelines.outbox`): every answer
  after which the message may have been taken: 500, 502, 504 and every other 5xx, a 2xx that is not
  the API's JSON, a connection that broke or timed out once the request was on its way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import requests

from invoice_pipelines.resources.http_faults import never_connected
from invoice_pipelines.resources.messaging.mail_types import SendError
from invoice_pipelines.settings import NOW, Reading


@dataclass(frozen=True, kw_only=True)
class TextMessages:
    """A message provider's account: INVOICE_PIPELINES_SMS_* (`text_messages`)."""

    base_url: str = field(
        default="http://127.0.0.1:8031",
        metadata={"description": "API root (INVOICE_PIPELINES_SMS_URL)"},
    )
    account: str = field(
        default="AC-local", metadata={"description": "Account id (INVOICE_PIPELINES_SMS_ACCOUNT)"}
    )
    token: str = field(
        default="local-token",
        repr=False,
        metadata={"description": "Auth token (INVOICE_PIPELINES_SMS_TOKEN)"},
    )
    sender: str = field(default="+4915100000000", metadata={"description": "SMS sender number"})
    whatsapp_sender: str = field(
        default="+4915100000001", metadata={"description": "WhatsApp sender number"}
    )
    timeout_seconds: float = field(default=15.0, metadata={"description": "Time limit per request"})

    def session(self) -> requests.Session:
        session = requests.Session()
        session.auth = (self.account, self.token)
        return session

    def send_text(self, session: requests.Session, to: str, body: str, *, whatsapp: bool) -> str:
        """Send one message; the provider's message id, or SendError (see the module)."""
        prefix = "whatsapp:" if whatsapp else ""
        url = f"{self.base_url.rstrip('/')}/2010-04-01/Accounts/{self.account}/Messages.json"
        data = {
            "To": f"{prefix}{to}",
            "From": f"{prefix}{self.whatsapp_sender if whatsapp else self.sender}",
            "Body": body,
        }
        try:
            # a redirect is an answer of its own (outcome): re-posting the message elsewhere
            # could send it twice, and a moved API is a configuration to fix
            response = session.post(
                url, data=data, timeout=self.timeout_seconds, allow_redirects=False
            )
        except requests.RequestException as exc:
            raise _broken(exc) from exc
        return outcome(response)


def outcome(response: requests.Response) -> str:
    """The message id of an accepted message, else SendError: temporary when the provider turned
    the message away for now, unknown when it may have taken it, else failed for good."""
    status = response.status_code
    if 200 <= status < 300:
        try:
            sid = response.json().get("sid")
        except (ValueError, AttributeError):
            sid = None
        if isinstance(sid, str) and sid:
            return sid
        raise SendError(
            f"the message provider answered {status} without a message id "
            f"({_excerpt(response)}): it may have taken the message",
            temporary=False,
            code=status,
            unknown=True,
        )
    detail = _excerpt(response)
    if status >= 500 and not (status == 503 and response.headers.get("Retry-After")):
        raise SendError(
            f"the message provider answered {status} ({detail}) after the message reached it: "
            "it may have taken the message",
            temporary=False,
            code=status,
            unknown=True,
        )
    if 300 <= status < 400:
        raise SendError(
            f"the message provider answered {status} (a redirect to "
            f"{response.headers.get('Location', 'nowhere')!r}); check INVOICE_PIPELINES_SMS_URL",
            temporary=False,
            code=status,
        )
    raise SendError(
        f"the provider refused the message: {status} {detail}".strip(),
        temporary=status in (408, 429, 503),
        code=status,
    )


def _excerpt(response: requests.Response) -> str:
    """The provider's error code and message, or the start of whatever else came back."""
    try:
        detail = response.json()
    except ValueError:
        detail = None
    if isinstance(detail, dict) and ("code" in detail or "message" in detail):
        return f"{detail.get('code', '')} {detail.get('message', '')}".strip()
    text = " ".join(response.text[:200].split())
    return text or "no body"


def _broken(exc: requests.RequestException) -> SendError:
    """A request that got no answer: refused for now when it never left (no connection was
    made), else unknown (it may have reached the provider)."""
    if never_connected(exc):
        return SendError(f"cannot reach the message provider: {exc}", temporary=True)
    if isinstance(exc, requests.Timeout):
        return SendError(
            f"the message provider did not answer in time: {exc}", temporary=False, unknown=True
        )
    return SendError(
        f"the request to the message provider broke: {exc}", temporary=False, unknown=True
    )


def text_messages(read: Reading = NOW) -> TextMessages:
    """The provider INVOICE_PIPELINES_SMS_* configure: the one builder of the `text_messages`
    resource (resources/area.py). A command sends through it (the token read now); a run's
    resource wraps it (`resources.messaging.text_message_provider.TextMessageProvider.of`, the token an EnvVar)."""

    return TextMessages(
        base_url=read.value("INVOICE_PIPELINES_SMS_URL"),
        account=read.value("INVOICE_PIPELINES_SMS_ACCOUNT"),
        token=read.secret("INVOICE_PIPELINES_SMS_TOKEN"),
    )
