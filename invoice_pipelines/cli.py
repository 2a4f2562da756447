"""The `invoice-pipelines` console script. Thin: every command calls the functions the jobs call."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Sequence

from invoice_pipelines.area_parts import Area, Command, add_to_group
from invoice_pipelines.areas import AREAS, command_resources
from invoice_pipelines.resources.for_commands import EnvResources
from invoice_pipelines.settings import ConfigError

# the commands of the development tooling (the top-level package invoice_pipelines_devtools, beside
# invoice_pipelines/ in a checkout and in no wheel or image), listed after the areas' by the
# console script alone (the code location has no devtools): where it is absent each of them is
# one sentence saying how to get it instead of a traceback
DEVTOOLS = Area(
    "devtools",
    commands=(
        Command(
            "seed-demo",
            "create demo organizations, customers, items, orders (idempotent)",
            run="invoice_pipelines_devtools.commands:run_seed_demo",
        ),
        Command(
            "qbo-simulator",
            "serve the local QuickBooks Online simulator on 127.0.0.1 (controls under /_sim)",
            run="invoice_pipelines_devtools.qbo_simulator.cli:run_simulator",
        ),
        Command(
            "bench",
            "run a benchmark scenario; JSON on the last stdout line",
            run="invoice_pipelines_devtools.commands:run_bench",
        ),
    ),
    parsers="invoice_pipelines_devtools.cli:add_commands",
)
DEVTOOLS_COMMANDS = tuple(command.name for command in DEVTOOLS.commands)
GET_DEVTOOLS = "it comes with a checkout of the repository: run `make install` there"
# what a shell reports for a process a closed pipe ended (128 + SIGPIPE), as `head` leaves it
EXIT_BROKEN_PIPE = 141


def devtools_installed() -> bool:
    """Whether the development tooling is here (a checkout after `make install`); a wheel or the
    image has none."""
    return importlib.util.find_spec("invoice_pipelines_devtools") is not None


def _with_commands() -> tuple[Area, ...]:
    """The areas that have commands, in the order `--help` lists them, the dev tooling last."""
    return (*(area for area in AREAS if area.commands), DEVTOOLS)


def build_parser(command: str | None = None, verb: str | None = None) -> argparse.ArgumentParser:
    """The console script's parser. Without `command`: every area's parsers, each area's cli.py
    imported. With `command` (what main() does): only the parsers of that command's area are
    imported; every other command is a stand-in with its name and help from its area's table
    (`Area.commands`), so `--help` and a mistyped name answer as the full parser would. A command
    in no area (`""` for `--help`, a typo) imports none. Of a group several areas add verbs to
    (`peppol`), only the areas whose table lists `verb` (or lists no verbs) are imported, every
    one of them when `verb` is none of theirs."""
    parser = argparse.ArgumentParser(prog="invoice-pipelines", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    areas = _with_commands()
    loaded = [
        area
        for area in areas
        if _wanted(area, areas, command, verb)
        and not (area is DEVTOOLS and not devtools_installed())
    ]
    # the groups a loaded area adds verbs to (`peppol`): made where their first area lists them
    real = {listed.name for area in loaded for listed in area.commands}
    for area in areas:
        absent = area is DEVTOOLS and not devtools_installed()
        if area in loaded:
            area.add_commands(sub)
            continue
        for listed in area.commands:
            if listed.name in sub.choices:  # a group made before: this area's help joins it
                add_to_group(sub, listed.name, listed.help)
            elif listed.name in real:  # a group a loaded area adds its verbs to, here in order
                group = sub.add_parser(listed.name, help=listed.help)
                group.add_subparsers(dest="verb", required=True)
            elif absent:  # listed in --help; main() answers them in one sentence
                sub.add_parser(
                    listed.name, help=f"development tooling, not installed here ({GET_DEVTOOLS})"
                )
            else:
                sub.add_parser(listed.name, help=listed.help, add_help=False)
    return parser


def _wanted(area: Area, areas: Sequence[Area], command: str | None, verb: str | None) -> bool:
    """Whether `area`'s parsers are loaded for `command` (all of them for None)."""
    if command is None:
        return True
    mine = [c for c in area.commands if c.name == command]
    if not mine:
        return False
    if not mine[0].verbs:
        return True
    every = {v for a in areas for c in a.commands if c.name == command for v in c.verbs}
    return verb in mine[0].verbs or verb not in every


