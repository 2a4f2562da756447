"""The `invoice-pipelines` console script. Thin: every command calls the functions the jobs call."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

from invoice_pipelines.cli_commands import COMMANDS

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
DEVTOOLS = "devtools"  # the area name of the development tooling's commands in COMMANDS
# the areas whose cli.py registers a kind of the batch-job queue (`queue.registry.register`): a
# command of any of them may meet a job of each of those kinds (batch-status describes it,
# batch-run and --wait run it, a batch's follow-up jobs chain them), so they are loaded together
QUEUE_KIND_AREAS = ("billing", "documents", "delivery")

# the commands of the development tooling (the top-level package invoice_pipelines_devtools, beside
# invoice_pipelines/ in a checkout and in no wheel or image): where it is absent each of them is one
# sentence saying how to get it instead of a traceback
DEVTOOLS_COMMANDS = tuple(name for name, area, _ in COMMANDS if area == DEVTOOLS)
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


def _add_area_commands(sub, area: str) -> None:
    if area == DEVTOOLS:
        _add_devtools_commands(sub)
    else:
        importlib.import_module(f"invoice_pipelines.{area}.cli").add_commands(sub)


def _areas_of(command: str) -> set[str]:
    """The areas whose cli.py the command needs: its own, with the queue's kinds where it may
    meet a job."""
    area = next((area for name, area, _ in COMMANDS if name == command), None)
    if area is None:
        return set()
    return {area, *QUEUE_KIND_AREAS} if area in QUEUE_KIND_AREAS else {area}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The console script's parser. Without `command`: every area's commands, each area's cli.py
    imported. With `command` (what main() does): only that command's area is imported (with the
    other QUEUE_KIND_AREAS for a command of one of them); every other command is a stand-in with
    its name and help from the table (`cli_commands.COMMANDS`), so `--help` and a mistyped name
    answer as the full parser would. A command in no area (`""` for `--help`, a typo) imports
    none."""
    parser = argparse.ArgumentParser(prog="invoice-pipelines", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    wanted = _areas_of(command) if command is not None else set()
    added: set[str] = set()
    for name, area, text in COMMANDS:
        if command is None or area in wanted:
            if area not in added:
                added.add(area)
                _add_area_commands(sub, area)
        elif area == DEVTOOLS and not devtools_installed():
            sub.add_parser(name, help=f"development tooling, not installed here ({GET_DEVTOOLS})")
        else:
            sub.add_parser(name, help=text, add_help=False)
    return parser


def _letter_writer():
    """The documents area's letter writer, for a command that writes letters (overdue's), as
    definitions.py binds it for the runs: made when the command asks, so no other command loads
    the documents area."""
    from invoice_pipelines.documents.cli import letter_writer

    return letter_writer()


def _command_in(argv: Sequence[str]) -> str | None:
    """The command argparse will dispatch to: the first word that is not an option (the top-level
    parser has only -h)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DEVTOOLS_COMMANDS and not devtools_installed():
        print(
            f"invoice-pipelines {argv[0]}: {argv[0]} is development tooling, not installed "
            f"here; {GET_DEVTOOLS}",
            file=sys.stderr,
        )
        return 2
    parser = build_parser(_command_in(argv) or "")
    args = parser.parse_args(argv)
    # what one area's command takes from another, handed in here as definitions.py hands it to
    # the runs (no area imports another)
    args.letter_writer = _letter_writer
    # after parsing: `--help` and a usage error answer before SQLAlchemy is imported
    from invoice_pipelines.db.tenancy import UnknownOrganization
    from invoice_pipelines.settings import ConfigError

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
