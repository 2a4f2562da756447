"""QuickBooks commands: connect an organization, sync now, import, list and resolve conflicts.

The same functions the Dagster assets call; settings from INVOICE_PIPELINES_QBO_*. Modules load
when a command runs: a command's `--help` imports neither SQLAlchemy nor the database's tables.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from invoice_pipelines.cli_args import port, positive_int
from invoice_pipelines.core.qbo_entities import SYNCED
from invoice_pipelines.quickbooks.errors import QboError

WHAT = tuple(entity.sync for entity in SYNCED)


def add_commands(sub) -> None:
    p = sub.add_parser("qbo-connect")
    p.add_argument("--org", required=True, help="organization id or slug")
    p.add_argument("--realm", required=True, help="the QBO company id (realmId)")
    p.add_argument("--client-id", required=True)
    p.add_argument(
        "--secrets-from-env",
        nargs=2,
        metavar=("SECRET_VAR", "REFRESH_TOKEN_VAR"),
        default=("QBO_CLIENT_SECRET", "QBO_REFRESH_TOKEN"),
        help="environment variables holding the client secret and the refresh token (never "
        "command-line arguments: they would land in the shell history)",
    )
    p.add_argument(
        "--tax-codes",
        default="",
        help="QBO tax code per VAT rate, e.g. 19.00=TAX,7.00=TAX,0.00=NON",
    )
    p.add_argument("--income-account", default="1", help="IncomeAccountRef for new items")
    p.set_defaults(func=run_connect)

    p = sub.add_parser("qbo-sync")
    p.add_argument("--org", required=True, help="organization id or slug")
    p.add_argument("--what", choices=(*WHAT, "all"), default="all")
    p.add_argument(
        "--invoice",
        type=positive_int,
        action="append",
        default=[],
        metavar="ID",
        help="push this sales invoice (id; repeatable), also one a migration brought in as "
        "history, which no run pushes on its own; with --what invoices",
    )
    p.set_defaults(func=run_sync)

    p = sub.add_parser("qbo-payables")
    p.add_argument("--org", required=True, help="organization id or slug")
    p.add_argument(
        "--create-vendors",
        choices=("yes", "no"),
        help="whether the bill push creates a QuickBooks vendor for a supplier without one",
    )
    p.add_argument(
        "--expense-account",
        metavar="QBO_ACCOUNT_ID",
        help="the QuickBooks expense account (its Id) bill lines are booked on: the "
        "organization's default, or with --supplier-vat-id / --supplier-name / --vendor that "
        "supplier's; 'none' removes it",
    )
    who = p.add_mutually_exclusive_group()
    who.add_argument("--supplier-vat-id", help="the supplier's VAT id (with --expense-account)")
    who.add_argument("--supplier-name", help="the supplier's name (with --expense-account)")
    who.add_argument("--vendor", help="a QuickBooks vendor's Id (with --expense-account)")
    p.add_argument(
        "--exchange-rate",
        metavar="CUR=RATE",
        help="home-currency units per unit of CUR, e.g. EUR=1.0850 (with --month for one month)",
    )
    p.add_argument("--month", help="YYYY-MM of --exchange-rate; default: every month")
    p.add_argument("--by", default=os.environ.get("USER", "cli"), help="who set it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_payables)

    p = sub.add_parser("qbo-import")
    p.add_argument("--org", required=True, help="organization id or slug")
    p.add_argument("--page-size", type=positive_int, default=1000)
    p.set_defaults(func=run_import)

    p = sub.add_parser("qbo-webhooks")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port, default=8766)
    p.set_defaults(func=run_webhooks)

    p = sub.add_parser("qbo-conflicts")
    p.add_argument("--org", help="organization id or slug; default: every organization")
    p.add_argument("--all", action="store_true", help="resolved ones too")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_conflicts)

    p = sub.add_parser("qbo-resolve")
    p.add_argument("conflict_id", type=positive_int)
    p.add_argument("--org", required=True, help="organization id or slug")
    p.add_argument("--keep", choices=("local", "qbo"), required=True)
    p.add_argument("--by", default=os.environ.get("USER", "cli"), help="who decided")
    p.set_defaults(func=run_resolve)


def run_connect(args: argparse.Namespace) -> int:
    from invoice_pipelines.db.tenancy import resolve_organization
    from invoice_pipelines.quickbooks.tokens import save_connection, token_cipher

    engine = args.resources.database
    org = resolve_organization(engine, args.org)
    secret_var, token_var = args.secrets_from_env
    secret, refresh = os.environ.get(secret_var), os.environ.get(token_var)
    if not secret or not refresh:
        print(f"invoice-pipelines: set {secret_var} and {token_var} first", file=sys.stderr)
        return 2
    tax_codes = {}
    for pair in filter(None, args.tax_codes.split(",")):
        rate, _, code = pair.partition("=")
        tax_codes[f"{float(rate):.2f}"] = code.strip()
    save_connection(
        engine,
        org["id"],
        realm_id=args.realm,
        client_id=args.client_id,
        client_secret=secret,
        refresh_token=refresh,
        cipher=token_cipher(engine=engine),
        settings={"tax_codes": tax_codes, "income_account_id": args.income_account},
    )
    print(json.dumps({"organization": org["slug"], "realm_id": args.realm, "connected": True}))
    return 0


def _work(what: str):
    from invoice_pipelines.quickbooks.syncs import SYNCS

    return SYNCS[what]


def _busy(exc: Exception) -> int:
    print(f"invoice-pipelines: {exc}; try again later", file=sys.stderr)
    return 1


def _owner() -> str:
    return f"cli-{os.getpid()}-{os.urandom(4).hex()}"


def run_sync(args: argparse.Namespace) -> int:
    from invoice_pipelines.db.tenancy import resolve_organization
    from invoice_pipelines.quickbooks.sync.common import RealmBusy

    engine = args.resources.database
    org = resolve_organization(engine, args.org)
    result, status = {}, 0
    if args.invoice:
        if args.what != "invoices":
            print("invoice-pipelines: --invoice pushes sales invoices: use it with --what invoices",
                  file=sys.stderr)  # fmt: skip
            return 2
        from invoice_pipelines.quickbooks.sync.invoices import enqueue

        result["named"] = enqueue(engine, org["id"], named=args.invoice)
    try:
        return _sync_now(engine, org, args, result, status)
    except RealmBusy as exc:
        return _busy(exc)


def _options(what: str, args: argparse.Namespace) -> dict:
    """What a sync takes beside the client (syncs.NEEDS_FILES): the bill push reads originals
    from the upload store and writes readable PDFs with the documents area's letter writer, as
    the runs' resources do."""
    from invoice_pipelines.quickbooks.syncs import NEEDS_FILES

    if what not in NEEDS_FILES:
        return {}
    from invoice_pipelines.quickbooks.sync.bills import letter_pdf

    # the writer is made at its first letter (the documents area's, as the runs get it)
    return {
        "read_upload": args.resources.upload_store.read,
        "write_letter": letter_pdf(lambda: args.resources.letter_writer),
    }


