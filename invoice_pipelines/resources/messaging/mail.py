"""The `mailer` resource: SMTP with STARTTLS or SSL and login, one connection for many messages.
Dagster shows and configures its settings and hands a run the plain `resources.messaging.smtp.Smtp` (where
the connection, its security and how failures are sorted live) that `smtp()` builds, the object a
command sends through too, so a run and a command send the same way. An asset or op takes it as
`ResourceParam[Smtp]`; a run that would send refuses a wrong security setting when the resource
starts, before any message.

Production points it at the organization's mail server through settings (INVOICE_PIPELINES_SMTP_*);
tests and the demo point it at the loopback SMTP stand-in (devtools/standins/smtp.py).
"""

from __future__ import annotations

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field

# what sending raises and sends, also importable from here, beside the resource
from invoice_pipelines.resources.messaging.mail_types import OutgoingMail, SendError  # noqa: F401
from invoice_pipelines.resources.messaging.smtp import PASSWORD_VAR, SECURITY, SECURITY_VAR, Smtp  # noqa: F401
from invoice_pipelines.resources.plain_settings import OfPlain


class SmtpMailer(OfPlain, ConfigurableResource):
    """The mail server's settings; a run gets the plain `Smtp` they configure (Dagster's
    `create_resource`), never this object."""

    host: str = Field(default="127.0.0.1", description="SMTP server (INVOICE_PIPELINES_SMTP_HOST)")
    port: int = Field(default=1025, description="SMTP port (INVOICE_PIPELINES_SMTP_PORT)")
    security: str = Field(
        default="none",
        description="none, starttls or ssl, any case; anything else is refused "
        "(INVOICE_PIPELINES_SMTP_SECURITY)",
    )
    username: str = Field(default="", description="Login; empty: no login")
    password: str = Field(default="", description="Password (INVOICE_PIPELINES_SMTP_PASSWORD)")
    sender: str = Field(
        default="rechnung@localhost", description="From address (INVOICE_PIPELINES_SMTP_FROM)"
    )
    timeout_seconds: float = Field(default=30.0, description="Socket timeout per SMTP command")

    def smtp(self) -> Smtp:
        """The plain server these settings make: its settings by the same names."""
        return self._plain(Smtp)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # a run that would send refuses a wrong setting when it starts, before any message
        self.smtp().checked_security()

    def create_resource(self, context: InitResourceContext) -> Smtp:  # type: ignore[override]
        return self.smtp()
