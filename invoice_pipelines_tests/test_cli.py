"""The console script as a whole: what every subcommand does with a mistyped organization, where
each area's commands are defined, and a reader that closes the pipe early."""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import insert

from invoice_pipelines.area_parts import load
from invoice_pipelines.cli import EXIT_BROKEN_PIPE, build_parser, main
from invoice_pipelines.db.tables import incoming_invoices
from invoice_pipelines.db.tenancy import tenant_transaction

# plausible values for the other required arguments, so that the organization is what a command
# trips over; an argument not named here gets "1"
REQUIRED_VALUES = {
    "month": "2026-01",
    "valid_from": "2026-01-01",
    "percent": "1.5",
    "reason": "typo test",
    "kind": "business",
    "keep": "local",
}


def _subcommands_with_org(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    """Every (nested) subcommand that takes --org, found in the parser itself, so a command added
    later is covered without touching this test."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _subcommands_with_org(sub, (*prefix, name))
    if prefix and any("--org" in a.option_strings for a in parser._actions):
        found.append(prefix)
    return found


def _argv(command: tuple[str, ...], tmp_path: Path) -> list[str]:
    # a file argument (batch-credit-notes --items) is read before the organization is looked up
    items = tmp_path / "items.json"
    items.write_text('[{"invoice_number": "RE-2026-000001", "reason": "typo test"}]')
    values = {**REQUIRED_VALUES, "items": str(items)}
    parser = build_parser()
    for name in command:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    argv = [*command, "--org", "no-such-org"]

    def add(action: argparse.Action) -> None:
        value = values.get(action.dest, "1")
        if action.choices is not None and value not in action.choices:
            value = next(iter(action.choices))
        if not action.option_strings:
            argv.append(value)
        elif action.nargs == 0:  # a flag
            argv.append(action.option_strings[0])
        else:
            argv.extend([action.option_strings[0], value])

    for action in parser._actions:
        if "--org" in action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        if action.required or (not action.option_strings and action.nargs != "?"):
            add(action)
    for group in parser._mutually_exclusive_groups:
        if group.required:
            add(group._group_actions[0])
    return argv


COMMANDS = _subcommands_with_org(build_parser())


def test_the_commands_with_org_are_found():
    names = {" ".join(c) for c in COMMANDS}
    # the four that printed a traceback, and a few that did not
    assert {"export", "export-reopen", "documents", "send-invoices"} <= names
    assert {"overdue", "qbo-sync", "batch-invoice", "housekeeping"} <= names


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_an_unknown_organization_is_one_sentence(command, db, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    monkeypatch.setenv("INVOICE_PIPELINES_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("INVOICE_PIPELINES_UPLOAD_DIR", str(tmp_path / "uploads"))
    argv = _argv(command, tmp_path)

    code = main(argv)

    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0, argv
    assert "Traceback" not in err, err
    assert len(lines) == 1, (argv, err)
    assert "no organization 'no-such-org'" in lines[0], (argv, err)
    assert lines[0].startswith(f"invoice-pipelines {command[0]}") or lines[0].startswith(
        "invoice-pipelines:"
    ), lines[0]


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def _module_of(func) -> str:
    """The module of what a command runs: the function its area's table names, loaded."""
    return load(func.path).__module__


def _runs(parser: argparse.ArgumentParser) -> dict[str, object]:
    """What a command runs, by verb: a verb's own function where it has one (argparse takes it
    over the group's: `peppol`, whose verbs run their own areas' functions), else the command's."""
    func = parser.get_default("func")
    verbs = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    if verbs is None:
        return {"": func}
    return {verb: p.get_default("func") or func for verb, p in verbs.choices.items()}


def test_every_area_adds_its_own_commands_from_its_cli_py():
    """Each area's `<area>/commands/cli.py` has `add_commands(subparsers)`, and what a command runs is
    named by the area's table (`Command.run`) and lives in a module of the area's own;
    the console script is the commands of the areas' tables (`areas.AREAS`, then
    devtools'), in their order, each added by the cli.py of its own area."""
    from invoice_pipelines import cli
    from invoice_pipelines.area_parts import Deferred
    from invoice_pipelines.areas import AREAS

    assembled: list[str] = []
    for area in (*AREAS, cli.DEVTOOLS):
        if not area.commands:
            continue
        sub = argparse.ArgumentParser().add_subparsers()
        area.add_commands(sub)  # refuses a command its table and its cli.py do not share
        assert list(sub.choices) == [c.name for c in area.commands], area.name
        if area is not cli.DEVTOOLS:
            package = area.parsers.partition(":")[0].rpartition(".")[0]
            for name, parser in sub.choices.items():
                for verb, func in _runs(parser).items():
                    assert isinstance(func, Deferred), (name, verb)  # named by its table
                    assert _module_of(func).startswith(f"{package}."), (name, verb)
        assembled += [name for name in sub.choices if name not in assembled]  # a group once
    commands = _commands(build_parser())
    assert list(commands) == assembled
    where = {
        f"{name} {verb}".strip(): _module_of(func)
        for name, p in commands.items()
        for verb, func in _runs(p).items()
    }
    assert where["migrate"] == "invoice_pipelines.db.commands.run"
    assert where["parse"] == "invoice_pipelines.intake.commands.parse_command"
    assert where["incoming list"] == "invoice_pipelines.intake.commands.run"
    assert where["suppliers add"] == "invoice_pipelines.intake.commands.supplier_commands"
    assert (
        where["peppol receive"]
        == where["peppol listen"]
        == "invoice_pipelines.intake.commands.peppol_commands"
    )
    assert where["batch-invoice"] == "invoice_pipelines.billing.commands.run"
    # each command in the area whose work it does: the queue's shared commands in the queue, a
    # documents job with the documents
    assert where["batch-status"] == where["batch-retry"] == "invoice_pipelines.queue.commands.run"
    assert where["batch-run"] == "invoice_pipelines.queue.commands.run"
    assert (
        where["documents"] == where["batch-documents"] == "invoice_pipelines.documents.commands.run"
    )
    assert (
        where["batch-send"] == where["send-invoices"] == "invoice_pipelines.delivery.commands.run"
    )
    assert (
        where["peppol lookup"]
        == where["peppol send"]
        == "invoice_pipelines.delivery.commands.peppol_commands"
    )
    # a cli.py that the console script does not assemble would be a dead file
    package = Path(cli.__file__).parent
    with_cli = {p.parent.parent.name for p in package.glob("*/commands/cli.py")}
    assert with_cli == {area.name for area in AREAS if area.commands}


def test_the_console_script_itself_defines_no_command_or_argument():
    """invoice_pipelines/cli.py assembles the areas and handles errors: no add_argument and no
    set_defaults of its own (the only parsers it adds stand in for devtools where it is absent)."""
    from invoice_pipelines import cli

    tree = ast.parse(Path(cli.__file__).read_text())
    calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert not calls & {"add_argument", "add_mutually_exclusive_group", "set_defaults"}


def test_a_reader_that_stops_early_leaves_no_traceback(sqlite_database):
    """`invoice-pipelines incoming list ... | head -1`: the reader takes one line and closes the
    pipe while the command still writes; the command stops quietly, as Unix tools do, with no
    BrokenPipeError traceback on stderr (before: a traceback, then "Exception ignored")."""
    db = sqlite_database
    org = db.new_organization()
    # far more output than a pipe holds (64 KiB), so the command is still writing when the
    # reader goes away
    rows = [
        {
            "organization_id": org["id"],
            "status": "NEEDS_REVIEW",
            "content_hash": f"{i:064x}",
            "invoice_number": f"PIPE-{i}",
            "seller_name": "Lieferant mit einem langen Namen GmbH & Co. KG",
        }
        for i in range(3000)
    ]
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(insert(incoming_invoices), rows)
    command = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from invoice_pipelines.cli import main; sys.exit(main())",
        ]
        + ["incoming", "list", "--org", org["slug"], "--limit", "3000", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "INVOICE_PIPELINES_DB_URL": db.url},
    )
    first = command.stdout.readline()
    command.stdout.close()  # what `head -1` does after its line
    err = command.stderr.read().decode()
    code = command.wait(timeout=120)

    assert json.loads(first)["invoice_number"].startswith("PIPE-")
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert err == ""
    assert code == EXIT_BROKEN_PIPE  # as a shell reports a process a closed pipe ended
