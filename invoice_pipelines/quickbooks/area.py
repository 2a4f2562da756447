"""QuickBooks Online as the assemblies see it: the `qbo-*` commands (their parsers
quickbooks/commands/cli.py, what they do quickbooks/commands/run.py, quickbooks/commands/listings.py: no sync, client
or document reader, and quickbooks/commands/sync_commands.py, every sync with it), its assets, jobs,
schedules and sensors (quickbooks/defs.py) and the `quickbooks` resource."""

from __future__ import annotations

from invoice_pipelines.area_parts import DATABASES, Area, Command, Resource

AREA = Area(
    "quickbooks",
    commands=(
        Command(
            "qbo-connect",
            "connect an organization to its QuickBooks company",
            run="invoice_pipelines.quickbooks.commands.run:run_connect",
        ),
        Command(
            "qbo-sync",
            "sync one organization with QuickBooks now",
            run="invoice_pipelines.quickbooks.commands.sync_commands:run_sync",
        ),
        Command(
            "qbo-payables",
            "supplier invoices in QuickBooks: create vendors, expense accounts, exchange rates, "
            "waiting bills",
            run="invoice_pipelines.quickbooks.commands.listings:run_payables",
        ),
        Command(
            "qbo-import",
            "initial import of a QuickBooks company's customers, items and vendors",
            run="invoice_pipelines.quickbooks.commands.sync_commands:run_import",
        ),
        Command(
            "qbo-webhooks",
            "receive QuickBooks webhooks (POST /qbo/webhooks): each asks for a pull",
            run="invoice_pipelines.quickbooks.commands.run:run_webhooks",
        ),
        Command(
            "qbo-conflicts",
            "list QuickBooks sync conflicts (open ones first)",
            run="invoice_pipelines.quickbooks.commands.listings:run_conflicts",
        ),
        Command(
            "qbo-resolve",
            "resolve a conflict held for manual review",
            run="invoice_pipelines.quickbooks.commands.run:run_resolve",
        ),
    ),
    parsers="invoice_pipelines.quickbooks.commands.cli:add_commands",
    definitions="invoice_pipelines.quickbooks.defs:defs",
    provides={
        # for a command, the local QuickBooks of `make run` stands in for the variables not set
        "quickbooks": Resource(
            "invoice_pipelines.quickbooks.domain.sync.common:qbo_settings",
            for_runs="invoice_pipelines.quickbooks.resources:QuickBooks.of",
        )
    },
    needs=DATABASES | {"upload_store", "letter_writer", "quickbooks"},
)
