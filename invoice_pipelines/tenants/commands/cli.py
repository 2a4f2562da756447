"""The parsers of `invoice-pipelines organizations add | list | show | change | suspend | resume |
offboard`: argparse alone. The reading verbs run tenants/commands/reading_commands.py, the writing ones
tenants/commands/run.py (tenants/area.py's table names them)."""

from __future__ import annotations

from pathlib import Path

from invoice_pipelines.core.organization_values import FIELDS

VALUE_HELP = {
    "name": "its name as documents and exports write it",
    "country": "ISO country code (default DE)",
    "vat_id": "its VAT id (USt-IdNr.), checked by its country's check digit",
    "tax_number": "its tax number (Steuernummer), e.g. 201/113/40209",
    "datev_berater_nr": "DATEV Beraternummer (1001..9999999)",
    "datev_mandant_nr": "DATEV Mandantennummer (1..99999)",
    "datev_chart": "DATEV chart of accounts: SKR03 or SKR04",
    "invoice_number_format": "e.g. RE-{year}-{counter:06d}",
}


def _values(parser, fields) -> None:
    for name in fields:
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, help=VALUE_HELP[name])


def _by(parser) -> None:
    parser.add_argument(
        "--by", default=None, help="who does it, for the audit (default: your login name)"
    )


def add_commands(sub) -> None:
    group = sub.add_parser("organizations")
    verbs = group.add_subparsers(dest="verb", required=True)

    add = verbs.add_parser(
        "add", help="add one organization by options, or many from --csv FILE (idempotent)"
    )
    add.add_argument("--slug", help="its key: lower-case letters, digits, dashes")
    _values(add, FIELDS[1:])
    add.add_argument(
        "--csv", type=Path, metavar="FILE", help=f"one organization a line: {','.join(FIELDS)}"
    )
    _by(add)

    listing = verbs.add_parser("list", help="every organization with its state")
    listing.add_argument("--state", choices=("active", "suspended", "offboarded", "inactive"))
    listing.add_argument("--json", action="store_true", help="one JSON object a line")

    show = verbs.add_parser("show", help="one organization: values, state, what it holds, audit")
    show.add_argument("org", help="slug or id")
    show.add_argument("--json", action="store_true")

    change = verbs.add_parser("change", help="change its values, audited with who and why")
    change.add_argument("org", help="slug or id")
    _values(change, FIELDS[1:])
    change.add_argument("--why", required=True, help="why, for the audit")
    _by(change)

    suspend = verbs.add_parser(
        "suspend", help="stop everything automatic for it (uploads wait, nothing is lost)"
    )
    suspend.add_argument("org", help="slug or id")
    suspend.add_argument("--reason", required=True, help="shown on it and in sensors' messages")
    _by(suspend)

    resume = verbs.add_parser("resume", help="pick up where it stopped, the waiting uploads first")
    resume.add_argument("org", help="slug or id")
    _by(resume)

    offboard = verbs.add_parser(
        "offboard", help="hand over everything it has (--export DIR), delete it when the law allows"
    )
    offboard.add_argument("org", help="slug or id")
    step = offboard.add_mutually_exclusive_group(required=True)
    step.add_argument("--export", type=Path, metavar="DIR", help="write its data as files here")
    step.add_argument(
        "--delete", action="store_true", help="delete its data (refused before retention ends)"
    )
    _by(offboard)
