"""A QuickBooks company is an identity: its id checked for Intuit's form, a switch of company that
archives every link of the first, and the wait for the new company's import before any push.

Every link we keep into QuickBooks (our copy of its vendors, the mappings of customers, items,
invoices and credit memos, the bills, the expense accounts of its chart, the cursors, the
conflicts, the register's vendor links) was made in one company and means nothing in another:
vendor 1 of one company is somebody else in the next. So connecting an organization to another
company (`tokens.save_connection` with another realm) is a switch, done in the connection's own
transaction:

1. the first company's rows move out of the live tables into `qbo_archived_links` (the row as
   JSON, its table and the old realm): no push can read a link of another company, because the
   live tables hold none;
   and so do the connection's settings that name the first company's entities (its tax codes,
   income account and default item: COMPANY_SETTINGS);
2. every supplier's `qbo_vendor_id` is cleared, each with a `supplier_changes` row (action
   `qbo_company_switch`);
3. the rows of the push queues not finished (`pending`, `sending`, `failed`) are `pending` again
   with no error, so they go to the new company, as new; what was pushed stays as the record of
   what went to the first company (a `sending` row's outcome there is unknown and stays so: the
   audit counts them);
4. a `qbo_company_switches` row and an `audit_log` row (who, old and new realm, the counts).

Until the new company's customers, items and vendors are imported (`qbo-import`, or each one's
first sync), every push of the organization waits (`import_pending`): the bill rows with the
finding `company`, listed by `qbo-payables` and the check `bills_waiting`; the sales invoices stay
in their queue; the check `company_switch` shows the switch and whether its import is done.
Re-connecting the same company (new tokens) keeps everything.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, func, insert, select, update

from invoice_pipelines.core.qbo_entities import QBO_ENTITIES
from invoice_pipelines.db.tables import (
    audit_log,
    organizations,
    qbo_archived_links,
    qbo_bill_discounts,
    qbo_bill_queue,
    qbo_bills,
    qbo_company_switches,
    qbo_connections,
    qbo_cursors,
    qbo_expense_accounts,
    qbo_mappings,
    qbo_push_queue,
    qbo_vendors,
    supplier_changes,
    suppliers,
    sync_conflicts,
)
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.quickbooks.domain.errors import BadRealmId

# Intuit's company id (realmId): decimal digits, as Intuit issues them ("9130357766900456",
# "123145843599774", "4620816365000000000"); never a blank, a letter, a sign or a separator, and
# no leading zero (an id is a number written plainly, so "0123" and "123" would be one company
# written twice); at most the 32 characters our columns hold
REALM_ID = re.compile(r"[1-9][0-9]{0,31}")
# the entities whose import a switch waits for: what the pushes find their links in
IMPORTED = tuple(e.mapping for e in QBO_ENTITIES if e.initial_import)
# the first company's links: moved into the archive whole
ARCHIVED = (
    qbo_mappings,
    qbo_vendors,
    qbo_bills,
    qbo_bill_discounts,
    qbo_expense_accounts,
    qbo_cursors,
    sync_conflicts,
)
# the push queues: unfinished rows are reset, so they go to the new company as new
RESET = (qbo_push_queue, qbo_bill_queue)
UNFINISHED = ("pending", "sending", "failed")
SWITCH_ACTION = "qbo_company_switch"


def checked_realm_id(value: object) -> str:
    """`value` when it is a QuickBooks company id in Intuit's form (REALM_ID), else BadRealmId
    with one sentence."""
    if isinstance(value, str) and REALM_ID.fullmatch(value):
        return value
    raise BadRealmId(
        f"{value!r} is not a QuickBooks company id: Intuit's company id (realmId) is digits "
        "only, with no blank, letter, sign or leading zero, at most 32 of them (as QuickBooks "
        "shows it, e.g. 9130357766900456)"
    )


def _plain(row: dict) -> dict:
    """The row as JSON (Decimal, dates and times as strings)."""
    return json.loads(json.dumps(row, default=str))


def _archive(conn: Connection, organization_id: int, realm_id: str) -> dict[str, int]:
    """Every row of ARCHIVED of the organization moved into the archive; the count per table."""
    counts: dict[str, int] = {}
    for table in ARCHIVED:
        mine = table.c.organization_id == organization_id
        rows = [dict(r) for r in conn.execute(select(table).where(mine)).mappings()]
        if rows:
            conn.execute(
                insert(qbo_archived_links),
                [
                    {
                        "organization_id": organization_id,
                        "realm_id": realm_id,
                        "source": table.name,
                        "row": _plain(row),
                    }
                    for row in rows
                ],
            )
            conn.execute(table.delete().where(mine))
        counts[table.name] = len(rows)
    return counts


def _reset_queues(conn: Connection, organization_id: int) -> dict[str, int]:
    """The unfinished rows of the push queues `pending` again, as new; counts per table, and of
    the rows that were `sending` (their outcome in the first company is unknown)."""
    counts: dict[str, int] = {}
    for table in RESET:
        mine = (table.c.organization_id == organization_id) & table.c.status.in_(UNFINISHED)
        sending = conn.execute(
            select(func.count()).where(mine, table.c.status == "sending")
        ).scalar()
        moved = conn.execute(
            update(table)
            .where(mine)
            .values(status="pending", error_code=None, error_message=None, qbo_id=None)
        ).rowcount
        counts[f"{table.name} reset"] = int(moved or 0)
        counts[f"{table.name} sending"] = int(sending or 0)
    return counts


def _unlink_suppliers(conn: Connection, organization_id: int, old: str, new: str, by: str) -> int:
    """Every supplier's QuickBooks vendor link cleared, each with its audit row."""
    s = suppliers.c
    linked = conn.execute(
        select(s.id, s.qbo_vendor_id).where(
            s.organization_id == organization_id, s.qbo_vendor_id.is_not(None)
        )
    ).all()
    if not linked:
        return 0
    conn.execute(
        update(suppliers)
        .where(s.organization_id == organization_id, s.id.in_([i for i, _ in linked]))
        .values(qbo_vendor_id=None, version=s.version + 1, updated_by=by)
    )
    reason = (
        f"the organization was connected to QuickBooks company {new}: the link to vendor "
        f"{{vendor}} of company {old} is archived"
    )
    conn.execute(
        insert(supplier_changes),
        [
            {
                "organization_id": organization_id,
                "supplier_id": supplier_id,
                "action": SWITCH_ACTION,
                "changed_by": by,
                "reason": reason.format(vendor=vendor),
                "before": {"qbo_vendor_id": vendor, "qbo_realm_id": old},
                "after": {"qbo_vendor_id": None, "qbo_realm_id": new},
            }
            for supplier_id, vendor in linked
        ],
    )
    return len(linked)


