"""What `invoice-pipelines suppliers layout` does (issue 84): show a registered supplier's learned
layout, every version with who confirmed it, when and from which document (intake/domain/
supplier_layouts.py), or forget it (`--forget`, with `--by` and `--reason`): a new version without
fields, audited; the older versions stay. A module of its own, so the register's other verbs never
import the layout's reader; intake/area.py's table names `run_layout_command` for the verb."""

from __future__ import annotations

import argparse
import json
import sys

from invoice_pipelines.core.text import terminal_text
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.intake.domain.supplier_layouts import forget_layout, layout_versions
from invoice_pipelines.lib.read_only import writable
from invoice_pipelines.supplier_register import supplier_rows


def _fail(message: str) -> int:
    print(f"invoice-pipelines suppliers layout: {message}", file=sys.stderr)
    return 2


def run_layout_command(args: argparse.Namespace) -> int:
    org = args.organization
    if args.forget:
        if not (args.by and args.reason):
            return _fail("--forget names who forgets it and why (--by NAME --reason TEXT)")
        writable(org)  # an offboarded one: one sentence (cli.py), before any work
    with tenant_transaction(args.resources.database, org.id, write=args.forget) as conn:
        if not any(row["id"] == args.id for row in supplier_rows(conn, org.id)):
            return _fail(f"no supplier {args.id} in {org.slug}")
        if args.forget:
            version = forget_layout(conn, org.id, args.id, by=args.by, reason=args.reason)
            if version is None:
                return _fail(f"supplier {args.id} of {org.slug} has no layout to forget")
        versions = layout_versions(conn, org.id, args.id)
    shown = {
        "supplier": args.id,
        "versions": [
            {
                "version": v.version,
                "confirmed_by": v.confirmed_by,
                "confirmed_at": v.confirmed_at,
                "incoming_invoice_id": v.incoming_invoice_id,
                "fields": {p.field: p.to_json_dict() for p in v.placements} or "forgotten",
            }
            for v in versions
        ],
    }
    for line in json.dumps(shown, default=str, indent=2, ensure_ascii=False).split("\n"):
        print(terminal_text(line))
    return 0
