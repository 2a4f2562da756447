"""The `invoice-pipelines` console script. Thin: every command calls the functions the jobs call."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence

# the commands of the development tooling (invoice_pipelines/devtools/cli.py), which the container
# image does not carry: there each of them is one sentence instead of a traceback
DEVTOOLS_COMMANDS = ("seed-demo", "qbo-simulator", "bench")


def _cmd_migrate(args: argparse.Namespace) -> int:
    from invoice_pipelines.db.engine import database_url, make_engine
    from invoice_pipelines.db.migrate import upgrade

    engine = make_engine(owner=True)
    revision = upgrade(engine, args.revision)
    print(f"database {database_url(redact=True)} at revision {revision}")
    return 0


def _cmd_parse(args: argparse.Namespace) -> int:
    from invoice_pipelines.intake.cli_parse import run_parse

    return run_parse(args.path, as_json=args.json)


def _cmd_batch_invoice(args: argparse.Namespace) -> int:
    from invoice_pipelines.billing.cli import run_batch_invoice

    return run_batch_invoice(args)


def _cmd_batch_status(args: argparse.Namespace) -> int:
    from invoice_pipelines.billing.cli import run_batch_status

    return run_batch_status(args)


def _cmd_batch_list(args: argparse.Namespace) -> int:
    from invoice_pipelines.billing.cli import run_batch_list

    return run_batch_list(args)


def _cmd_batch_cancel(args: argparse.Namespace) -> int:
    from invoice_pipelines.billing.cli import run_batch_cancel

    return run_batch_cancel(args)


def _cmd_batch_retry(args: argparse.Namespace) -> int:
    from invoice_pipelines.billing.cli import run_batch_retry

    return run_batch_retry(args)


def devtools_installed() -> bool:
    """Whether the development tooling is here (a checkout, `make install`); the image has none."""
    return importlib.util.find_spec("invoice_pipelines.devtools") is not None


def _add_devtools_commands(sub) -> None:
    if devtools_installed():
        from invoice_pipelines.devtools.cli import add_commands

        add_commands(sub)
        return
    for name in DEVTOOLS_COMMANDS:  # listed in --help; main() answers them in one sentence
        sub.add_parser(name, help="development tooling, not installed in this image")


def build_parser() -> argparse.ArgumentParser:
    from invoice_pipelines.db.tables import BATCH_JOB_STATUSES

    parser = argparse.ArgumentParser(prog="invoice-pipelines", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("migrate", help="upgrade the database named by INVOICE_PIPELINES_DB_URL")
    p.add_argument("--revision", default="head")
    p.set_defaults(func=_cmd_migrate)

    p = sub.add_parser("parse", help="parse and validate one invoice file offline")
    p.add_argument("path")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_parse)

    p = sub.add_parser("batch-invoice", help="enqueue a batch invoicing job")
    p.add_argument("--org", required=True, help="organization id or slug")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--orders", help="comma-separated sales order ids")
    group.add_argument("--all-reviewed", action="store_true", help="every reviewed order")
    group.add_argument(
        "--customer-lines",
        metavar="FILE.json",
        help="invoice customers directly: a JSON list of {customer, lines: [{item|description, "
        "quantity, unit_price, vat_rate}]}",
    )
    p.add_argument(
        "--up-to", help="with --all-reviewed: only orders dated up to this day (YYYY-MM-DD)"
    )
    p.add_argument(
        "--invoice-date", help="YYYY-MM-DD; default today in the organization's timezone"
    )
    p.add_argument(
        "--due-days", type=int, default=None, help="default: the organization's payment terms"
    )
    p.add_argument("--created-by", default=None)
    p.add_argument("--wait", action="store_true", help="process now and show progress until done")
    p.add_argument(
        "--chunk-size", type=int, default=5000, help="orders per transaction with --wait"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="with --wait on PostgreSQL: chunks in flight at once, one connection each",
    )
    p.add_argument(
        "--generate-pdf",
        action="store_true",
        help="then write the invoices' documents (a documents job queued with this one)",
    )
    p.add_argument(
        "--send-immediately",
        action="store_true",
        help="then send the invoices, once each (a communications job queued with this one)",
    )
    p.add_argument(
        "--channel", choices=["email", "sms", "whatsapp"], help="with --send-immediately (email)"
    )
    p.set_defaults(func=_cmd_batch_invoice)

    p = sub.add_parser("batch-status", help="show a batch job")
    p.add_argument("job_id", type=int)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_batch_status)

    p = sub.add_parser("batch-list", help="list recent batch jobs, most recent first")
    p.add_argument("--org", help="organization id or slug; default: every organization")
    p.add_argument("--status", choices=BATCH_JOB_STATUSES, help="only jobs in this status")
    p.add_argument("--limit", type=int, default=20, help="at most this many jobs (default 20)")
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.set_defaults(func=_cmd_batch_list)

    p = sub.add_parser("batch-cancel", help="cancel a pending or processing batch job")
    p.add_argument("job_id", type=int)
    p.add_argument("--created-by", default=None)
    p.set_defaults(func=_cmd_batch_cancel)

    p = sub.add_parser("batch-retry", help="new batch job over exactly the failed orders of a job")
    p.add_argument("job_id", type=int)
    p.add_argument("--created-by", default=None)
    p.set_defaults(func=_cmd_batch_retry)

    from invoice_pipelines.billing.cli import add_commands as add_billing_commands

    add_billing_commands(sub)
    from invoice_pipelines.exports.cli import add_commands as add_export_commands

    add_export_commands(sub)
    from invoice_pipelines.delivery.cli import add_commands as add_delivery_commands

    add_delivery_commands(sub)
    from invoice_pipelines.overdue.cli import add_commands as add_overdue_commands

    add_overdue_commands(sub)
    from invoice_pipelines.quickbooks.cli import add_commands as add_qbo_commands

    add_qbo_commands(sub)
    from invoice_pipelines.housekeeping.cli import add_commands as add_housekeeping_commands

    add_housekeeping_commands(sub)
    _add_devtools_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from invoice_pipelines.db.tenancy import UnknownOrganization
    from invoice_pipelines.settings import ConfigError

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DEVTOOLS_COMMANDS and not devtools_installed():
        print(
            f"invoice-pipelines {argv[0]}: {argv[0]} is development tooling, "
            "not installed in this image",
            file=sys.stderr,
        )
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"invoice-pipelines: configuration error: {exc}", file=sys.stderr)
        return 2
    except UnknownOrganization as exc:
        # a mistyped --org is the user's error, not ours: one sentence, like a refused request
        print(
            f"invoice-pipelines {args.command}: there is no organization {exc.key!r}",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
