"""`invoice-pipelines parse`: one file parsed and validated offline (intake/cli_parse.py does it;
imported when the command runs, so the other commands do not load the parser)."""

from __future__ import annotations

import argparse


def add_commands(sub) -> None:
    p = sub.add_parser("parse", help="parse and validate one invoice file offline")
    p.add_argument("path")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_parse_command)


def run_parse_command(args: argparse.Namespace) -> int:
    from invoice_pipelines.intake.cli_parse import run_parse

    return run_parse(args.path, as_json=args.json)