def _command_in(argv: Sequence[str]) -> str | None:
    """The command argparse will dispatch to: the first word that is not an option (the top-level
    parser has only -h)."""
    return next((word for word in argv if not word.startswith("-")), None)


def _verb_in(argv: Sequence[str]) -> str | None:
    """The word after the command, where it is no option: a group's verb (`peppol lookup`)."""
    command = _command_in(argv)
    if command is None:
        return None
    after = argv[argv.index(command) + 1 : argv.index(command) + 2]
    return after[0] if after and not after[0].startswith("-") else None


def _assemble(args: argparse.Namespace) -> None:
    """What every command gets from the areas, as definitions.py gives it to the runs: the
    resources by the runs' names (`args.resources`, each built when the command first asks for
    it), every area's kinds of batch job among them (`batch_kinds`: a command may meet a job of
    each)."""

    args.resources = EnvResources(command_resources)


def _org_option(parser: argparse.ArgumentParser, args: argparse.Namespace) -> type | None:
    """How the command that runs takes organizations: one (`--org`, or the `organizations`
    commands' positional `org`, which they lock by the id found here: a store action), many
    (housekeeping's repeatable `--org`: an append action), or none (None)."""
    while sub := next(
        (a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None
    ):
        parser = sub.choices.get(getattr(args, sub.dest, None))
        if parser is None:
            return None
    kinds = (argparse._StoreAction, argparse._AppendAction)
    return next((type(a) for a in parser._actions if a.dest == "org" and type(a) in kinds), None)


def _find_organizations(args: argparse.Namespace, kind: type) -> None:
    """A command's `--org` found once, here, and handed down as values: one slug or id as
    `args.organization` (None without `--org`; an unknown one raises UnknownOrganization, which
    `main` says in one sentence), a repeatable one as `args.organizations`, the organizations
    named (every one without `--org`) and the names that are none, which the command reports."""
    from invoice_pipelines.db.tenancy import find_organization, find_organizations

    system = args.resources.system_database
    if kind is argparse._AppendAction:
        args.organizations = find_organizations(system, args.org)
        return
    args.organization = None if args.org is None else find_organization(system, args.org)


def _quiet_broken_pipe() -> int:
    """The reader of stdout went away (`... | head -1`): stop without a traceback, as Unix tools
    do, and without a second complaint when Python flushes stdout at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is no file (a test's capture)
        pass
    return EXIT_BROKEN_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DEVTOOLS_COMMANDS and not devtools_installed():
        print(
            f"invoice-pipelines {argv[0]}: {argv[0]} is development tooling, not installed "
            f"here; {GET_DEVTOOLS}",
            file=sys.stderr,
        )
        return 2
    parser = build_parser(_command_in(argv) or "", _verb_in(argv))
    args = parser.parse_args(argv)
    # after parsing: `--help` and a usage error answer before SQLAlchemy is imported
    from invoice_pipelines.db.tenancy import UnknownOrganization
    from invoice_pipelines.lib.read_only import Refused

    try:
        _assemble(args)
        if kind := _org_option(parser, args):
            _find_organizations(args, kind)
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe is found here, not at exit
        return code
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except ConfigError as exc:
        print(f"invoice-pipelines: configuration error: {exc}", file=sys.stderr)
        return 2
    except UnknownOrganization as exc:
        # `_find_organizations` finds every command's --org; a mistyped one is the user's error,
        # not ours: one sentence, like a refused request
        print(
            f"invoice-pipelines {args.command}: there is no organization {exc.key!r}",
            file=sys.stderr,
        )
        return 2
    except Refused as exc:
        # a request refused before any work (an offboarded organization's data: `writable`)
        print(f"invoice-pipelines {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
