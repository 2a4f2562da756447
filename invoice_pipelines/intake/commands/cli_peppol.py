"""The parser of the intake's `invoice-pipelines peppol` verbs: `receive FILE [--org ORG]`,
`route --org ORG` and `listen [--host H] [--port P]`, argparse alone. What each does (and its exit
codes) is in intake/commands/peppol_commands.py, named by intake/area.py's table."""

from __future__ import annotations

from invoice_pipelines.cli_args import port


def add_peppol_commands(sub) -> None:
    """The `peppol` group with the intake's verbs (intake/commands/cli.py adds it; delivery adds its own);
    each verb runs the function intake/area.py's table names for the intake's `peppol`."""
    peppol = sub.add_parser("peppol")
    peppol.set_defaults(parser=peppol)
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
    p = verbs.add_parser(
        "route",
        help="register the held messages addressed to the organization's participant id",
    )
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p = verbs.add_parser(
        "listen",
        help="the HTTP receiver the access point forwards received documents to "
        "(POST /peppol/inbound)",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port, default=8035)
