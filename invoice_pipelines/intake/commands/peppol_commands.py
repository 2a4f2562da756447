"""What the intake's `invoice-pipelines peppol` verbs do.

`invoice-pipelines peppol receive FILE [--org ORG]`: hand one document a Peppol access point
forwarded (SBDH envelope or bare UBL) to the intake, once per InstanceIdentifier
(intake/domain/peppol_inbound.py). Exit 0: registered, or a replay that changed nothing; 1: recorded but
handed to no organization (unknown receiver); 2: refused (a broken envelope, an unknown --org).

`invoice-pipelines peppol route --org ORG`: the held messages (received for a participant id no
organization had) addressed to the organization's id, registered from their held copies. Exit 0
(also when none was held), 2: the organization is unknown or has no participant id.

`invoice-pipelines peppol listen [--host H] [--port P]`: the HTTP receiver the access point
forwards received documents to (intake/domain/peppol_http.py), until interrupted; exit 2 without
INVOICE_PIPELINES_PEPPOL_INBOUND_TOKEN.

Their parser is intake/commands/cli_peppol.py's; intake/area.py's table names `run_peppol_command` for the
intake's verbs, and the console script imports this module only when one of them runs."""

from __future__ import annotations

import argparse
import json
import sys

from invoice_pipelines.area_parts import run_verb
from invoice_pipelines.core.text import terminal_text
from invoice_pipelines.intake.domain.peppol_http import INBOUND_PATH, TOKEN_SETTING, receiver
from invoice_pipelines.intake.domain.peppol_inbound import (
    UNKNOWN_RECEIVER,
    ReceiveRefused,
    receive_peppol,
    route_held,
)
from invoice_pipelines.resources.files.uploads import limit_or_setting, read_file_limited
from invoice_pipelines.resources.http_receiver import serve_until_interrupted
from invoice_pipelines.settings import env


def run_peppol_command(args: argparse.Namespace) -> int:
    """The command the table names: its verb's function."""
    return run_verb(args, RUNS)


def _say(line: str, *, error: bool = False) -> None:
    """Print a line that may hold text from the document (its InstanceIdentifier, a participant
    id, an element's name): control and bidi characters escaped, never acted on."""
    print(terminal_text(line), file=sys.stderr if error else sys.stdout)


def run_receive(args: argparse.Namespace) -> int:
    where = f"invoice-pipelines peppol receive: {args.path}"
    engine = args.resources.system_database  # its organization is found from its receiver
    try:
        data = read_file_limited(args.path, limit_or_setting(None))
    except OSError as exc:  # UploadTooLarge is one
        _say(f"{where}: {exc}", error=True)
        return 2
    try:
        received = receive_peppol(
            engine, args.resources.upload_store, data, organization=args.organization
        )
    except ReceiveRefused as exc:
        _say(f"{where}: {exc}", error=True)
        return 2
    if args.json:
        print(json.dumps(received.to_json_dict()))
    else:
        _say(f"{received.outcome}: {received.message}")
    return 1 if received.outcome == UNKNOWN_RECEIVER else 0


def run_route(args: argparse.Namespace) -> int:
    try:
        routed = route_held(
            args.resources.system_database, args.resources.upload_store, args.organization
        )
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
    token = env(TOKEN_SETTING)
    if not token.strip():
        _say(
            f"invoice-pipelines peppol listen: {TOKEN_SETTING} is empty or blank; set it to the "
            "token the access point sends as Authorization: Bearer",
            error=True,
        )
        return 2
    server = receiver(
        args.resources.system_database, args.resources.upload_store, token, args.host, args.port
    )
    return serve_until_interrupted(server, INBOUND_PATH)


RUNS = {"receive": run_receive, "route": run_route, "listen": run_listen}
