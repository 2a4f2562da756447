"""The console script's commands as `--help` lists them: (command, the area whose `cli.py` adds it,
its one-line help). The one place a command's help is written: each area's `add_commands` takes it
from here (`help_of`), and `cli.py` lists the commands from here without importing the areas, so
`invoice-pipelines --help` answers before any area, SQLAlchemy or Dagster is loaded.
invoice_pipelines_tests/test_cli_lazy.py checks that this table and the areas' parsers agree."""

from __future__ import annotations

# in the order `--help` lists them; "devtools" is invoice_pipelines_devtools/cli.py
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("migrate", "db", "upgrade the database named by INVOICE_PIPELINES_DB_URL"),
    ("parse", "intake", "parse and validate one invoice file offline"),
    ("incoming", "intake", "incoming invoices: list, show, review, policy"),
    ("batch-invoice", "billing", "enqueue a batch invoicing job"),
    ("batch-status", "billing", "show a batch job"),
    ("batch-list", "billing", "list recent batch jobs, most recent first"),
    ("batch-cancel", "billing", "cancel a pending or processing batch job"),
    ("batch-retry", "billing", "new batch job over exactly the failed orders of a job"),
    (
        "batch-credit-notes",
        "billing",
        "queue credit notes for many sales invoices (a JSON file of items), each issued once",
    ),
    (
        "credit-note",
        "billing",
        "issue a credit note (type 381) for a sales invoice: in full, given lines, or a net amount per VAT rate",
    ),
    (
        "customer-skonto",
        "billing",
        "a customer's own early-payment discount steps (Skonto) instead of the organization's settings['skonto']",
    ),
    ("export", "exports", "export one organization's month (CSV + DATEV files)"),
    (
        "export-reopen",
        "exports",
        "EXPORTED -> VALIDATED (a correction); the next export is a new version",
    ),
    ("documents", "documents", "write the documents (Factur-X PDF, XRechnung) of invoices"),
    ("send-invoices", "delivery", "e-mail invoices that have documents, at most once"),
    ("batch-documents", "delivery", "queue a documents job over invoices (optional combined PDF)"),
    ("batch-send", "delivery", "queue a communications job: send invoices, once each"),
    (
        "batch-run",
        "delivery",
        "process a queued documents, communications or credit notes job here, with progress",
    ),
    ("overdue", "overdue", "notice one organization's overdue invoices now"),
    (
        "dunning-block",
        "overdue",
        "set or lift a customer's dunning block or an invoice's disputed flag",
    ),
    (
        "customer-kind",
        "overdue",
        "set customers' kind (business or consumer) for the dunning's § 288 BGB rules",
    ),
    (
        "dunning-base-rate",
        "overdue",
        "set the § 247 BGB base rate of a half-year for an organization's default interest",
    ),
    ("qbo-connect", "quickbooks", "connect an organization to its QuickBooks company"),
    ("qbo-sync", "quickbooks", "sync one organization with QuickBooks now"),
    (
        "qbo-payables",
        "quickbooks",
        "supplier invoices in QuickBooks: create vendors, expense accounts, exchange rates, waiting bills",
    ),
    (
        "qbo-import",
        "quickbooks",
        "initial import of a QuickBooks company's customers, items and vendors",
    ),
    (
        "qbo-webhooks",
        "quickbooks",
        "receive QuickBooks webhooks (POST /qbo/webhooks): each asks for a pull",
    ),
    ("qbo-conflicts", "quickbooks", "list QuickBooks sync conflicts (open ones first)"),
    ("qbo-resolve", "quickbooks", "resolve a conflict held for manual review"),
    (
        "housekeeping",
        "housekeeping",
        "remove archived uploads and export files past their retention period (JSON per organization)",
    ),
    ("seed-demo", "devtools", "create demo organizations, customers, items, orders (idempotent)"),
    (
        "qbo-simulator",
        "devtools",
        "serve the local QuickBooks Online simulator on 127.0.0.1 (controls under /_sim)",
    ),
    ("bench", "devtools", "run a benchmark scenario; JSON on the last stdout line"),
)


def help_of(command: str) -> str:
    """The one-line help of `command` (a KeyError for a command missing from the table)."""
    return _HELP[command]


_HELP = {command: text for command, _area, text in COMMANDS}
