"""What `organizations list` and `organizations show` do: read the database, print, import no
Dagster (test_cli_lazy.py). The parsers are tenants/commands/cli.py's."""

from __future__ import annotations

import argparse
import json

from invoice_pipelines.core.text import terminal_text
from invoice_pipelines.db.tenancy import UnknownOrganization
from invoice_pipelines.tenants.domain.listing import (
    list_organizations,
    show_organization,
    state_counts,
)


def run_organizations(args: argparse.Namespace) -> int:
    if args.verb == "list":
        return run_list(args)
    return run_show(args)


def run_list(args: argparse.Namespace) -> int:
    rows = list_organizations(args.resources.system_database, args.state)
    for row in rows:
        if args.json:
            print(json.dumps(row, default=str))
            continue
        why = f"  ({row['suspension_reason']})" if row["state"] == "suspended" else ""
        print(terminal_text(f"{row['slug']:<32} {row['state']:<10} {row['name']}{why}"))
    counts = ", ".join(f"{n} {state}" for state, n in state_counts(rows).items() if n)
    if not args.json:
        print(f"{len(rows)} organization(s)" + (f": {counts}" if counts else ""))
    return 0


def run_show(args: argparse.Namespace) -> int:
    try:
        shown = show_organization(
            args.resources.system_database, args.organization, args.resources.upload_store
        )
    except UnknownOrganization:
        print(f"There is no organization {args.org!r}.")
        return 1
    if args.json:
        print(json.dumps(shown, default=str))
        return 0
    for name, value in shown.items():
        if name in ("holds", "audit", "missing"):
            continue
        print(terminal_text(f"{name:<22} {'' if value is None else value}"))
    for sentence in shown["missing"]:
        print(terminal_text(f"missing                {sentence}"))
    print("holds                  " + ", ".join(f"{k} {v}" for k, v in shown["holds"].items()))
    for row in shown["audit"]:
        print(
            terminal_text(
                f"audit  {row['created_at']:%Y-%m-%d %H:%M} {row['action']} by "
                f"{row['created_by']}: {json.dumps(row['details'], default=str)}"
            )
        )
    return 0