def _sync_now(engine, org, args, result, status) -> int:
    from invoice_pipelines.quickbooks.sync.common import open_client, realm_lease

    with (
        open_client(engine, org["id"], args.resources.quickbooks) as client,
        realm_lease(engine, org["id"], _owner()),
    ):
        for what in WHAT if args.what == "all" else (args.what,):
            try:
                counts = _work(what)(engine, org["id"], client, **_options(what, args))
            except QboError as exc:
                result[what] = {"error": str(exc)}
                status = 1
                continue
            result[what] = {**counts.as_dict(), "errors": counts.errors[:20]}
            # what it did to another entity on its way (the bill push's vendors), counted apart
            for other, done in counts.beside.items():
                result[what][f"{other}_on_the_way"] = done.as_dict()
    print(json.dumps({"organization": org["slug"], **result}, default=str))
    return status


def run_import(args: argparse.Namespace) -> int:
    from invoice_pipelines.db.tenancy import resolve_organization
    from invoice_pipelines.quickbooks.sync.common import RealmBusy

    engine = args.resources.database
    org = resolve_organization(engine, args.org)
    summary = {}
    try:
        return _import(engine, org, args, summary)
    except RealmBusy as exc:
        return _busy(exc)


def _import(engine, org, args, summary) -> int:
    from invoice_pipelines.quickbooks.sync.common import open_client, realm_lease
    from invoice_pipelines.quickbooks.sync.customers import CustomerSync
    from invoice_pipelines.quickbooks.sync.items import ItemSync
    from invoice_pipelines.quickbooks.sync.vendors import VendorSync

    with (
        open_client(engine, org["id"], args.resources.quickbooks) as client,
        realm_lease(engine, org["id"], _owner()),
    ):
        for name, cls in (
            ("customers", CustomerSync),
            ("items", ItemSync),
            ("vendors", VendorSync),
        ):
            sync = cls(engine, org["id"], client)

            def progress(done: int, name: str = name) -> None:
                print(f"{name}: {done} read", file=sys.stderr, flush=True)

            sync.initial_import(page_size=args.page_size, progress=progress)
            summary[name] = sync.counts.as_dict()
    print(json.dumps({"organization": org["slug"], **summary}))
    return 0