# the connection's settings that name entities of the company (its tax codes by VAT rate, the
# income account and the item new lines are booked on): ids that mean something else, or
# nothing, in the next company; archived and dropped on a switch, set again for the new one
COMPANY_SETTINGS = ("tax_codes", "income_account_id", "default_item_id")


def _forget_company_settings(conn: Connection, organization_id: int, realm_id: str) -> int:
    """The connection's COMPANY_SETTINGS moved into the archive; how many there were."""
    mine = qbo_connections.c.organization_id == organization_id
    settings = dict(conn.execute(select(qbo_connections.c.settings).where(mine)).scalar() or {})
    named = {key: settings.pop(key) for key in COMPANY_SETTINGS if key in settings}
    if named:
        conn.execute(
            insert(qbo_archived_links).values(
                organization_id=organization_id,
                realm_id=realm_id,
                source="qbo_connections.settings",
                row=_plain(named),
            )
        )
        conn.execute(update(qbo_connections).where(mine).values(settings=settings))
    return len(named)


def switch_company(conn: Connection, organization_id: int, old: str, new: str, by: str) -> dict:
    """The organization, connected to company `old`, is connected to `new` now (module
    docstring, 1-4), in `conn` (the connection's transaction); what was archived and reset."""
    counts = _archive(conn, organization_id, old)
    counts["connection settings"] = _forget_company_settings(conn, organization_id, old)
    counts.update(_reset_queues(conn, organization_id))
    counts["suppliers unlinked"] = _unlink_suppliers(conn, organization_id, old, new, by)
    conn.execute(
        insert(qbo_company_switches).values(
            organization_id=organization_id,
            old_realm_id=old,
            new_realm_id=new,
            switched_by=by,
            archived=counts,
        )
    )
    conn.execute(
        insert(audit_log).values(
            organization_id=organization_id,
            created_by=by,
            action="qbo.company_switch",
            entity_type="qbo_connection",
            entity_id=new,
            details={"old_realm_id": old, "new_realm_id": new, "archived": counts},
        )
    )
    return counts


