"""Delivery as the assemblies see it: `send-invoices`, `batch-send`, `invoices list` and its
`peppol` verbs (their parsers delivery/cli.py, what they do delivery/commands.py,
delivery/invoice_listing.py and delivery/peppol_commands.py), its
assets, checks and jobs (delivery/defs.py of assets.py, checks.py, jobs.py) and its kind of batch
job (`communications`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoice_pipelines.area import AddCommands, Area, Command, QueueKind
from invoice_pipelines.core.batch_kinds import KindName

if TYPE_CHECKING:
    from types import ModuleType

    from dagster import Definitions

    from invoice_pipelines.queue.job_kind import JobKind


def _parsers() -> AddCommands:
    from invoice_pipelines.delivery.cli import add_commands

    return add_commands


def _commands() -> ModuleType:
    """The one import of what `send-invoices` and `batch-send` do (delivery/commands.py), when
    one of them runs."""
    from invoice_pipelines.delivery import commands

    return commands


def _peppol() -> ModuleType:
    """The one import of what delivery's `peppol` verbs do (delivery/peppol_commands.py), when
    one of them runs."""
    from invoice_pipelines.delivery import peppol_commands

    return peppol_commands


def _listing() -> ModuleType:
    """The one import of what `invoices list` does (delivery/invoice_listing.py), when it runs."""
    from invoice_pipelines.delivery import invoice_listing

    return invoice_listing


def _definitions() -> Definitions:
    from invoice_pipelines.delivery.defs import defs

    return defs


def _communications_kind() -> JobKind:
    from invoice_pipelines.delivery.batch import COMMUNICATIONS_KIND

    return COMMUNICATIONS_KIND


AREA = Area(
    "delivery",
    commands=(
        Command(
            "send-invoices",
            "e-mail invoices that have documents, at most once",
            run=lambda: _commands().run_send,
        ),
        Command(
            "batch-send",
            "queue a communications job: send invoices, once each",
            run=lambda: _commands().run_batch_send,
        ),
        Command(
            "peppol",
            "look a participant up in the SMP, set one's id, send one invoice at most once",
            verbs=("lookup", "participant", "send"),
            run=lambda: _peppol().run_peppol_command,
        ),
        Command(
            "invoices",
            "sales invoices: list a customer's by name, with their delivery state",
            run=lambda: _listing().run_invoices_command,
        ),
    ),
    parsers=_parsers,
    definitions=_definitions,
    kinds=(QueueKind(KindName.COMMUNICATIONS, _communications_kind),),
    # the channels' resources: resources/channels.py TRANSPORTS
    needs=frozenset(
        {"database", "document_store", "mailer", "text_messages", "peppol_access_point"}
    ),
)
