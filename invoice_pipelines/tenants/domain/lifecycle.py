"""An organization's lifecycle in the database (issue 75): added (one, or thousands from an
onboarding CSV, set-based), changed, suspended and resumed, each audited in `audit_log` with who
and why. What the `organizations` commands and their launchpad jobs call; no Dagster here (the
partitions are the callers', tenants/domain/partition_keys.py).

A suspended organization keeps its data and its partitions: sensors, schedules and backfills
request nothing for it (`db.tenancy.suspended_organizations`, lib/automation.py) until it is
resumed.
Every write runs in a system transaction (db/tenancy.py): on PostgreSQL the system login's, never
the owner's nor the runtime login's, to which the database refuses adding or deleting an
organization and changing its suspension or offboarding (migration 0056).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.engine import Connection

from invoice_pipelines.core.chunks import chunked
from invoice_pipelines.core.numbering import number_regex
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.organization_values import FIELDS, check_values
from invoice_pipelines.core.vat_ids import vat_id_problem
from invoice_pipelines.db.locks import Lock, xact_lock
from invoice_pipelines.db.sequences import INVOICES, read_sequence
from invoice_pipelines.db.tables import audit_log, incoming_invoices, organizations, sales_invoices
from invoice_pipelines.db.tenancy import UnknownOrganization, system_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.lib.read_only import Refused, read_only_sentence

CHUNK = 5000  # slugs per IN list, rows per INSERT
STATES = ("active", "suspended", "offboarded", "inactive")
# the uploads a suspended organization's intake has registered and not read yet
WAITING_STATUSES = ("UPLOADED", "CREATED")


@dataclass
class AddReport:
    """What `add_organizations` did: the slugs added and those already there with the same values,
    or (nothing written) every problem, one sentence each naming its line."""

    added: list[str] = field(default_factory=list)
    # the organizations added, as values (for the callers' reports to Dagster)
    organizations: list[Organization] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.problems:
            return f"{len(self.problems)} problem(s): nothing was written"
        if not self.added:
            return f"nothing changed: all {len(self.unchanged)} organization(s) are there as given"
        return f"added {len(self.added)}, already there as given {len(self.unchanged)}"


def state_of(row: Mapping[str, Any]) -> str:
    """The organization's state as a person reads it."""
    if row.get("offboarded_at"):
        return "offboarded"
    if row.get("suspended_at"):
        return "suspended"
    return "active" if row.get("active", True) else "inactive"


def _audit(
    created_by: str, action: str, organization_id: int | None, slug: str, details: dict
) -> dict:
    return {
        "organization_id": organization_id,
        "created_by": created_by[:255],
        "action": action,
        "entity_type": "organization",
        "entity_id": slug,
        "details": details,
    }


def add_organizations(
    system: Engine,
    rows: Sequence[tuple[str, Mapping[str, str | None]]],
    *,
    by: str,
    problems: Sequence[str] = (),
) -> AddReport:
    """Add the organizations of `rows` ((where, values as typed): `where` names the line in
    problems). Every value is checked first; a file with any problem writes nothing. An
    organization already there with the same values is left as it is (so the same file twice
    changes nothing); one there with other values is a problem (that is `change`). `problems`:
    what reading the file found already (they too stop every write)."""
    report = AddReport(problems=list(problems))
    checked: dict[str, tuple[str, dict]] = {}
    for where, given in rows:
        result = check_values(given)
        report.problems += [f"{where}: {problem}" for problem in result.problems]
        slug = result.values.get("slug")
        if not isinstance(slug, str):
            continue
        if slug in checked:
            report.problems.append(f"{where}: the slug {slug!r} is on {checked[slug][0]} already")
            continue
        checked[slug] = (where, result.values)
    with system_transaction(system, write=True) as conn:
        existing = _existing(conn, list(checked))
        report.problems += _vat_ids_taken(conn, checked)
        new: list[dict] = []
        for slug, (where, values) in checked.items():
            there = existing.get(slug)
            if there is None:
                new.append(values)
                continue
            differ = [name for name in FIELDS if name in values and values[name] != there[name]]
            if differ:
                shown = ", ".join(f"{n} {there[n]!r} (file: {values[n]!r})" for n in differ[:3])
                report.problems.append(
                    f"{where}: organization {slug!r} exists with other values: {shown}; "
                    "change it with `invoice-pipelines organizations change`"
                )
            else:
                report.unchanged.append(slug)
        if report.problems:
            report.unchanged = []
            return report
        for chunk in chunked(new, CHUNK):
            added = [
                Organization.from_row(row)
                for row in conn.execute(
                    insert(organizations).returning(*organizations.c), list(chunk)
                ).mappings()
            ]
            report.organizations += added
            ids = {org.slug: org.id for org in added}
            conn.execute(
                insert(audit_log),
                [
                    _audit(by, "organization_added", ids[v["slug"]], v["slug"], _json(v))
                    for v in chunk
                ],
            )
        report.added = [v["slug"] for v in new]
    return report


