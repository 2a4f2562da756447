"""What the development tooling's `seed-demo` and `bench` do; their parsers are
invoice_pipelines_devtools/cli.py's, and the console script's `DEVTOOLS` table names each function
here. The demo's and the benchmarks' own modules wait inside the two functions, so neither
command loads the other's."""

from __future__ import annotations

import argparse
import json


def run_seed_demo(args: argparse.Namespace) -> int:
    from sqlalchemy import text

    from invoice_pipelines.db.engine import make_engine, make_system_engine, owner_runtime_allowed
    from invoice_pipelines.db.migrate import upgrade
    from invoice_pipelines.settings import ConfigError, data_dir, upload_dir
    from invoice_pipelines_devtools.demo.mailbox import configure_demo_mailbox
    from invoice_pipelines_devtools.demo.payables import (
        register_demo_suppliers,
        seed_payables_uploads,
    )
    from invoice_pipelines_devtools.demo.quickbooks import connect_demo_organizations
    from invoice_pipelines_devtools.demo.seed import seed_demo, seed_demo_uploads

    engine = make_engine()  # PostgreSQL: the runtime role (the owner is refused unless allowed)
    if engine.dialect.name == "sqlite" or owner_runtime_allowed():
        upgrade(make_engine(owner=True))
    else:  # the runtime role cannot migrate: `make migrate` did, as the owner (scripts/migrate.py)
        with engine.connect() as conn:
            if conn.execute(text("SELECT to_regclass('organizations')")).scalar() is None:
                raise ConfigError(
                    "the database has no tables yet: migrate it first as the tables' owner "
                    "(make migrate with OWNER_DB_URL, docs/postgresql-and-scale-out.md)"
                )
    system = make_system_engine()  # the system login's where one is configured
    summary = seed_demo(engine, system=system)
    summary["uploads"] = seed_demo_uploads(upload_dir())
    # the US organization's supplier invoices, which become bills in its QuickBooks, from
    # suppliers the seed confirms
    summary["suppliers_confirmed"] = register_demo_suppliers(engine, system)
    summary["uploads_for_bills"] = seed_payables_uploads(upload_dir())
    # mueller-werkzeugbau's invoice mailbox on the demo's IMAP server, and its mailing supplier
    summary["mailbox"] = configure_demo_mailbox(engine, system)
    # the demo organizations' QuickBooks: the simulator `make run` starts (demo/quickbooks.py)
    summary["quickbooks_connected"] = connect_demo_organizations(
        engine, data_dir(), summary["organizations"], system=system
    )
    print(json.dumps(summary, default=str))
    return 0


def run_bench(args: argparse.Namespace) -> int:
    import os

    from invoice_pipelines_devtools.bench import run_scenario

    # benchmarks log in to scratch databases of their own as the server's superuser
    os.environ.setdefault("INVOICE_PIPELINES_ALLOW_OWNER_RUNTIME", "true")
    return run_scenario(args)
