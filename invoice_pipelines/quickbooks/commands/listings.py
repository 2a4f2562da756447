"""What the QuickBooks commands a person reads with do: `qbo-payables` (the payables settings,
what they set, the bills that wait and the files not attached) and `qbo-conflicts`. Read commands
at their floor (issue 73): this module loads no sync, no QuickBooks client and no document
reader or writer, only the queries behind the listing (`watch.waiting_bills`, the one query of
the check bills_waiting too) and the settings; quickbooks/area.py's table names each function
here."""

from __future__ import annotations

import argparse
import json
import os
import sys
from decimal import Decimal, InvalidOperation

from sqlalchemy import Text, and_, cast, or_, select

from invoice_pipelines.db.tables import incoming_invoices, organizations, qbo_bills, sync_conflicts
from invoice_pipelines.db.tenancy import (
    system_transaction,
    tenant_transaction,
)
from invoice_pipelines.lib.read_only import writable
from invoice_pipelines.quickbooks.domain import payables_settings as ps
from invoice_pipelines.quickbooks.domain.check_findings import (
    BILLS,
    BILLS_WAITING_CHECK,
    check_events,
)
from invoice_pipelines.quickbooks.domain.company import company_switches
from invoice_pipelines.quickbooks.domain.errors import QboError
from invoice_pipelines.quickbooks.domain.sync.bill_queue import skipped_files
from invoice_pipelines.quickbooks.domain.watch import waiting_bills
from invoice_pipelines.resources.dagster_instance.dagster_ui import tell_dagster


def _login() -> str:
    return os.environ.get("USER", "cli")


def run_payables(args: argparse.Namespace) -> int:
    """Set what was given, then print the organization's payables settings and waiting bills."""
    engine, system = args.resources.database, args.resources.system_database
    org = args.organization
    named = args.supplier_vat_id or args.supplier_name or args.vendor
    if named and not args.expense_account:
        print(
            "invoice-pipelines qbo-payables: a supplier goes with --expense-account",
            file=sys.stderr,
        )
        return 2
    if args.create_vendors or args.expense_account or args.exchange_rate:
        writable(org)  # what it sets; showing stays open
    try:
        if args.create_vendors:
            ps.switch_create_vendors(
                engine, org.id, args.create_vendors == "yes", by=args.by, reason=args.reason
            )
        if args.expense_account:
            key = ps.DEFAULT_KEY
            if args.vendor:
                key = f"vendor:{args.vendor.strip()}"
            elif args.supplier_vat_id:
                key = f"vat:{ps.vat_key(args.supplier_vat_id)}"
            elif args.supplier_name:
                key = f"name:{ps.name_key(args.supplier_name)}"
            account = None if args.expense_account.lower() == "none" else args.expense_account
            ps.set_expense_account(engine, org.id, account, key, by=args.by or _login())
        if args.exchange_rate:
            currency, _, rate = args.exchange_rate.partition("=")
            try:
                value = Decimal(rate.strip())
            except InvalidOperation:
                value = Decimal("NaN")
            if len(currency.strip()) != 3 or not value.is_finite() or value <= 0:
                print(
                    "invoice-pipelines qbo-payables: --exchange-rate is CUR=RATE with a rate "
                    f"above 0, e.g. EUR=1.0850, not {args.exchange_rate!r}",
                    file=sys.stderr,
                )
                return 2
            ps.set_exchange_rate(engine, org.id, currency, value, args.month)
        settings = ps.read_settings(engine, org.id)
    except (QboError, ValueError) as exc:  # not connected; a switch without who and why
        print(f"invoice-pipelines qbo-payables: {exc}", file=sys.stderr)
        return 2
    if args.create_vendors or args.expense_account or args.exchange_rate:
        # what bills_waiting lists changed with the settings: the UI shows it evaluated now
        tell_dagster(check_events(engine, system, BILLS, [BILLS_WAITING_CHECK]))
    waiting = _waiting_bills(system, org.id)
    not_attached = _files_not_attached(engine, org.id)
    switches = company_switches(engine, system, org.id)
    summary = {
        "organization": org.slug,
        "company_switch": switches[0].said() if switches else None,
        # an expense account set: the organization books its supplier invoices in QuickBooks
        # (watch.bill_booking_organizations); else they are for DATEV and none waits here
        "books_bills": bool(settings.accounts),
        "create_vendors": settings.create_vendors,
        "default_expense_account": settings.accounts.get(ps.DEFAULT_KEY),
        "expense_accounts": {k: v for k, v in settings.accounts.items() if k},
        "exchange_rates": settings.exchange_rates,
        "waiting_bills": waiting,
        "files_not_attached": not_attached,
    }
    if args.json:
        print(json.dumps(summary, default=str))
        return 0
    print(f"{org.slug}: vendors created by the push: {'yes' if settings.create_vendors else 'no'}")
    print(f"  default expense account: {summary['default_expense_account'] or 'none'}")
    if not summary["books_bills"]:
        print(
            "  books no supplier invoice in QuickBooks (no expense account set; they are for "
            f"DATEV): invoice-pipelines qbo-payables --org {org.slug} --expense-account ID"
        )
    for key, account in summary["expense_accounts"].items():
        print(f"  expense account of {key}: {account}")
    for key, rate in settings.exchange_rates.items():
        print(f"  exchange rate {key}: {rate}")
    if summary["company_switch"]:
        print(f"  {summary['company_switch']}")
    for row in waiting:
        what = "held, a conflict" if row["held"] else "waiting"
        print(f"  {what}: document {row['document']} ({row['number']}): {row['why']}")
    if not waiting:
        print("  no supplier invoice waits to become a bill")
    for row in not_attached:
        for line in row["files"]:
            print(f"  bill of document {row['document']} ({row['number']}): {line}")
    return 0