def _vat_ids_taken(conn: Connection, checked: Mapping[str, tuple[str, dict]]) -> list[str]:
    """A sentence for each organization of a file whose VAT id another one has, on an earlier
    line or in the database: a VAT id is one company's, and two organizations of one company
    would book its invoices twice. An offboarded organization's VAT id is free again (the
    company may come back); the organization itself (the same file twice) is no other."""
    problems = []
    first: dict[str, str] = {}
    for where, values in checked.values():
        vat_id = values.get("vat_id")
        if not vat_id:
            continue
        if vat_id in first:
            problems.append(f"{where}: the VAT id {vat_id} is on {first[vat_id]} already")
        else:
            first[vat_id] = where
    if first:
        xact_lock(conn, Lock.ORGANIZATION_VAT_IDS, 0)
    taken = _organizations_of_vat_ids(conn, list(first))
    for slug, (where, values) in checked.items():
        other = taken.get(values.get("vat_id"))
        if other is not None and other != slug and first.get(values["vat_id"]) == where:
            problems.append(f"{where}: {_vat_id_taken(values['vat_id'], other)}")
    return problems


def _organizations_of_vat_ids(conn: Connection, vat_ids: Sequence[str]) -> dict[str, str]:
    """The slug of the organization (not offboarded) of each VAT id that has one."""
    o = organizations.c
    found: dict[str, str] = {}
    for chunk in chunked(vat_ids, CHUNK):
        for vat_id, slug in conn.execute(
            select(o.vat_id, o.slug)
            .where(o.vat_id.in_(chunk), o.offboarded_at.is_(None))
            .order_by(o.id)
        ):
            found.setdefault(vat_id, slug)
    return found


def _vat_id_taken(vat_id: str, slug: str) -> str:
    return (
        f"the VAT id {vat_id} is organization {slug!r}'s already: two organizations may not "
        "share one"
    )


def _json(values: Mapping[str, Any]) -> dict:
    return {k: v for k, v in values.items() if v is not None}


def _existing(conn: Connection, slugs: Sequence[str]) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for chunk in chunked(slugs, CHUNK):
        for row in conn.execute(
            select(*(organizations.c[name] for name in FIELDS)).where(
                organizations.c.slug.in_(chunk)
            )
        ).mappings():
            found[row["slug"]] = dict(row)
    return found


def locked(conn: Connection, org: Organization) -> dict:
    """The organization's row as it is now, locked by its id (FOR UPDATE) for the step that
    changes it: two steps on one organization at once run one after the other. Gone since it was
    looked up: UnknownOrganization."""
    row = (
        conn.execute(select(organizations).where(organizations.c.id == org.id).with_for_update())
        .mappings()
        .first()
    )
    if row is None:
        raise UnknownOrganization(org.slug)
    return dict(row)


def change_organization(
    system: Engine, org: Organization, given: Mapping[str, str | None], *, by: str, why: str
) -> dict:
    """Change the values `given` (text as typed; "" clears a value that may be empty) through the
    same checks as `add`, audited with who and why; the changed values as {name: [old, new]}
    (empty: nothing changed, nothing written)."""
    if not why.strip():
        raise Refused(["say why (--why): the audit keeps it with the change"])
    if "slug" in given:
        raise Refused(["the slug is the organization's partition key and cannot change"])
    result = check_values(given, complete=False)
    for name in ("name", "country", "datev_chart", "invoice_number_format"):
        if name in given and not (given[name] or "").strip():
            result.problems.append(f"the {name} cannot be empty")
    with system_transaction(system, write=True) as conn:
        row = locked(conn, org)
        if row["offboarded_at"]:
            raise Refused([read_only_sentence(row["slug"])])
        if result.problems:
            raise Refused(result.problems)
        changes = {n: [row[n], v] for n, v in result.values.items() if row[n] != v}
        problems = _cross_checks(conn, row, {n: new for n, (_, new) in changes.items()})
        if problems:
            raise Refused(problems)
        if not changes:
            return {}
        conn.execute(
            update(organizations)
            .where(organizations.c.id == row["id"])
            .values({n: new for n, (_, new) in changes.items()})
        )
        details = {"why": why.strip(), "changes": changes}
        conn.execute(
            insert(audit_log), [_audit(by, "organization_changed", row["id"], row["slug"], details)]
        )
    return changes


