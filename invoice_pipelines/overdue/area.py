"""Dunning as the assemblies see it: `overdue`, `dunning-block`, `customer-kind` and
`dunning-base-rate` (overdue/cli.py), its asset, schedule and check (overdue/defs.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoice_pipelines.area import AddCommands, Area, Command

if TYPE_CHECKING:
    from dagster import Definitions


def _parsers() -> AddCommands:
    from invoice_pipelines.overdue.cli import add_commands

    return add_commands


def _definitions() -> Definitions:
    from invoice_pipelines.overdue.defs import defs

    return defs


AREA = Area(
    "overdue",
    commands=(
        Command("overdue", "notice one organization's overdue invoices now"),
        Command(
            "dunning-block", "set or lift a customer's dunning block or an invoice's disputed flag"
        ),
        Command(
            "customer-kind",
            "set customers' kind (business or consumer) for the dunning's § 288 BGB rules",
        ),
        Command(
            "dunning-base-rate",
            "set the § 247 BGB base rate of a half-year for an organization's default interest",
        ),
    ),
    parsers=_parsers,
    definitions=_definitions,
    # the letters are the documents area's `letter_writer`; the channels' resources send them
    needs=frozenset({"database", "document_store", "letter_writer", "mailer", "text_messages"}),
)