def _files_not_attached(engine, organization_id: int, limit: int = 50) -> list[dict]:
    """The newest active bills whose record says a file is not in QBO (bills.skipped_files)."""
    b, t = qbo_bills.c, incoming_invoices.c
    files = cast(b.attachments, Text)
    with tenant_transaction(engine, organization_id) as conn:
        rows = conn.execute(
            select(t.id, t.invoice_number, b.attachments)
            .select_from(qbo_bills)
            .join(
                incoming_invoices,
                and_(t.organization_id == b.organization_id, t.id == b.incoming_invoice_id),
            )
            .where(
                b.organization_id == organization_id,
                b.state == "active",
                or_(files.like('%"skipped"%'), files.like('%"error"%')),
            )
            .order_by(b.id.desc())
            .limit(limit)
        ).all()
    return [
        {"document": i, "number": number, "files": skipped_files(attachments)}
        for i, number, attachments in rows
    ]


def _waiting_bills(system, organization_id: int) -> list[dict]:
    """The organization's supplier invoices that wait for a person to become bills: the rows of
    the check bills_waiting (watch.waiting_bills, the one query of both); `held`: a paid bill
    whose document is back in review or failed."""
    _, waiting = waiting_bills(system, organization_id, limit=500)
    return [
        {
            "document": row.document,
            "number": row.number,
            "held": row.held,
            "waits_for": row.waits_for,
            "why": row.why,
        }
        for row in waiting
    ]


def run_conflicts(args: argparse.Namespace) -> int:
    system = args.resources.system_database
    query = (
        select(sync_conflicts, organizations.c.slug)
        .join(organizations, organizations.c.id == sync_conflicts.c.organization_id)
        .order_by(sync_conflicts.c.status.desc(), sync_conflicts.c.id)
    )
    if args.org:
        org = args.organization
        query = query.where(sync_conflicts.c.organization_id == org.id)
    if not args.all:
        query = query.where(sync_conflicts.c.status == "open")
    with system_transaction(system) as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    if args.json:
        print(json.dumps(rows, default=str))
        return 0
    for row in rows:
        print(
            f"{row['id']:>6}  {row['slug']:<24} {row['entity']:<9} {row['status']:<8} "
            f"{row['decision']:<13} local {row['local_id']} / QBO {row['qbo_id']}: {row['reason']}"
        )
    if not rows:
        print("no conflicts")
    return 0