def _cross_checks(conn: Connection, org: dict, new: Mapping[str, Any]) -> list[str]:
    """What a change breaks beyond its own values: a VAT id of the other country or of another
    organization, DATEV numbers half given, a number format that writes the imported history's
    numbers again."""

    problems = []
    after = {**org, **new}
    if ("vat_id" in new or "country" in new) and after["vat_id"]:
        problem = vat_id_problem(after["vat_id"], after["country"])
        if problem:
            problems.append(problem)
    if new.get("vat_id"):
        xact_lock(conn, Lock.ORGANIZATION_VAT_IDS, 0)
        other = _organizations_of_vat_ids(conn, [new["vat_id"]]).get(new["vat_id"])
        if other is not None and other != org["slug"]:
            problems.append(_vat_id_taken(new["vat_id"], other))
    if (after["datev_berater_nr"] is None) != (after["datev_mandant_nr"] is None):
        problems.append("give both DATEV numbers (Beraternummer and Mandantennummer) or none")
    if "invoice_number_format" in new:
        problems += numbers_taken_by_history(conn, org["id"], new["invoice_number_format"])
    return problems


def numbers_taken_by_history(conn: Connection, organization_id: int, pattern: str) -> list[str]:
    """The imported history's sales invoice numbers that `pattern` would write again for a new
    invoice (its counter above the series' last value): one sentence, naming the first few."""
    matcher = number_regex(pattern)
    if matcher is None:
        return []
    last = read_sequence(conn, organization_id, INVOICES)
    taken = []
    numbers = conn.execute(
        select(sales_invoices.c.invoice_number).where(
            sales_invoices.c.organization_id == organization_id,
            sales_invoices.c.history.is_(True),
        )
    ).scalars()
    for number in numbers:
        match = matcher.fullmatch(number or "")
        if match and int(match.group("counter")) > last:
            taken.append(number)
    if not taken:
        return []
    shown = ", ".join(sorted(taken)[:5]) + (f" and {len(taken) - 5} more" if len(taken) > 5 else "")
    return [
        f"the invoice number format {pattern!r} would write numbers the imported history "
        f"already holds ({shown}; the series is at {last})"
    ]


def suspend_organization(system: Engine, org: Organization, *, reason: str, by: str) -> bool:
    """Suspend it: sensors, schedules and backfills request nothing for it until `resume`; its
    uploads wait in its drop zone. False: it was suspended for this reason already."""
    if not reason.strip():
        raise Refused(["say why (--reason): it is shown on the organization and in the sensors"])
    with system_transaction(system, write=True) as conn:
        row = locked(conn, org)
        if row["offboarded_at"]:
            raise Refused([f"{row['slug']} is offboarded; there is nothing to suspend"])
        if row["suspended_at"] and row["suspension_reason"] == reason.strip():
            return False
        conn.execute(
            update(organizations)
            .where(organizations.c.id == row["id"])
            .values(suspended_at=utcnow(), suspended_by=by[:255], suspension_reason=reason.strip())
        )
        details = {"reason": reason.strip(), "before": row["suspension_reason"]}
        conn.execute(
            insert(audit_log),
            [_audit(by, "organization_suspended", row["id"], row["slug"], details)],
        )
    return True


def resume_organization(system: Engine, org: Organization, *, by: str) -> dict | None:
    """Resume it: its sensors pick up what waited, its uploads first. None: it was not suspended;
    else what the suspension was and the uploads registered and not read yet."""
    with system_transaction(system, write=True) as conn:
        row = locked(conn, org)
        if row["offboarded_at"]:
            raise Refused([f"{row['slug']} is offboarded; it cannot be resumed"])
        if not row["suspended_at"]:
            return None
        waiting = conn.execute(
            select(func.count()).where(
                incoming_invoices.c.organization_id == row["id"],
                incoming_invoices.c.status.in_(WAITING_STATUSES),
            )
        ).scalar_one()
        conn.execute(
            update(organizations)
            .where(organizations.c.id == row["id"])
            .values(suspended_at=None, suspended_by=None, suspension_reason=None)
        )
        details = {
            "reason": row["suspension_reason"],
            "suspended_at": row["suspended_at"].isoformat(),
            "suspended_by": row["suspended_by"],
            "uploads_waiting": waiting,
        }
        conn.execute(
            insert(audit_log), [_audit(by, "organization_resumed", row["id"], row["slug"], details)]
        )
    return details
