"""Dunning as the assemblies see it: `overdue`, `dunning-block`, `customer-kind` and
`dunning-base-rate` (their parsers overdue/commands/cli.py, what they do overdue/commands/run.py), its
asset, sensor and check (overdue/defs.py)."""

from __future__ import annotations

from invoice_pipelines.area_parts import DATABASES, Area, Command

AREA = Area(
    "overdue",
    commands=(
        Command(
            "overdue",
            "notice one organization's overdue invoices now",
            run="invoice_pipelines.overdue.commands.run:run_overdue_command",
        ),
        Command(
            "dunning-block",
            "set or lift a customer's dunning block or an invoice's disputed flag",
            run="invoice_pipelines.overdue.commands.run:run_block_command",
        ),
        Command(
            "customer-kind",
            "set customers' kind (business or consumer) for the dunning's § 288 BGB rules",
            run="invoice_pipelines.overdue.commands.run:run_kind_command",
        ),
        Command(
            "dunning-base-rate",
            "set the § 247 BGB base rate of a half-year for an organization's default interest",
            run="invoice_pipelines.overdue.commands.run:run_base_rate_command",
        ),
    ),
    parsers="invoice_pipelines.overdue.commands.cli:add_commands",
    definitions="invoice_pipelines.overdue.defs:defs",
    # the letters are the documents area's `letter_writer`; the channels' resources send them
    needs=DATABASES | {"document_store", "letter_writer", "mailer", "text_messages"},
)
