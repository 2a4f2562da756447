"""Dunning as the assemblies see it: `overdue`, `dunning-block`, `customer-kind` and
`dunning-base-rate` (their parsers overdue/cli.py, what they do overdue/commands.py), its
asset, schedule and check (overdue/defs.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoice_pipelines.area import AddCommands, Area, Command

if TYPE_CHECKING:
    from types import ModuleType

    from dagster import Definitions


def _parsers() -> AddCommands:
    from invoice_pipelines.overdue.cli import add_commands

    return add_commands


def _commands() -> ModuleType:
    """The one import of what the commands do (overdue/commands.py), when one of them runs."""
    from invoice_pipelines.overdue import commands

    return commands


def _definitions() -> Definitions:
    from invoice_pipelines.overdue.defs import defs

    return defs


AREA = Area(
    "overdue",
    commands=(
        Command(
            "overdue",
            "notice one organization's overdue invoices now",
            run=lambda: _commands().run_overdue_command,
        ),
        Command(
            "dunning-block",
            "set or lift a customer's dunning block or an invoice's disputed flag",
            run=lambda: _commands().run_block_command,
        ),
        Command(
            "customer-kind",
            "set customers' kind (business or consumer) for the dunning's § 288 BGB rules",
            run=lambda: _commands().run_kind_command,
        ),
        Command(
            "dunning-base-rate",
            "set the § 247 BGB base rate of a half-year for an organization's default interest",
            run=lambda: _commands().run_base_rate_command,
        ),
    ),
    parsers=_parsers,
    definitions=_definitions,
    # the letters are the documents area's `letter_writer`; the channels' resources send them
    needs=frozenset({"database", "document_store", "letter_writer", "mailer", "text_messages"}),
)
