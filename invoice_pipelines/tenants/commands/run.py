"""What the writing verbs of `invoice-pipelines organizations` do: add, change, suspend, resume,
offboard (tenants/domain/lifecycle.py, tenants/domain/offboarding.py), each audited with who (`--by`, else the
login name) and why. `add` and an offboarding's deletion also write the Dagster partitions in the
same call (tenants/domain/partition_keys.py). Each problem a person can correct is one line; the exit
code is 1 when anything was refused. The parsers are tenants/commands/cli.py's."""

from __future__ import annotations

import argparse
import getpass
import json
import time
from collections.abc import Callable

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.organization_values import FIELDS
from invoice_pipelines.core.readiness import gaps
from invoice_pipelines.core.text import terminal_text
from invoice_pipelines.db.tenancy import UnknownOrganization
from invoice_pipelines.resources.dagster_instance.dagster_ui import (
    AssetEvent,
    CheckEvent,
    tell_dagster,
)
from invoice_pipelines.resources.dagster_instance.local_dagster import dagster_url
from invoice_pipelines.tenants.domain.lifecycle import (
    Refused,
    add_organizations,
    change_organization,
    resume_organization,
    suspend_organization,
)
from invoice_pipelines.tenants.domain.listing import (
    organization_facts,
    organization_findings,
    show_organization,
)
from invoice_pipelines.tenants.domain.offboarding import (
    NotYet,
    Stores,
    delete_organization,
    deletion_lines,
    export_organization,
)
from invoice_pipelines.tenants.domain.organizations_csv import CsvProblem, read_organizations_csv
from invoice_pipelines.tenants.domain.partition_keys import sync_partitions


def who(args: argparse.Namespace) -> str:
    return (args.by or "").strip() or getpass.getuser()


# organizations a command reports to Dagster one by one; an onboarding of thousands shows them
# with Materialize (or the next run), not with 10,000 requests
TOLD = 100
ASSET = "organizations"  # tenants/assets.py, not imported: that module is Dagster's


def tell(args: argparse.Namespace, orgs: list[Organization]) -> None:
    """Report the organizations' new state on the `organizations` asset (a runless event each,
    with its checks' evaluations; resources/dagster_instance/dagster_ui.py), so the UI shows it without a run."""
    if not dagster_url():
        return
    engine, uploads = args.resources.system_database, args.resources.upload_store
    shown = [show_organization(engine, org, uploads) for org in orgs[:TOLD]]
    events: list[AssetEvent | CheckEvent] = []
    for one in shown:
        events.append(AssetEvent(ASSET, one["slug"], organization_facts(one)))
        events += [
            CheckEvent(ASSET, name, finding, one["slug"])
            for name, finding in organization_findings(one).items()
        ]
    tell_dagster(events)


def make_drop_zones(uploads, orgs: list[Organization]) -> None:
    """Each added organization's drop zone, made now so a person sees where invoices go (issue
    85: `organizations add` made none); the first one named. A store that cannot make it says
    so in one line (the upload sensor reads the folder once it is there)."""
    made = []
    for org in orgs:
        try:
            made.append(uploads.make_inbox(org.slug))
        except OSError as exc:
            print(terminal_text(f"note: {org.slug}'s drop zone not made ({exc})"))
            return
    if made:
        more = f" (and {len(made) - 1} more beside it)" if len(made) > 1 else ""
        print(terminal_text(f"drop invoices into {made[0]}{more}"))


def say_what_is_missing(orgs: list[Organization]) -> None:
    """One line per setting an added organization left out, with what it holds back and how to
    set it (core/readiness.py): known at the add, not at the next month-end's run."""
    lacking = [(org, gap) for org in orgs for gap in gaps(org)]
    for org, gap in lacking[:TOLD]:
        print(terminal_text(f"note: {gap.sentence(org.slug)}"))
    if len(lacking) > TOLD:
        print(f"note: and {len(lacking) - TOLD} more (`organizations show` names each)")


def _refused(problems: list[str]) -> int:
    for problem in problems:
        print(terminal_text(f"refused: {problem}"))
    return 1


