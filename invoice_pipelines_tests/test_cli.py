"""The console script as a whole: what every subcommand does with a mistyped organization."""

from __future__ import annotations

import argparse

import pytest

from invoice_pipelines.cli import build_parser, main

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


def _argv(command: tuple[str, ...]) -> list[str]:
    parser = build_parser()
    for name in command:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    argv = [*command, "--org", "no-such-org"]

    def add(action: argparse.Action) -> None:
        value = REQUIRED_VALUES.get(action.dest, "1")
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
    argv = _argv(command)

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
