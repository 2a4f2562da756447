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
from invoice_pipelines.quickbooks.domain.actions import connect, resolve, tax_codes
from invoice_pipelines.quickbooks.domain.errors import RealmInUse
from invoice_pipelines.quickbooks.domain.webhooks import WEBHOOK_PATH, receiver
from invoice_pipelines.resources.http_receiver import serve_until_interrupted
from invoice_pipelines.settings import env


def run_connect(args: argparse.Namespace) -> int:
    secrets = connection_secrets(*args.secrets_from_env)
    if secrets is None:
        return 2
    try:
        said = connect(
            args.resources.database, args.resources.system_database, writable(args.organization),
            realm_id=args.realm, client_id=args.client_id, client_secret=secrets[0],
            refresh_token=secrets[1], codes=tax_codes(args.tax_codes),
            income_account=args.income_account, by=args.by,
        )  # fmt: skip
    except (RealmInUse, LockBusy) as exc:
        print(f"invoice-pipelines qbo-connect: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(said))
    return 0


def connection_secrets(secret_var: str, token_var: str) -> tuple[str, str] | None:
    """The client secret and refresh token from the variables named; None, said on stderr, when
    either is unset or empty (never an option: they would be in the shell's history)."""
    secret, refresh = os.environ.get(secret_var), os.environ.get(token_var)
    if not secret or not refresh:
        print(f"invoice-pipelines: set {secret_var} and {token_var} first", file=sys.stderr)
        return None
    return secret, refresh


def run_resolve(args: argparse.Namespace) -> int:
    resources = args.resources
    result = resolve(
        resources.database, resources.quickbooks, writable(args.organization), args.conflict_id,
        keep=args.keep, by=args.by,
    )  # fmt: skip
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
