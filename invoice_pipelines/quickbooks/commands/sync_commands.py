"""What `qbo-sync` and `qbo-import` do: sync one organization with QuickBooks now, and the
initial import of a company's customers, items and vendors; the same functions the Dagster
assets call. Their parsers are quickbooks/commands/cli.py's; quickbooks/area.py's table names each
function here, and the console script imports this module (and every sync with it) only when
one of them runs. Each tells Dagster what its syncs changed, for the organization's partition of
their assets (resources/dagster_instance/dagster_ui.py: a runless materialization with the figures a run records,
quickbooks/domain/figures.py), so the UI shows a payment pulled now, not the last scheduled run's, and
the checks of what they changed evaluated on it (check_findings.py: qbo_customers' and
qbo_bills' checks, the bills' after a bill payment pull too)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from invoice_pipelines.core.qbo_entities import SYNCED
from invoice_pipelines.lib.read_only import writable
from invoice_pipelines.quickbooks.commands.cli import WHAT
from invoice_pipelines.quickbooks.domain.check_findings import CHECKS_ALSO_READ, check_events
from invoice_pipelines.quickbooks.domain.errors import QboError
from invoice_pipelines.quickbooks.domain.figures import one_organization
from invoice_pipelines.quickbooks.domain.sync.bills import letter_pdf
from invoice_pipelines.quickbooks.domain.sync.common import RealmBusy, open_client, realm_lease
from invoice_pipelines.quickbooks.domain.sync.customers import CustomerSync
from invoice_pipelines.quickbooks.domain.sync.invoices import enqueue
from invoice_pipelines.quickbooks.domain.sync.items import ItemSync
from invoice_pipelines.quickbooks.domain.sync.vendors import VendorSync
from invoice_pipelines.quickbooks.domain.syncs import EXTRA_COUNTS, NEEDS_FILES, SYNCS
from invoice_pipelines.resources.dagster_instance.dagster_ui import (
    RECORDED_BY,
    AssetEvent,
    CheckEvent,
    tell_dagster,
)

# each sync's asset (qbo_<sync>), by the sync's name
ASSETS = {entity.sync: entity.asset for entity in SYNCED}


def _work(what: str):
    return SYNCS[what]


def _busy(exc: Exception) -> int:
    print(f"invoice-pipelines: {exc}; try again later", file=sys.stderr)
    return 1


def _owner() -> str:
    return f"cli-{os.getpid()}-{os.urandom(4).hex()}"


def run_sync(args: argparse.Namespace) -> int:
    engine = args.resources.database
    org = writable(args.organization)
    result, status = {}, 0
    if args.invoice:
        if args.what != "invoices":
            print("invoice-pipelines: --invoice pushes sales invoices: use it with --what invoices",
                  file=sys.stderr)  # fmt: skip
            return 2
        result["named"] = enqueue(engine, org.id, named=args.invoice)
    try:
        return _sync_now(engine, org, args, result, status)
    except RealmBusy as exc:
        return _busy(exc)


def _options(what: str, args: argparse.Namespace) -> dict:
    """What a sync takes beside the client (syncs.NEEDS_FILES): the bill push reads originals
    from the upload store and writes readable PDFs with the documents area's letter writer, as
    the runs' resources do."""
    if what not in NEEDS_FILES:
        return {}
    # the writer is made at its first letter (the documents area's, as the runs get it)
    return {
        "read_upload": args.resources.upload_store.read,
        "write_letter": letter_pdf(lambda: args.resources.letter_writer),
    }


def _sync_now(engine, org, args, result, status) -> int:
    synced: list = []
    with (
        open_client(engine, org.id, args.resources.quickbooks) as client,
        realm_lease(engine, org.id, _owner()),
    ):
        for what in WHAT if args.what == "all" else (args.what,):
            try:
                counts = _work(what)(engine, org, client, **_options(what, args))
            except QboError as exc:
                result[what] = {"error": str(exc)}
                status = 1
                continue
            result[what] = {**counts.as_dict(), "errors": counts.errors[:20]}
            synced.append((what, counts))
            # what it did to another entity on its way (the bill push's vendors), counted apart
            for other, done in counts.beside.items():
                result[what][f"{other}_on_the_way"] = done.as_dict()
    print(json.dumps({"organization": org.slug, **result}, default=str))
    tell_dagster(_events(args.resources, org.slug, synced, "qbo-sync"))
    return status


def _events(resources, slug: str, synced: list, command: str) -> list[AssetEvent | CheckEvent]:
    """What the syncs changed, as their assets show it for the organization (as its run over the
    organization records it), and each entity changed on the way (the bill push's vendors) with
    its counts, as the run reports it beside its own; then the checks of each asset whose data
    changed, evaluated now, once each."""
    events: list[AssetEvent | CheckEvent] = []
    for what, counts in synced:
        figures = one_organization(what, slug, counts, EXTRA_COUNTS.get(what, ()))
        events.append(AssetEvent(ASSETS[what], slug, {**figures, RECORDED_BY: command}))
        for other, done in counts.beside.items():
            if done.pushed or done.pulled or done.linked:
                beside = {**done.as_dict(), RECORDED_BY: f"{command} --what {what}"}
                events.append(AssetEvent(ASSETS[other], slug, beside))
    checked = {ASSETS[what] for what, _ in synced}
    checked |= {CHECKS_ALSO_READ[what] for what, _ in synced if what in CHECKS_ALSO_READ}
    for asset in sorted(checked):
        events += check_events(resources.database, resources.system_database, asset)
    return events


def run_import(args: argparse.Namespace) -> int:
    engine = args.resources.database
    org = writable(args.organization)
    summary = {}
    try:
        return _import(engine, org, args, summary)
    except RealmBusy as exc:
        return _busy(exc)


def _import(engine, org, args, summary) -> int:
    imported: list = []
    with (
        open_client(engine, org.id, args.resources.quickbooks) as client,
        realm_lease(engine, org.id, _owner()),
    ):
        for name, sync in (
            ("customers", CustomerSync(engine, org.id, client)),
            ("items", ItemSync(engine, org.id, client)),
            # the vendors' sync words its findings with the organization's slug and currency
            ("vendors", VendorSync(engine, org, client)),
        ):

            def progress(done: int, name: str = name) -> None:
                print(f"{name}: {done} read", file=sys.stderr, flush=True)

            sync.initial_import(page_size=args.page_size, progress=progress)
            summary[name] = sync.counts.as_dict()
            imported.append((name, sync.counts))
    print(json.dumps({"organization": org.slug, **summary}))
    tell_dagster(_events(args.resources, org.slug, imported, "qbo-import"))
    return 0
