"""Where a command's imports wait (issue 57; docs/architecture.md, "Where an import may wait"):
an area whose table names each command's function (`Command.run`, a `module:function` path in its
`area.py`)
has parsers that import nothing inside a function, and the functions' modules import what they
need at their top. `<command> --help` loads neither SQLAlchemy nor the module of the command's
function; the function the parser calls is the one the table names."""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import subprocess
import sys

import pytest

from invoice_pipelines import cli
from invoice_pipelines.area_parts import Area, Command, Deferred, load
from invoice_pipelines.areas import AREAS


def _seamed():
    """Every command of the areas with its area (each names its function: `Command.run`)."""
    return [(command, area) for area in AREAS for command in area.commands]


def _imports_in_functions(source: str) -> list[int]:
    tree = ast.parse(source)
    return sorted(
        inner.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for inner in ast.walk(node)
        if isinstance(inner, ast.Import | ast.ImportFrom)
    )


def test_no_command_without_its_function():
    """A command's function is named in its table or the command is not written: a `Command`
    without `run` is refused, and every parser of the console script, each verb of a group, runs
    a loader from a table (no parser sets a function of its own, devtools' neither)."""
    with pytest.raises(TypeError, match="run"):
        Command("stamp", "stamp a letter")
    commands = _subparsers(cli.build_parser()).choices
    assert len(commands) == len({c.name for a in (*AREAS, cli.DEVTOOLS) for c in a.commands})
    for name, parser in commands.items():
        verbs = _subparsers(parser)  # a group: what runs is each verb's (or the group's) function
        for verb, named in verbs.choices.items() if verbs else [("", parser)]:
            func = named.get_default("func") or parser.get_default("func")
            assert isinstance(func, Deferred), (name, verb)


def _subparsers(parser: argparse.ArgumentParser):
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)


def test_a_named_function_is_what_the_parser_calls():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for command, _area in _seamed():
        parser = sub.choices[command.name]
        # a group several areas add verbs to (`peppol`): each verb holds its own area's loader
        held = [_verb(parser, verb) for verb in command.verbs] or [parser]
        for named in held:
            func = named.get_default("func")
            assert isinstance(func, Deferred) and func.path == command.run, command.name
        assert callable(load(command.run)), command.name
        # a verb whose work is a module of its own (`incoming review`): its parser holds its path
        for verb, path in command.verb_runs.items():
            func = _verb(parser, verb).get_default("func")
            assert isinstance(func, Deferred) and func.path == path, (command.name, verb)
            assert callable(load(path)) and load(path) is not load(command.run), (
                command.name,
                verb,
            )


def _verb(parser: argparse.ArgumentParser, verb: str) -> argparse.ArgumentParser:
    verbs = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return verbs.choices[verb]


def test_seamed_parsers_and_functions_import_at_their_tops():
    modules = set()
    for command, area in _seamed():
        modules.add(sys.modules[load(area.parsers).__module__])
        modules.add(inspect.getmodule(load(command.run)))
        modules.update(inspect.getmodule(load(path)) for path in command.verb_runs.values())
    for module in modules:
        lines = _imports_in_functions(inspect.getsource(module))
        assert lines == [], f"{module.__name__}: imports inside functions at lines {lines}"


