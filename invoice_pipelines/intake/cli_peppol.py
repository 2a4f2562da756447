"""`invoice-pipelines peppol receive FILE [--org ORG]`: hand one document a Peppol access point
forwarded (SBDH envelope or bare UBL) to the intake, once per InstanceIdentifier
(intake/peppol_inbound.py). Exit 0: registered, or a replay that changed nothing; 1: recorded but
handed to no organization (unknown receiver); 2: refused (a broken envelope, an unknown --org).

`invoice-pipelines peppol route --org ORG`: the held messages (received for a participant id no
organization had) addressed to the organization's id, registered from their held copies. Exit 0
(also when none was held), 2: the organization is unknown or has no participant id.

`invoice-pipelines peppol listen [--host H] [--port P]`: the HTTP receiver the access point
forwards received documents to (intake/peppol_http.py), until interrupted; exit 2 without
INVOICE_PIPELINES_PEPPOL_INBOUND_TOKEN."""

from __future__ import annotations

import argparse
import json
import sys

from invoice_pipelines.cli_args import port

VERBS = "receive, route, listen"


def add_peppol_commands(sub, no_verb) -> None:
    """The `peppol` parser; `no_verb` answers `peppol` alone."""
    peppol = sub.add_parser("peppol")
    peppol.set_defaults(func=no_verb, parser=peppol)
    verbs = peppol.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser(
        "receive",
        help="a document an access point forwarded (SBDH or bare UBL) into the intake, once "
        "per InstanceIdentifier",
    )
    p.add_argument("path", metavar="FILE")
    p.add_argument(
        "--org",
        help="organization slug or id, for a document whose receiver is no organization's "
        "Peppol participant id (it may not contradict one that is)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_receive)
    p = verbs.add_parser(
        "route",
        help="register the held messages addressed to the organization's participant id",
    )
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.set_defaults(func=run_route)
    p = verbs.add_parser(
        "listen",
        help="the HTTP receiver the access point forwards received documents to "
        "(POST /peppol/inbound)",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port, default=8035)
    p.set_defaults(func=run_listen)


def _say(line: str, *, error: bool = False) -> None:
    """Print a line that may hold text from the document (its InstanceIdentifier, a participant
    id, an element's name): control and bidi characters escaped, never acted on."""
    from invoice_pipelines.core.text import terminal_text

    print(terminal_text(line), file=sys.stderr if error else sys.stdout)


def run_receive(args: argparse.Namespace) -> int:
    from invoice_pipelines.db.tenancy import resolve_organization
    from invoice_pipelines.intake.peppol_inbound import (
        UNKNOWN_RECEIVER,
        ReceiveRefused,
        receive_peppol,
    )
    from invoice_pipelines.resources.uploads import limit_or_setting, read_file_limited

    where = f"invoice-pipelines peppol receive: {args.path}"
    engine = args.resources.database
    if args.org is not None:
        resolve_organization(engine, args.org)  # a mistyped --org is named before the file is read
    try:
        data = read_file_limited(args.path, limit_or_setting(None))
    except OSError as exc:  # UploadTooLarge is one
        _say(f"{where}: {exc}", error=True)
        return 2
    try:
        received = receive_peppol(engine, args.resources.upload_store, data, organization=args.org)
    except ReceiveRefused as exc:
        _say(f"{where}: {exc}", error=True)
        return 2
    if args.json:
        print(json.dumps(received.to_json_dict()))
    else:
        _say(f"{received.outcome}: {received.message}")
    return 1 if received.outcome == UNKNOWN_RECEIVER else 0


def run_route(args: argparse.Namespace) -> int:
    from invoice_pipelines.intake.peppol_inbound import ReceiveRefused, route_held

    try:
        routed = route_held(args.resources.database, args.resources.upload_store, args.org)
    except ReceiveRefused as exc:
        _say(f"invoice-pipelines peppol route: {exc}", error=True)
        return 2
    if args.json:
        print(json.dumps([received.to_json_dict() for received in routed]))
        return 0
    for received in routed:
        _say(f"{received.outcome}: {received.message}")
    _say(f"{len(routed)} held message(s) for {args.org} routed")
    return 0


def run_listen(args: argparse.Namespace) -> int:
    from invoice_pipelines.intake.peppol_http import INBOUND_PATH, TOKEN_SETTING, receiver
    from invoice_pipelines.resources.http_receiver import serve_until_interrupted
    from invoice_pipelines.settings import env

    token = env(TOKEN_SETTING)
    if not token.strip():
        _say(
            f"invoice-pipelines peppol listen: {TOKEN_SETTING} is empty or blank; set it to the "
            "token the access point sends as Authorization: Bearer",
            error=True,
        )
        return 2
    server = receiver(
        args.resources.database, args.resources.upload_store, token, args.host, args.port
    )
    return serve_until_interrupted(server, INBOUND_PATH)
