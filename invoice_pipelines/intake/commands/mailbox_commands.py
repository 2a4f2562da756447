"""What `invoice-pipelines mailbox` does (issue 86): `set` stores an organization's invoice mailbox
(intake/domain/mailbox_config.py; exit 2 with one sentence for a configuration it refuses, nothing
stored), `show` prints it (exit 1 when it has none), `remove` stops reading it. The password is
never an argument: `--secret-name` names the environment variable that holds it, and `set` says
whether this process sees that variable set, never its value."""

from __future__ import annotations

import argparse
import json
import os
import sys

from invoice_pipelines.area_parts import run_verb
from invoice_pipelines.core.text import terminal_text
from invoice_pipelines.intake.domain.mailbox_config import (
    MailboxRefused,
    checked,
    mailbox_of,
    remove_mailbox,
    set_mailbox,
)
from invoice_pipelines.lib.read_only import writable


def run_mailbox_command(args: argparse.Namespace) -> int:
    return run_verb(args, RUNS)


def _say(line: str, *, error: bool = False) -> None:
    print(terminal_text(line), file=sys.stderr if error else sys.stdout)


def _described(box) -> str:
    goes = (
        f"moved to {box.processed_folder!r}"
        if box.processed_folder
        else f"flagged {box.processed_flag}"
    )
    routed = f", messages to {box.address}" if box.address else ""
    return (
        f"{box.slug}: {box.username}@{box.host}:{box.port} ({box.tls}), folder {box.folder!r}"
        f"{routed}; read mail is {goes}; password from ${box.secret_name}"
    )


def run_set(args: argparse.Namespace) -> int:
    writable(args.organization)  # an offboarded one: one sentence (cli.py), before any work
    try:
        values = checked(
            host=args.host,
            port=args.port,
            tls=args.tls,
            username=args.user,
            secret_name=args.secret_name,
            folder=args.folder,
            processed_folder=args.processed_folder,
            processed_flag=args.processed_flag,
            address=args.address,
        )
    except MailboxRefused as exc:
        _say(f"invoice-pipelines mailbox set: {exc}; nothing was stored", error=True)
        return 2
    box = set_mailbox(args.resources.database, args.organization, values)
    if args.json:
        print(json.dumps(box.to_json_dict()))
        return 0
    _say(f"mailbox set: {_described(box)}")
    if not os.environ.get(box.secret_name):
        _say(
            f"note: {box.secret_name} is not set in this shell; the code location that runs "
            "mailbox_sensor must have it"
        )
    return 0


def run_show(args: argparse.Namespace) -> int:
    box = mailbox_of(args.resources.database, args.organization)
    if box is None:
        _say(f"{args.organization.slug} has no mailbox (invoice-pipelines mailbox set)", error=True)
        return 1
    if args.json:
        print(json.dumps(box.to_json_dict()))
    else:
        _say(_described(box))
    return 0


def run_remove(args: argparse.Namespace) -> int:
    writable(args.organization)
    removed = remove_mailbox(args.resources.database, args.organization)
    _say(
        f"{args.organization.slug}: mailbox removed; its messages read so far stay recorded"
        if removed
        else f"{args.organization.slug} had no mailbox"
    )
    return 0


RUNS = {"set": run_set, "show": run_show, "remove": run_remove}