def test_a_seamed_commands_help_loads_neither_sqlalchemy_nor_its_function():
    """Each `<command> --help` in a fresh process: it printed its usage, and neither SQLAlchemy
    nor the module of the command's function was imported."""
    probe = (
        "import contextlib, io, json, sys\n"
        "from invoice_pipelines.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(out):\n"
        "    main([sys.argv[1], '--help'])\n"
        "print(json.dumps([out.getvalue(), sorted(sys.modules)]))\n"
    )
    for command, _area in _seamed():
        function_module = inspect.getmodule(load(command.run)).__name__
        verb_modules = {
            inspect.getmodule(load(path)).__name__ for path in command.verb_runs.values()
        }
        done = subprocess.run(
            [sys.executable, "-c", probe, command.name],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        said, loaded = json.loads(done.stdout.strip().splitlines()[-1])
        assert said.startswith(f"usage: invoice-pipelines {command.name}"), said
        assert not any(m == "sqlalchemy" or m.startswith("sqlalchemy.") for m in loaded), command
        assert function_module not in loaded, command.name
        assert not verb_modules & set(loaded), command.name


# the parts of the made-up areas below, named by path as an area's table names its own
HERE = __name__


def _stamped(args) -> int:
    return 7


def _stamp_parser(sub) -> None:
    sub.add_parser("stamp")


def _stamp_parser_setting_func(sub) -> None:
    sub.add_parser("stamp").set_defaults(func=_stamped)


def _received(args) -> int:
    return 3


def _looked_up(args) -> int:
    return 4


def _post_verb(sub, verb: str, *, sets_func: bool = False) -> None:
    group = sub.add_parser("post")
    verbs = group.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser(verb)
    if sets_func:
        p.set_defaults(func=_stamped)


def _post_receive(sub) -> None:
    _post_verb(sub, "receive")


def _post_lookup(sub) -> None:
    _post_verb(sub, "lookup")


def _post_receive_setting_func(sub) -> None:
    _post_verb(sub, "receive", sets_func=True)


def test_a_parser_that_sets_the_function_its_table_names_is_refused():
    """The table names what a command runs; a parser that sets `func` as well would run the
    other one, so `Area.add_commands` refuses it, and gives a parser that does not the path."""
    for parsers in ("_stamp_parser_setting_func", "_stamp_parser"):
        area = Area(
            "stamps",
            commands=(Command("stamp", "stamp a letter", run=f"{HERE}:_stamped"),),
            parsers=f"{HERE}:{parsers}",
        )
        sub = argparse.ArgumentParser().add_subparsers()
        if parsers == "_stamp_parser_setting_func":
            with pytest.raises(ValueError, match="named in its area's table"):
                area.add_commands(sub)
        else:
            area.add_commands(sub)
            func = sub.choices["stamp"].get_default("func")
            assert isinstance(func, Deferred) and func(argparse.Namespace()) == 7


def test_a_group_two_areas_add_to_runs_each_verbs_own_function():
    """`peppol`: the intake adds `receive`, delivery `lookup`; each verb runs the function of the
    area that adds it (a path per verb), and a verb whose parser sets `func` is refused."""

    def area(name: str, verb: str, parsers: str, run: str) -> Area:
        return Area(
            name,
            commands=(Command("post", f"{verb} letters", verbs=(verb,), run=f"{HERE}:{run}"),),
            parsers=f"{HERE}:{parsers}",
        )

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    area("inbound", "receive", "_post_receive", "_received").add_commands(sub)
    area("outbound", "lookup", "_post_lookup", "_looked_up").add_commands(sub)
    for argv, code in ((["post", "receive"], 3), (["post", "lookup"], 4)):
        args = parser.parse_args(argv)
        assert isinstance(args.func, Deferred) and args.func(args) == code
    sub = argparse.ArgumentParser().add_subparsers()
    with pytest.raises(ValueError, match="named in its area's table"):
        area("inbound", "receive", "_post_receive_setting_func", "_received").add_commands(sub)


def test_a_part_named_by_anything_but_its_path_is_refused_when_declared():
    """A table names each part `module:name`; a typo (no colon, a function instead of its path)
    is an error when the area is declared, not when a person first runs the command."""
    for run in ("invoice_pipelines.billing.commands.run.run_batch_invoice", _stamped):
        with pytest.raises(ValueError, match="module:name"):
            Command("stamp", "stamp a letter", run=run)
    with pytest.raises(ValueError, match="module:name"):
        Area("stamps", definitions="invoice_pipelines.billing.defs")
    with pytest.raises(ValueError, match="names no parsers"):
        Area("stamps", commands=(Command("stamp", "stamp a letter", run=f"{HERE}:_stamped"),))
