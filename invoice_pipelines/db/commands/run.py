"""What `invoice-pipelines migrate` does: the application database's schema from the command
line. Its parser is db/commands/cli.py's; db/area.py's table names `run_migrate`, and the console script
imports this module only when the command runs (Alembic itself waits inside db/migrate.py's
functions).

The one command that makes its own engine instead of taking `args.resources.database`: migrations
log in as the tables' owner, which the runtime `database` resource (a run's or another
command's) never does."""

from __future__ import annotations

import argparse

from invoice_pipelines.db.engine import database_url, make_engine
from invoice_pipelines.db.migrate import upgrade


def run_migrate(args: argparse.Namespace) -> int:
    # migrations log in as the tables' owner, which the runtime `database` resource never does
    engine = make_engine(owner=True)
    revision = upgrade(engine, args.revision)
    print(f"database {database_url(redact=True)} at revision {revision}")
    return 0
