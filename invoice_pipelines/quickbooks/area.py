"""QuickBooks Online as the assemblies see it: the `qbo-*` commands (quickbooks/cli.py), its
assets, jobs, schedules and sensors (quickbooks/defs.py) and the `quickbooks` resource."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoice_pipelines.area import AddCommands, Area, Command, Resource

if TYPE_CHECKING:
    from dagster import Definitions

    from invoice_pipelines.quickbooks.resources import QuickBooks
    from invoice_pipelines.quickbooks.sync.common import QboSettings


def _parsers() -> AddCommands:
    from invoice_pipelines.quickbooks.cli import add_commands

    return add_commands


def _definitions() -> Definitions:
    from invoice_pipelines.quickbooks.defs import defs

    return defs


def _quickbooks() -> QuickBooks:
    from invoice_pipelines.quickbooks.resources import quickbooks_from_env

    return quickbooks_from_env()


def _qbo_settings() -> QboSettings:
    # what the resource wraps (`QuickBooks.settings()`); for a command the local QuickBooks of
    # `make run` stands in for the variables that are not set
    from invoice_pipelines.quickbooks.sync.common import QboSettings

    return QboSettings.from_env()


AREA = Area(
    "quickbooks",
    commands=(
        Command("qbo-connect", "connect an organization to its QuickBooks company"),
        Command("qbo-sync", "sync one organization with QuickBooks now"),
        Command(
            "qbo-payables",
            "supplier invoices in QuickBooks: create vendors, expense accounts, exchange rates, "
            "waiting bills",
        ),
        Command(
            "qbo-import", "initial import of a QuickBooks company's customers, items and vendors"
        ),
        Command(
            "qbo-webhooks", "receive QuickBooks webhooks (POST /qbo/webhooks): each asks for a pull"
        ),
        Command("qbo-conflicts", "list QuickBooks sync conflicts (open ones first)"),
        Command("qbo-resolve", "resolve a conflict held for manual review"),
    ),
    parsers=_parsers,
    definitions=_definitions,
    provides=lambda: {"quickbooks": Resource(_quickbooks, _qbo_settings)},
    needs=frozenset({"database", "upload_store", "letter_writer", "quickbooks"}),
)
