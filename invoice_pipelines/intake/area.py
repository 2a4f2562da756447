"""The intake as the assemblies see it: `parse`, `incoming`, `suppliers` and its `peppol` verbs
(their parsers intake/cli.py, what they do intake/parse_command.py, commands.py,
review_command.py, supplier_commands.py and peppol_commands.py), its assets, jobs, sensors and
checks (intake/defs.py), and the `document_parser` its runs parse with."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoice_pipelines.area import AddCommands, Area, Command, Resource

if TYPE_CHECKING:
    from types import ModuleType

    from dagster import Definitions

    from invoice_pipelines.intake.parser_resource import DocumentParser


def _parsers() -> AddCommands:
    from invoice_pipelines.intake.cli import add_commands

    return add_commands


def _parse() -> ModuleType:
    """The one import of what `parse` does (intake/parse_command.py: the parse workers), when it
    runs."""
    from invoice_pipelines.intake import parse_command

    return parse_command


def _commands() -> ModuleType:
    """The one import of what `incoming` does (intake/commands.py), when it runs."""
    from invoice_pipelines.intake import commands

    return commands


def _review() -> ModuleType:
    """The one import of what `incoming review` does (intake/review_command.py), when it runs:
    the reading verbs of `incoming` never import it."""
    from invoice_pipelines.intake import review_command

    return review_command


def _suppliers() -> ModuleType:
    """The one import of what `suppliers` does (intake/supplier_commands.py), when it runs."""
    from invoice_pipelines.intake import supplier_commands

    return supplier_commands


def _peppol() -> ModuleType:
    """The one import of what the intake's `peppol` verbs do (intake/peppol_commands.py), when
    one of them runs."""
    from invoice_pipelines.intake import peppol_commands

    return peppol_commands


def _definitions() -> Definitions:
    from invoice_pipelines.intake.defs import defs

    return defs


def _document_parser() -> DocumentParser:
    from invoice_pipelines.intake.parser_resource import DocumentParser
    from invoice_pipelines.resources.parse_server import KEEP_WARM_SECONDS
    from invoice_pipelines.settings import max_upload_bytes, positive_number

    return DocumentParser(
        timeout_seconds=float(positive_number("INVOICE_PIPELINES_PARSE_TIMEOUT_SECONDS", float)),
        max_upload_bytes=max_upload_bytes(),
        # the runs share one warm pool (resources/parse_server.py), not one warm-up each
        keep_warm_seconds=KEEP_WARM_SECONDS,
    )


AREA = Area(
    "intake",
    commands=(
        Command(
            "parse",
            "parse and validate one invoice file offline",
            run=lambda: _parse().run_parse_command,
        ),
        Command(
            "incoming",
            "incoming invoices: list, show, review, policy, uploads",
            run=lambda: _commands().run_incoming_command,
            verb_runs={"review": lambda: _review().run_review_command},
        ),
        Command(
            "suppliers",
            "the supplier register: list, show, add, change, link-vendor, policy",
            run=lambda: _suppliers().run_suppliers_command,
        ),
        Command(
            "peppol",
            "Peppol: receive a document an access point forwarded, once; route held ones; "
            "listen for them",
            verbs=("receive", "route", "listen"),
            run=lambda: _peppol().run_peppol_command,
        ),
    ),
    parsers=_parsers,
    definitions=_definitions,
    # a command parses in its own process (`parse`): no `document_parser` for it
    provides=lambda: {"document_parser": Resource(_document_parser)},
    needs=frozenset(
        {
            "database",
            "upload_store",
            "ocr_engine",
            "document_parser",
            "mailer",
            "peppol_access_point",
        }
    ),
)
