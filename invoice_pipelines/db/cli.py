"""`invoice-pipelines migrate`: the application database's schema from the command line."""

from __future__ import annotations

import argparse


def add_commands(sub) -> None:
    p = sub.add_parser("migrate")
    p.add_argument("--revision", default="head")
    p.set_defaults(func=run_migrate)


def run_migrate(args: argparse.Namespace) -> int:
    from invoice_pipelines.db.engine import database_url, make_engine
    from invoice_pipelines.db.migrate import upgrade

    # migrations log in as the tables' owner, which the runtime `database` resource never does
    engine = make_engine(owner=True)
    revision = upgrade(engine, args.revision)
    print(f"database {database_url(redact=True)} at revision {revision}")
    return 0
