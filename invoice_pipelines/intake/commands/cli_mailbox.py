"""The parser of `invoice-pipelines mailbox`: `set`, `show` and `remove` an organization's invoice
mailbox, argparse alone. What each does is in intake/commands/mailbox_commands.py, named by
intake/area.py's table."""

from __future__ import annotations

from invoice_pipelines.cli_args import port


def add_mailbox_commands(sub) -> None:
    mailbox = sub.add_parser("mailbox")
    mailbox.set_defaults(parser=mailbox)
    verbs = mailbox.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser(
        "set",
        help="read the organization's invoices from an IMAP folder (replaces its mailbox); the "
        "password by the NAME of the environment variable that holds it, never the password",
    )
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--host", required=True, help="the IMAP server")
    p.add_argument("--port", type=port, help="993 with --tls tls, else 143")
    p.add_argument("--tls", choices=("tls", "starttls", "none"), default="tls")
    p.add_argument("--user", required=True, help="the account's login name")
    p.add_argument(
        "--secret-name",
        required=True,
        help="the environment variable (of the code location) that holds the password",
    )
    p.add_argument("--folder", default="INBOX", help="the folder to read (INBOX)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--processed-folder", help="where read messages are moved")
    where.add_argument("--processed-flag", help="the keyword read messages get, e.g. $Invoiced")
    p.add_argument(
        "--address",
        help="the recipient address of this organization's mail where several organizations "
        "share the account and folder (e.g. invoices+acme@example.com)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p = verbs.add_parser("show", help="the organization's mailbox (never its password)")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p = verbs.add_parser("remove", help="stop reading the organization's mailbox")
    p.add_argument("--org", required=True, help="organization slug or id")
