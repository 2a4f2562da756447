"""The parser of `invoice-pipelines migrate`: argparse alone, so `--help` imports no SQLAlchemy
and no Alembic. What it does is in db/commands/run.py, named by db/area.py's table (with its help)."""

from __future__ import annotations


def add_commands(sub) -> None:
    p = sub.add_parser("migrate")
    p.add_argument("--revision", default="head")
