"""Delivery as the assemblies see it: `send-invoices`, `batch-send`, `invoices list` and its
`peppol` verbs (their parsers delivery/commands/cli.py, what they do delivery/commands/run.py,
delivery/commands/invoice_listing.py and delivery/commands/peppol_commands.py), its assets, checks and jobs
(delivery/defs.py of assets.py, checks.py, jobs.py) and its kind of batch job
(`communications`)."""

from __future__ import annotations

from invoice_pipelines.area_parts import DATABASES, Area, Command, QueueKind
from invoice_pipelines.core.batch_kinds import KindName

AREA = Area(
    "delivery",
    commands=(
        Command(
            "send-invoices",
            "e-mail invoices that have documents, at most once",
            run="invoice_pipelines.delivery.commands.run:run_send",
        ),
        Command(
            "batch-send",
            "queue a communications job: send invoices, once each",
            run="invoice_pipelines.delivery.commands.run:run_batch_send",
        ),
        Command(
            "peppol",
            "look a participant up in the SMP, set one's id, send one invoice at most once",
            verbs=("lookup", "participant", "send"),
            run="invoice_pipelines.delivery.commands.peppol_commands:run_peppol_command",
        ),
        Command(
            "invoices",
            "sales invoices: list a customer's by name, with their delivery state",
            run="invoice_pipelines.delivery.commands.invoice_listing:run_invoices_command",
        ),
    ),
    parsers="invoice_pipelines.delivery.commands.cli:add_commands",
    definitions="invoice_pipelines.delivery.defs:defs",
    kinds=(
        QueueKind(
            KindName.COMMUNICATIONS, "invoice_pipelines.delivery.domain.batch:COMMUNICATIONS_KIND"
        ),
    ),
    # the channels' resources: resources/messaging/channels.py TRANSPORTS
    needs=DATABASES | {"document_store", "mailer", "text_messages", "peppol_access_point"},
)
