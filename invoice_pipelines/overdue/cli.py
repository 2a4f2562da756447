"""`invoice-pipelines overdue` and `dunning-block`: the functions the dunning asset and the block
job call."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date


def add_commands(sub) -> None:
    p = sub.add_parser("overdue", help="notice one organization's overdue invoices now")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--as-of", help="YYYY-MM-DD in the organization's timezone; default today")
    p.add_argument("--dry-run", action="store_true", help="count what would be noticed")
    p.set_defaults(func=run_overdue_command)
    p = sub.add_parser(
        "dunning-block",
        help="set or lift a customer's dunning block or an invoice's disputed flag",
    )
    p.add_argument("--org", required=True, help="organization slug or id")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--customers", help="customer ids, e.g. 4,7 (dunning block)")
    group.add_argument("--invoices", help="sales invoice ids, e.g. 12,13 (disputed)")
    p.add_argument("--lift", action="store_true", help="lift the block / flag")
    p.add_argument("--reason", required=True, help="why (kept in the audit log)")
    p.add_argument("--created-by", default="cli")
    p.set_defaults(func=run_block_command)


def _ids(raw: str) -> list[int]:
    try:
        return [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise SystemExit(f"invoice-pipelines: ids must be whole numbers, got {raw!r}") from None


def run_overdue_command(args: argparse.Namespace) -> int:
    from invoice_pipelines.db.engine import make_engine
    from invoice_pipelines.db.tenancy import UnknownOrganization
    from invoice_pipelines.overdue.pipeline import run_overdue

    try:
        on = date.fromisoformat(args.as_of) if args.as_of else None
    except ValueError:
        print(f"invoice-pipelines: --as-of must be YYYY-MM-DD, got {args.as_of!r}", file=sys.stderr)
        return 2
    try:
        result = run_overdue(
            make_engine(), args.org, on=on, dry_run=args.dry_run, requested_by="cli"
        )
    except UnknownOrganization:
        print(f"invoice-pipelines: there is no organization {args.org!r}", file=sys.stderr)
        return 2
    delivery = {}
    if result.status != "FAILED" and not result.dry_run:
        from invoice_pipelines.overdue.delivery import send_notices
        from invoice_pipelines.resources.mail import mailer_from_env
        from invoice_pipelines.resources.messaging import provider_from_env
        from invoice_pipelines.resources.stores import file_store_from_env

        sent = send_notices(
            make_engine(),
            mailer_from_env(),
            file_store_from_env("documents"),
            result.organization_id,
            text_messages=provider_from_env(),
        )
        delivery = {
            "notices_sent": sent.sent,
            "notices_send_failed": {str(k): v for k, v in sent.failed.items()},
            "notices_send_postponed": {str(k): v for k, v in sent.postponed.items()},
            "notices_send_unknown": sent.unknown,
            "notices_withdrawn": {str(k): v for k, v in sent.withdrawn.items()},
        }
    print(
        json.dumps(
            {
                "organization": result.organization,
                "as_of": str(result.as_of or ""),
                "status": result.status,
                "dry_run": result.dry_run,
                "scanned": result.scanned,
                "notices_created": result.notices_created,
                "notices_by_level": dict(result.created_by_level),
                "fees_charged": f"{result.fees:.2f}",
                "interest_charged": f"{result.interest:.2f}",
                "errors": result.errors[:20],
                "seconds": round(result.seconds, 3),
                "fee_invoice_batch_job": result.fee_invoice_job_id,
                "notices_fee_invoiced": result.notices_invoiced,
                **delivery,
            }
        )
    )
    return 0 if result.status in ("SUCCESS", "PARTIAL") else 1


def run_block_command(args: argparse.Namespace) -> int:
    from invoice_pipelines.db.engine import make_engine
    from invoice_pipelines.db.tenancy import UnknownOrganization, resolve_organization
    from invoice_pipelines.overdue.pipeline import set_dunning_block

    engine = make_engine()
    try:
        org = resolve_organization(engine, args.org)
    except UnknownOrganization:
        print(f"invoice-pipelines: there is no organization {args.org!r}", file=sys.stderr)
        return 2
    changed, unknown = set_dunning_block(
        engine,
        org["id"],
        customer_ids=_ids(args.customers) if args.customers else (),
        invoice_ids=_ids(args.invoices) if args.invoices else (),
        blocked=not args.lift,
        reason=args.reason,
        requested_by=args.created_by,
    )
    print(json.dumps({"changed": changed, "not_found": unknown, "blocked": not args.lift}))
    return 0 if changed else 1