def run_add(args: argparse.Namespace) -> int:
    started = time.monotonic()
    given = {name: getattr(args, name) for name in FIELDS if getattr(args, name) is not None}
    if args.csv and given:
        print("organizations add: give --csv FILE or the values by options, not both")
        return 2
    if args.csv:
        try:
            rows, problems = read_organizations_csv(args.csv)
        except CsvProblem as exc:
            return _refused([str(exc)])
    else:
        rows, problems = [("options", given)], []
    system = args.resources.system_database
    report = add_organizations(system, rows, by=who(args), problems=problems)
    if report.problems:
        _refused(report.problems)
        print(f"{report.summary()} ({len(rows)} row(s) read)")
        return 1
    print(report.summary())
    added = [org for org in report.organizations if org.slug in set(report.added)]
    say_what_is_missing(added)
    make_drop_zones(args.resources.upload_store, added)
    # the partitions of every organization of the file, the unchanged ones too: a first add
    # whose partitions were not written (no DAGSTER_HOME then) gets them with the second
    print(sync_partitions([*report.added, *report.unchanged]))
    tell(args, report.organizations)
    print(
        json.dumps(
            {
                "added": len(report.added),
                "unchanged": len(report.unchanged),
                "seconds": round(time.monotonic() - started, 3),
            }
        )
    )
    return 0


def _done(args: argparse.Namespace, step: Callable[[], object]) -> tuple[object, int | None]:
    """What a lifecycle step returned, or (None, the exit code) when it was refused: each problem
    one line."""
    try:
        return step(), None
    except UnknownOrganization:
        return None, _refused([f"there is no organization {args.org!r} (any more)"])
    except Refused as exc:
        return None, _refused(exc.problems)


def run_change(args: argparse.Namespace) -> int:
    given = {name: getattr(args, name) for name in FIELDS[1:] if getattr(args, name) is not None}
    if not given:
        print("organizations change: name a value to change (--name, --vat-id, ...)")
        return 2
    engine, org = args.resources.system_database, args.organization  # the organization row
    changes, refused = _done(
        args, lambda: change_organization(engine, org, given, by=who(args), why=args.why)
    )
    if refused is not None:
        return refused
    assert isinstance(changes, dict)
    if not changes:
        print(f"{args.org}: nothing changed: the values are as given")
    else:
        tell(args, [org])
    for name, (old, new) in changes.items():
        print(terminal_text(f"{args.org}: {name} {old!r} -> {new!r}"))
    return 0


def run_suspend(args: argparse.Namespace) -> int:
    engine, org = args.resources.system_database, args.organization  # the organization row
    done, refused = _done(
        args, lambda: suspend_organization(engine, org, reason=args.reason, by=who(args))
    )
    if refused is not None:
        return refused
    if not done:
        print(f"{args.org}: suspended already, for this reason; nothing changed")
    else:
        tell(args, [org])
        print(
            terminal_text(
                f"{args.org}: suspended ({args.reason.strip()}): sensors, schedules and backfills "
                "request nothing for it; its uploads wait in its drop zone"
            )
        )
    return 0


def run_resume(args: argparse.Namespace) -> int:
    engine, org = args.resources.system_database, args.organization  # the organization row
    resumed, refused = _done(args, lambda: resume_organization(engine, org, by=who(args)))
    if refused is not None:
        return refused
    if resumed is None:
        print(f"{args.org}: not suspended; nothing changed")
        return 0
    tell(args, [org])
    print(
        terminal_text(
            f"{args.org}: resumed (it was suspended since {resumed['suspended_at'][:16]}: "
            f"{resumed['reason']}); the upload sensor reads its waiting uploads at its next tick "
            f"({resumed['uploads_waiting']} registered and not read, and every file in its drop "
            "zone), then the other sensors and schedules pick up their work"
        )
    )
    return 0


def run_offboard(args: argparse.Namespace) -> int:
    engine, org = args.resources.database, args.organization
    system = args.resources.system_database
    stores = Stores(
        uploads=args.resources.upload_store,
        documents=args.resources.document_store,
        exports=args.resources.export_store,
    )
    try:
        if args.export:
            manifest = export_organization(
                engine, org, args.export, system=system, by=who(args), stores=stores
            )
            print(
                f"{args.org}: {manifest['files']} files written to {args.export} (manifest.json: "
                "the SHA-256 of each); it is suspended and offboarded; its data may be deleted "
                f"from {manifest['deletable_from']} (offboard --delete)"
            )
            for missing in manifest["not_copied"]:
                print(terminal_text(f"not copied: {missing}"))
            tell(args, [org])
            return 0
        deleted = delete_organization(engine, org, system=system, by=who(args), stores=stores)
    except UnknownOrganization:
        return _refused([f"there is no organization {args.org!r}"])
    except (Refused, NotYet) as exc:
        return _refused([str(exc)])
    for line in deletion_lines(deleted):
        print(terminal_text(line))
    if deleted.gone:
        print(sync_partitions([], [deleted.slug]))
    return 0