def run_payables(args: argparse.Namespace) -> int:
    """Set what was given, then print the organization's payables settings and waiting bills."""
    from decimal import Decimal, InvalidOperation

    from invoice_pipelines.db.tenancy import resolve_organization
    from invoice_pipelines.quickbooks import payables_settings as ps

    engine = args.resources.database
    org = resolve_organization(engine, args.org)
    named = args.supplier_vat_id or args.supplier_name or args.vendor
    if named and not args.expense_account:
        print(
            "invoice-pipelines qbo-payables: a supplier goes with --expense-account",
            file=sys.stderr,
        )
        return 2
    try:
        if args.create_vendors:
            ps.change_connection_settings(
                engine, org["id"], **{ps.CREATE_VENDORS: args.create_vendors == "yes"}
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
            ps.set_expense_account(engine, org["id"], account, key, by=args.by)
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
            ps.set_exchange_rate(engine, org["id"], currency, value, args.month)
        settings = ps.read_settings(engine, org["id"])
    except QboError as exc:  # not connected
        print(f"invoice-pipelines qbo-payables: {exc}", file=sys.stderr)
        return 2
    waiting = _waiting_bills(engine, org["id"])
    not_attached = _files_not_attached(engine, org["id"])
    summary = {
        "organization": org["slug"],
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
    print(
        f"{org['slug']}: vendors created by the push: {'yes' if settings.create_vendors else 'no'}"
    )
    print(f"  default expense account: {summary['default_expense_account'] or 'none'}")
    for key, account in summary["expense_accounts"].items():
        print(f"  expense account of {key}: {account}")
    for key, rate in settings.exchange_rates.items():
        print(f"  exchange rate {key}: {rate}")
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
    from sqlalchemy import Text, and_, cast, or_, select

    from invoice_pipelines.db.tables import incoming_invoices, qbo_bills
    from invoice_pipelines.db.tenancy import tenant_transaction
    from invoice_pipelines.quickbooks.sync.bills import skipped_files

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


def _waiting_bills(engine, organization_id: int) -> list[dict]:
    """The organization's supplier invoices that wait for a person to become bills: the rows of
    the check bills_waiting (watch.waiting_bills, the one query of both); `held`: a paid bill
    whose document is back in review or failed."""
    from invoice_pipelines.quickbooks.watch import waiting_bills

    _, waiting = waiting_bills(engine, organization_id, limit=500)
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
    from sqlalchemy import select

    from invoice_pipelines.db.tables import organizations, sync_conflicts
    from invoice_pipelines.db.tenancy import resolve_organization, system_transaction

    engine = args.resources.database
    query = (
        select(sync_conflicts, organizations.c.slug)
        .join(organizations, organizations.c.id == sync_conflicts.c.organization_id)
        .order_by(sync_conflicts.c.status.desc(), sync_conflicts.c.id)
    )
    if args.org:
        org = resolve_organization(engine, args.org)
        query = query.where(sync_conflicts.c.organization_id == org["id"])
    if not args.all:
        query = query.where(sync_conflicts.c.status == "open")
    with system_transaction(engine) as conn:
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


def run_resolve(args: argparse.Namespace) -> int:
    from invoice_pipelines.db.tenancy import resolve_organization
    from invoice_pipelines.quickbooks.sync.common import open_client
    from invoice_pipelines.quickbooks.sync.customers import resolve_conflict

    engine = args.resources.database
    org = resolve_organization(engine, args.org)
    with open_client(engine, org["id"], args.resources.quickbooks) as client:
        try:
            result = resolve_conflict(
                engine,
                org["id"],
                args.conflict_id,
                keep=args.keep,
                resolved_by=args.by,
                client=client,
            )
        except (LookupError, ValueError) as exc:
            print(f"invoice-pipelines: {exc}", file=sys.stderr)
            return 2
    print(json.dumps(result, default=str))
    return 0


def run_webhooks(args: argparse.Namespace) -> int:
    from invoice_pipelines.quickbooks.webhooks import WEBHOOK_PATH, receiver
    from invoice_pipelines.resources.http_receiver import serve_until_interrupted
    from invoice_pipelines.settings import env

    token = env("INVOICE_PIPELINES_QBO_WEBHOOK_TOKEN")
    if not token.strip():
        print(
            "invoice-pipelines qbo-webhooks: INVOICE_PIPELINES_QBO_WEBHOOK_TOKEN is empty or "
            "blank; set it to the verifier token of the app's webhooks in Intuit's developer portal",
            file=sys.stderr,
        )
        return 2
    server = receiver(args.resources.database, token, args.host, args.port)
    return serve_until_interrupted(server, WEBHOOK_PATH)