@dataclass(frozen=True)
class Switch:
    """One switch of an organization's QuickBooks company."""

    organization: str  # slug
    old_realm_id: str
    new_realm_id: str
    switched_by: str
    switched_at: datetime
    import_done_at: datetime | None
    archived: dict

    def said(self) -> str:
        when = f"{self.switched_at:%Y-%m-%d %H:%M} UTC"
        head = (
            f"QuickBooks company switched from {self.old_realm_id} to {self.new_realm_id} at "
            f"{when} by {self.switched_by}"
        )
        if self.import_done_at is not None:
            return f"{head}; import done {self.import_done_at:%Y-%m-%d %H:%M} UTC"
        return (
            f"{head}; import pending: the links of the first company are archived, and nothing "
            "is pushed until the new company's customers, items and vendors are imported "
            f"(invoice-pipelines qbo-import --org {self.organization})"
        )


SWITCH_COLUMNS = (
    organizations.c.slug,
    qbo_company_switches.c.old_realm_id,
    qbo_company_switches.c.new_realm_id,
    qbo_company_switches.c.switched_by,
    qbo_company_switches.c.switched_at,
    qbo_company_switches.c.import_done_at,
    qbo_company_switches.c.archived,
)


def _switch(row) -> Switch:
    return Switch(*row[:6], archived=dict(row[6] or {}))


def latest_switch(conn: Connection, organization_id: int) -> tuple[int, Switch] | None:
    w = qbo_company_switches.c
    row = conn.execute(
        select(w.id, *SWITCH_COLUMNS)
        .join(organizations, organizations.c.id == w.organization_id)
        .where(w.organization_id == organization_id)
        .order_by(w.id.desc())
        .limit(1)
    ).first()
    return (row[0], _switch(row[1:])) if row else None


def import_pending(engine: Engine, organization_id: int) -> str | None:
    """Why every push of the organization waits (its company was switched and the new company's
    import is not complete), or None. The switch is marked imported here once every entity of
    IMPORTED has completed its import, whichever run did it."""
    with tenant_transaction(engine, organization_id) as conn:
        found = latest_switch(conn, organization_id)
        if found is None or found[1].import_done_at is not None:
            return None
        done = set(
            conn.execute(
                select(qbo_cursors.c.entity).where(
                    qbo_cursors.c.organization_id == organization_id,
                    qbo_cursors.c.entity.in_(IMPORTED),
                    qbo_cursors.c.import_done.is_(True),
                )
            ).scalars()
        )
    switch_id, switch = found
    if done >= set(IMPORTED):
        with tenant_transaction(engine, organization_id, write=True) as conn:
            conn.execute(
                update(qbo_company_switches)
                .where(
                    qbo_company_switches.c.id == switch_id,
                    qbo_company_switches.c.import_done_at.is_(None),
                )
                .values(import_done_at=datetime.now(UTC))
            )
        return None
    return switch.said()


def company_switches(
    engine: Engine, system: Engine, organization_id: int | None = None
) -> list[Switch]:
    """The latest switch of each organization (of one, or of all), newest first."""
    w = qbo_company_switches.c
    latest = select(func.max(w.id)).group_by(w.organization_id)
    query = (
        select(*SWITCH_COLUMNS)
        .join(organizations, organizations.c.id == w.organization_id)
        .where(w.id.in_(latest))
        .order_by(w.switched_at.desc(), w.id.desc())
    )
    if organization_id is not None:
        query = query.where(w.organization_id == organization_id)
    with system_transaction(system) as conn:
        rows = conn.execute(query.add_columns(w.organization_id)).all()
    if any(row.import_done_at is None for row in rows):
        # an import completed since the last push marks its switch now
        for row in rows:
            if row.import_done_at is None:
                import_pending(engine, row.organization_id)
        with system_transaction(system) as conn:
            rows = conn.execute(query.add_columns(w.organization_id)).all()
    return [_switch(row) for row in rows]
