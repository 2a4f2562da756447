"""The `mailer` resource: SMTP with STARTTLS or SSL and login, one connection for many messages.
Its settings are declared once, on the plain `resources.messaging.smtp.Smtp` (where the
connection, its security and how failures are sorted live); Dagster shows and configures them
here and hands a run the `Smtp` they make, the object a command sends through too, so a run and
a command send the same way. An asset or op takes it as `ResourceParam[Smtp]`; a run that would
send refuses a wrong security setting when the resource starts, before any message.

Production points it at the organization's mail server through settings (INVOICE_PIPELINES_SMTP_*);
tests and the demo point it at the loopback SMTP stand-in (devtools/standins/smtp.py).
"""

from __future__ import annotations

# what sending raises and sends, also importable from here, beside the resource
from invoice_pipelines.resources.messaging.mail_types import OutgoingMail, SendError  # noqa: F401
from invoice_pipelines.resources.messaging.smtp import PASSWORD_VAR, SECURITY, SECURITY_VAR, Smtp  # noqa: F401
from invoice_pipelines.resources.plain_settings import dagster_resource

SmtpMailer = dagster_resource(
    Smtp,
    "SmtpMailer",
    doc="The mail server's settings; a run gets the plain `Smtp` they configure, never this "
    "object.",
    made_by="smtp",
    check=Smtp.checked_security,
)
