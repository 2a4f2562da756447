"""QuickBooks Online as the assemblies see it: the `qbo-*` commands (their parsers
quickbooks/cli.py, what they do quickbooks/commands.py and quickbooks/sync_commands.py), its
assets, jobs, schedules and sensors (quickbooks/defs.py) and the `quickbooks` resource."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoice_pipelines.area import AddCommands, Area, Command, Resource

if TYPE_CHECKING:
    from types import ModuleType

    from dagster import Definitions

    from invoice_pipelines.quickbooks.resources import QuickBooks
    from invoice_pipelines.quickbooks.sync.common import QboSettings


def _parsers() -> AddCommands:
    from invoice_pipelines.quickbooks.cli import add_commands

    return add_commands


def _commands() -> ModuleType:
    """The one import of what `qbo-connect`, `qbo-webhooks` and `qbo-resolve` do
    (quickbooks/commands.py), when one of them runs."""
    from invoice_pipelines.quickbooks import commands

    return commands


def _listings() -> ModuleType:
    """The one import of what `qbo-payables` and `qbo-conflicts` do (quickbooks/listings.py: no
    sync, client or document reader), when one of them runs."""
    from invoice_pipelines.quickbooks import listings

    return listings


def _syncs() -> ModuleType:
    """The one import of what `qbo-sync` and `qbo-import` do (quickbooks/sync_commands.py, every
    sync with it), when one of them runs."""
    from invoice_pipelines.quickbooks import sync_commands

    return sync_commands


def _definitions() -> Definitions:
    from invoice_pipelines.quickbooks.defs import defs

    return defs


def _quickbooks() -> QuickBooks:
    from invoice_pipelines.quickbooks.resources import quickbooks_from_env

    return quickbooks_from_env()


def _qbo_settings() -> QboSettings:
    # what the resource hands a run (`QuickBooks.settings()`); for a command the local QuickBooks of
    # `make run` stands in for the variables that are not set
    from invoice_pipelines.quickbooks.sync.common import QboSettings

    return QboSettings.from_env()


AREA = Area(
    "quickbooks",
    commands=(
        Command(
            "qbo-connect",
            "connect an organization to its QuickBooks company",
            run=lambda: _commands().run_connect,
        ),
        Command(
            "qbo-sync",
            "sync one organization with QuickBooks now",
            run=lambda: _syncs().run_sync,
        ),
        Command(
            "qbo-payables",
            "supplier invoices in QuickBooks: create vendors, expense accounts, exchange rates, "
            "waiting bills",
            run=lambda: _listings().run_payables,
        ),
        Command(
            "qbo-import",
            "initial import of a QuickBooks company's customers, items and vendors",
            run=lambda: _syncs().run_import,
        ),
        Command(
            "qbo-webhooks",
            "receive QuickBooks webhooks (POST /qbo/webhooks): each asks for a pull",
            run=lambda: _commands().run_webhooks,
        ),
        Command(
            "qbo-conflicts",
            "list QuickBooks sync conflicts (open ones first)",
            run=lambda: _listings().run_conflicts,
        ),
        Command(
            "qbo-resolve",
            "resolve a conflict held for manual review",
            run=lambda: _commands().run_resolve,
        ),
    ),
    parsers=_parsers,
    definitions=_definitions,
    provides=lambda: {"quickbooks": Resource(_quickbooks, _qbo_settings)},
    needs=frozenset({"database", "upload_store", "letter_writer", "quickbooks"}),
)
