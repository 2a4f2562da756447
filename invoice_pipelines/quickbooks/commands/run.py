"""What the QuickBooks commands `qbo-connect`, `qbo-resolve` and `qbo-webhooks` do: the same
functions the Dagster assets call; settings from INVOICE_PIPELINES_QBO_*. Their parsers are
quickbooks/commands/cli.py's; quickbooks/area.py's table names each function here, and the console script
imports this module only when one of them runs (`qbo-sync` and `qbo-import` are
quickbooks/commands/sync_commands.py's, `qbo-payables` and `qbo-conflicts` quickbooks/commands/listings.py's)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from invoice_pipelines.db.locks import LockBusy
from invoice_pipelines.lib.read_only import writable
from invoice_pipelines.quickbooks.domain.errors import BadRealmId, RealmInUse
from invoice_pipelines.quickbooks.domain.sync.common import open_client
from invoice_pipelines.quickbooks.domain.sync.customers import resolve_conflict
from invoice_pipelines.quickbooks.domain.tokens import save_connection, token_cipher
from invoice_pipelines.quickbooks.domain.webhooks import WEBHOOK_PATH, receiver
from invoice_pipelines.resources.http_receiver import serve_until_interrupted
from invoice_pipelines.settings import env


def run_connect(args: argparse.Namespace) -> int:
    engine = args.resources.database
    org = writable(args.organization)
    secret_var, token_var = args.secrets_from_env
    secret, refresh = os.environ.get(secret_var), os.environ.get(token_var)
    if not secret or not refresh:
        print(f"invoice-pipelines: set {secret_var} and {token_var} first", file=sys.stderr)
        return 2
    tax_codes = {}
    for pair in filter(None, args.tax_codes.split(",")):
        rate, _, code = pair.partition("=")
        tax_codes[f"{float(rate):.2f}"] = code.strip()
    try:
        system = args.resources.system_database
        switched = save_connection(
            engine,
            org.id,
            system=system,
            realm_id=args.realm,
            client_id=args.client_id,
            client_secret=secret,
            refresh_token=refresh,
            cipher=token_cipher(system=system),
            settings={"tax_codes": tax_codes, "income_account_id": args.income_account},
            by=args.by,
        )
    except BadRealmId as exc:
        print(f"invoice-pipelines qbo-connect: {exc}", file=sys.stderr)
        return 2
    except (RealmInUse, LockBusy) as exc:
        print(f"invoice-pipelines qbo-connect: {exc}", file=sys.stderr)
        return 1
    said = {"organization": org.slug, "realm_id": args.realm, "connected": True}
    if switched is not None:
        said["company_switch"] = {
            "archived": switched,
            "next": f"invoice-pipelines qbo-import --org {org.slug}",
        }
    print(json.dumps(said))
    return 0


def run_resolve(args: argparse.Namespace) -> int:
    engine = args.resources.database
    org = writable(args.organization)
    with open_client(engine, org.id, args.resources.quickbooks) as client:
        try:
            result = resolve_conflict(
                engine,
                org.id,
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
    token = env("INVOICE_PIPELINES_QBO_WEBHOOK_TOKEN")
    if not token.strip():
        print(
            "invoice-pipelines qbo-webhooks: INVOICE_PIPELINES_QBO_WEBHOOK_TOKEN is empty or "
            "blank; set it to the verifier token of the app's webhooks in Intuit's developer portal",
            file=sys.stderr,
        )
        return 2
    resources = args.resources
    server = receiver(resources.database, resources.system_database, token, args.host, args.port)
    return serve_until_interrupted(server, WEBHOOK_PATH)
