"""The `invoice-pipelines` console script. Thin: every command calls the functions the jobs call."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

# The areas whose `<area>/cli.py` add commands (`add_commands(subparsers)`), in the order
# `--help` lists them; this module only assembles them and handles the errors they raise.
AREAS = (
    "db",
    "intake",
    "billing",
    "exports",
    "documents",
    "delivery",
    "overdue",
    "quickbooks",
    "housekeeping",
)

# the commands of the development tooling (the top-level package invoice_pipelines_devtools, beside
# invoice_pipelines/ in a checkout and in no wheel or image): where it is absent each of them is one
# sentence saying how to get it instead of a traceback
DEVTOOLS_COMMANDS = ("seed-demo", "qbo-simulator", "bench")
GET_DEVTOOLS = "it comes with a checkout of the repository: run `make install` there"


def devtools_installed() -> bool:
    """Whether the development tooling is here (a checkout after `make install`); a wheel or the
    image has none."""
    return importlib.util.find_spec("invoice_pipelines_devtools") is not None


def _add_devtools_commands(sub) -> None:
    if devtools_installed():
        from invoice_pipelines_devtools.cli import add_commands

        add_commands(sub)
        return
    for name in DEVTOOLS_COMMANDS:  # listed in --help; main() answers them in one sentence
        sub.add_parser(name, help=f"development tooling, not installed here ({GET_DEVTOOLS})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="invoice-pipelines", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for area in AREAS:
        importlib.import_module(f"invoice_pipelines.{area}.cli").add_commands(sub)
    _add_devtools_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from invoice_pipelines.db.tenancy import UnknownOrganization
    from invoice_pipelines.settings import ConfigError

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DEVTOOLS_COMMANDS and not devtools_installed():
        print(
            f"invoice-pipelines {argv[0]}: {argv[0]} is development tooling, not installed "
            f"here; {GET_DEVTOOLS}",
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
