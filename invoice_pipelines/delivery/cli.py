"""`invoice-pipelines documents` and `send-invoices`: the functions the documents and delivery
assets call, from the command line (JSON summary on the last line)."""

from __future__ import annotations

import argparse
import json


def add_commands(sub) -> None:
    p = sub.add_parser(
        "documents", help="write the documents (Factur-X PDF, XRechnung) of invoices"
    )
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--invoices", default="", help="sales invoice ids, e.g. 1,2; default: all new")
    p.set_defaults(func=run_documents)
    p = sub.add_parser("send-invoices", help="e-mail invoices that have documents, at most once")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--invoices", default="", help="sales invoice ids; default: all never sent")
    p.add_argument("--retry-failed", action="store_true", help="send failed deliveries again")
    p.add_argument("--resend", action="store_true", help="send the given invoices again")
    p.add_argument("--per-second", type=float, default=50.0, help="messages per second at most")
    p.add_argument("--connections", type=int, default=2, help="connections side by side")
    p.add_argument("--channel", choices=["email", "sms", "whatsapp"], default="email")
    p.set_defaults(func=run_send)


def _ids(text: str) -> list[int] | None:
    ids = [int(part) for part in text.split(",") if part.strip()]
    return ids or None


def run_documents(args: argparse.Namespace) -> int:
    from invoice_pipelines.db.engine import make_engine
    from invoice_pipelines.documents.pipeline import generate_documents
    from invoice_pipelines.resources.stores import file_store_from_env

    summary = generate_documents(
        make_engine(), file_store_from_env("documents"), args.org, _ids(args.invoices)
    )
    print(
        json.dumps(
            {
                "generated": summary.generated,
                "xrechnung": summary.xrechnung,
                "already": summary.already,
                "failed": {str(k): v for k, v in summary.failed.items()},
                "paths": summary.paths,
            }
        )
    )
    return 1 if summary.failed else 0


def run_send(args: argparse.Namespace) -> int:
    from invoice_pipelines.db.engine import make_engine
    from invoice_pipelines.delivery.pipeline import EmailChannel, TextChannel, send_invoices
    from invoice_pipelines.resources.mail import mailer_from_env
    from invoice_pipelines.resources.stores import file_store_from_env

    if args.resend and not args.invoices:
        print("invoice-pipelines: --resend needs --invoices")
        return 2
    if args.channel == "email":
        mailer = mailer_from_env()
        if not isinstance(mailer.password, str):  # an EnvVar outside Dagster: read it here
            mailer = mailer.model_copy(update={"password": mailer.password.get_value() or ""})
        channel = EmailChannel(mailer)
    else:
        from invoice_pipelines.resources.messaging import provider_from_env

        provider = provider_from_env()
        if not isinstance(provider.token, str):
            provider = provider.model_copy(update={"token": provider.token.get_value() or ""})
        channel = TextChannel(provider, whatsapp=args.channel == "whatsapp")
    summary = send_invoices(
        make_engine(),
        file_store_from_env("documents"),
        channel,
        args.org,
        _ids(args.invoices),
        retry_failed=args.retry_failed,
        resend=args.resend,
        max_per_second=args.per_second,
        connections=args.connections,
        requested_by="cli",
    )
    print(
        json.dumps(
            {
                "sent": summary.sent,
                "failed": {str(k): v for k, v in summary.failed.items()},
                "unknown": {str(k): v for k, v in summary.unknown.items()},
                "skipped": {str(k): v for k, v in summary.skipped.items()},
                "retries": summary.retries,
            }
        )
    )
    return 1 if summary.failed or summary.unknown else 0
