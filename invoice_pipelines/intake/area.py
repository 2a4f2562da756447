"""The intake as the assemblies see it: `parse`, `incoming`, `suppliers` and its `peppol` verbs
(their parsers intake/commands/cli.py, cli_suppliers.py and cli_peppol.py, what they do
intake/commands/parse_command.py, run.py, review_command.py, supplier_commands.py and
peppol_commands.py), its assets, jobs, sensors and checks (intake/defs.py), and the
`document_parser` its runs parse with."""

from __future__ import annotations

from invoice_pipelines.area_parts import DATABASES, Area, Command, Resource

AREA = Area(
    "intake",
    commands=(
        Command(
            "parse",
            "parse and validate one invoice file offline",
            run="invoice_pipelines.intake.commands.parse_command:run_parse_command",
        ),
        Command(
            "incoming",
            "incoming invoices: list, show, review, policy, uploads",
            run="invoice_pipelines.intake.commands.run:run_incoming_command",
            # the reading verbs never import the writing one's module
            verb_runs={
                "review": "invoice_pipelines.intake.commands.review_command:run_review_command"
            },
        ),
        Command(
            "suppliers",
            "the supplier register: list, show, add, change, link-vendor, policy",
            run="invoice_pipelines.intake.commands.supplier_commands:run_suppliers_command",
            # the learned layout's verb never loads the register's other verbs' module
            verb_runs={
                "layout": "invoice_pipelines.intake.commands.layout_command:run_layout_command"
            },
        ),
        Command(
            "mailbox",
            "the organization's invoice mailbox (IMAP): set, show, remove",
            run="invoice_pipelines.intake.commands.mailbox_commands:run_mailbox_command",
        ),
        Command(
            "peppol",
            "Peppol: receive a document an access point forwarded, once; route held ones; "
            "listen for them",
            verbs=("receive", "route", "listen"),
            run="invoice_pipelines.intake.commands.peppol_commands:run_peppol_command",
        ),
    ),
    parsers="invoice_pipelines.intake.commands.cli:add_commands",
    definitions="invoice_pipelines.intake.defs:defs",
    # a command parses in its own process (`parse`): no `document_parser` for it
    provides={
        "document_parser": Resource(
            "invoice_pipelines.intake.parser_resource:document_parser", commands=False
        )
    },
    needs=DATABASES
    | {"upload_store", "ocr_engine", "document_parser", "mailer", "peppol_access_point"},
)
