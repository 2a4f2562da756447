"""One action per request of the organizations' lifecycle: `add`, `change`, `suspend`, `resume`,
`offboard`. Each takes the work's parts (`Parts`: the system engine, the upload store, the
`report` of whoever asked, and how the partitions are written), the `Organization` and the
request; it does the work (lifecycle.py, offboarding.py), says what happened through `report` in
the sentences the run's log and the terminal both show, tells the UI what changed on the
`organizations` asset, and returns the outcome, or raises `Refused`, one sentence per problem a
person can correct. The launchpad's ops (tenants/jobs.py) and the commands
(tenants/commands/run.py) are adapters over them: they read the request from the run's config or
the options, hand over their report, and word the outcome as a run's value or an exit code."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.readiness import gaps
from invoice_pipelines.db.tenancy import UnknownOrganization
from invoice_pipelines.lib.read_only import Refused
from invoice_pipelines.resources.dagster_instance.dagster_ui import AssetEvent, CheckEvent, Report
from invoice_pipelines.resources.files.uploads import Uploads
from invoice_pipelines.tenants.domain.lifecycle import (
    AddReport,
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

# organizations whose new state an action shows the UI one by one, and whose missing settings it
# names; an onboarding of thousands shows the rest with the next run (or `organizations show`)
TOLD = 100
ASSET = "organizations"  # tenants/assets.py's asset; that module is Dagster's


@dataclass(frozen=True)
class Parts:
    """What the lifecycle's actions work with: the system engine (every write of the lifecycle
    is the system login's), the upload store (drop zones, what `show` counts), whoever asked
    (`report`) and `partitions(add, remove)`, which writes the `organizations` partitions and
    says so in a sentence (partition_keys.py `sync_partitions`, on the run's instance or on the
    command's)."""

    system: Engine
    uploads: Uploads | None
    report: Report
    partitions: Callable[[Sequence[str], Sequence[str]], str]


def organization_events(parts: Parts, orgs: Sequence[Organization]) -> Iterator:
    """Each organization's partition of `organizations` as the change left it, with its checks
    evaluated on it (the UI shows a check "Not evaluated" on a materialization without its
    evaluation); read only when someone listens."""
    for org in orgs[:TOLD]:
        shown = show_organization(parts.system, org, parts.uploads)
        yield AssetEvent(ASSET, org.slug, organization_facts(shown))
        for name, finding in organization_findings(shown).items():
            yield CheckEvent(ASSET, name, finding, org.slug)


@contextmanager
def _refusing(org: Organization) -> Iterator[None]:
    """The lifecycle's refusals as one `Refused`: gone since it was looked up, not yet deletable."""
    try:
        yield
    except UnknownOrganization:
        raise Refused([f"there is no organization {org.slug!r} (any more)"]) from None
    except NotYet as exc:
        raise Refused([str(exc)]) from None


def add(
    parts: Parts, *, csv: Path | None, values: Mapping[str, str | None], by: str, where: str
) -> AddReport:
    """Add the organizations of an onboarding CSV, or the one of `values` (`where` names it in
    its problems), all or none; each added one's drop zone, what it lacks, its partition."""
    try:
        rows, problems = read_organizations_csv(csv) if csv else ([(where, values)], [])
    except CsvProblem as exc:
        raise Refused([str(exc)]) from None
    added = add_organizations(parts.system, rows, by=by, problems=problems)
    if added.problems:
        parts.report.warn(f"{added.summary()} ({len(rows)} row(s) read)")
        raise Refused(added.problems)
    parts.report.say(added.summary())
    _say_what_is_missing(parts.report, added.organizations)
    _make_drop_zones(parts, added.organizations)
    # the partitions of every organization of the file, the unchanged ones too: a first add
    # whose partitions were not written (no Dagster instance then) gets them with the second
    parts.report.say(parts.partitions([*added.added, *added.unchanged], ()))
    parts.report.changed(organization_events(parts, added.organizations))
    return added


def _say_what_is_missing(report: Report, orgs: Sequence[Organization]) -> None:
    """One line per setting an added organization left out, with what it holds back and how to
    set it (core/readiness.py): known at the add, not at the next month-end's run."""
    lacking = [(org, gap) for org in orgs for gap in gaps(org)]
    for org, gap in lacking[:TOLD]:
        report.warn(f"note: {gap.sentence(org.slug)}")
    if len(lacking) > TOLD:
        report.warn(f"note: and {len(lacking) - TOLD} more (`organizations show` names each)")


def _make_drop_zones(parts: Parts, orgs: Sequence[Organization]) -> None:
    """Each added organization's drop zone, made now so a person sees where invoices go (issue
    85); the first one named. A store that cannot make one says so in one line and makes no
    more (the upload sensor reads the folder once it is there)."""
    if parts.uploads is None:
        return
    made = []
    for org in orgs:
        try:
            made.append(parts.uploads.make_inbox(org.slug))
        except OSError as exc:
            parts.report.warn(f"note: {org.slug}'s drop zone not made ({exc})")
            return
    if made:
        more = f" (and {len(made) - 1} more beside it)" if len(made) > 1 else ""
        parts.report.say(f"drop invoices into {made[0]}{more}")


def change(
    parts: Parts, org: Organization, given: Mapping[str, str | None], *, by: str, why: str
) -> dict:
    """Change the values `given` through the checks of `add`, audited; {name: [old, new]}."""
    with _refusing(org):
        changes = change_organization(parts.system, org, given, by=by, why=why)
    if not changes:
        parts.report.say(f"{org.slug}: nothing changed: the values are as given")
        return changes
    for name, (old, new) in changes.items():
        parts.report.say(f"{org.slug}: {name} {old!r} -> {new!r}")
    parts.report.changed(organization_events(parts, [org]))
    return changes


def suspend(parts: Parts, org: Organization, *, reason: str, by: str) -> bool:
    """Suspend it; False: it was suspended for this reason already (nothing changed)."""
    with _refusing(org):
        done = suspend_organization(parts.system, org, reason=reason, by=by)
    if not done:
        parts.report.say(f"{org.slug}: suspended already, for this reason; nothing changed")
        return done
    parts.report.changed(organization_events(parts, [org]))
    parts.report.say(
        f"{org.slug}: suspended ({reason.strip()}): sensors, schedules and backfills request "
        "nothing for it; its uploads wait in its drop zone"
    )
    return done


def resume(parts: Parts, org: Organization, *, by: str) -> dict | None:
    """Resume it; what its suspension was, or None: it was not suspended (nothing changed)."""
    with _refusing(org):
        resumed = resume_organization(parts.system, org, by=by)
    if resumed is None:
        parts.report.say(f"{org.slug}: not suspended; nothing changed")
        return resumed
    parts.report.changed(organization_events(parts, [org]))
    parts.report.say(
        f"{org.slug}: resumed (it was suspended since {resumed['suspended_at'][:16]}: "
        f"{resumed['reason']}); the upload sensor reads its waiting uploads at its next tick "
        f"({resumed['uploads_waiting']} registered and not read, and every file in its drop "
        "zone), then the other sensors and schedules pick up their work"
    )
    return resumed


def offboard(
    parts: Parts,
    org: Organization,
    *,
    database: Engine,
    stores: Stores,
    export_dir: Path | None,
    delete: bool,
    by: str,
) -> dict:
    """Step 1 (`export_dir`): everything it has written there, it offboarded; step 2
    (`delete`): its data deleted once every retention period allows. What was done, in numbers."""
    if bool(export_dir) == delete:
        raise Refused(["give the folder to export to (step 1) or the deletion (step 2), one"])
    with _refusing(org):
        if delete:
            deleted = delete_organization(database, org, system=parts.system, by=by, stores=stores)
        else:
            manifest = export_organization(
                database, org, Path(export_dir or ""), system=parts.system, by=by, stores=stores
            )
    if delete:
        for line in deletion_lines(deleted):
            parts.report.say(line)
        if deleted.gone:
            parts.report.say(parts.partitions([], [deleted.slug]))
        rows = sum(deleted.rows.values())
        return {"deleted_rows": rows, "files": deleted.files_removed, "kept": deleted.kept}
    parts.report.say(
        f"{org.slug}: {manifest['files']} files written to {export_dir} (manifest.json: the "
        "SHA-256 of each); it is suspended and offboarded; its data may be deleted from "
        f"{manifest['deletable_from']} (offboard --delete)"
    )
    for missing in manifest["not_copied"]:
        parts.report.warn(f"not copied: {missing}")
    parts.report.changed(organization_events(parts, [org]))
    return {"files": manifest["files"], "deletable_from": manifest["deletable_from"]}
