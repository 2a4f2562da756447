"""What the QuickBooks schedules, sensors and checks read from the database: which organizations
are connected, whose tokens need a person, whose invoices and bills wait to be pushed, which pulls
a webhook asked for, which bills wait for a person and which differ from QBO's. Plain queries;
`quickbooks/schedules.py`, `sensors.py` and `checks.py` turn them into runs and check results."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, exists, func, or_, select

from invoice_pipelines import sales_ledger
from invoice_pipelines.core.qbo_entities import NEEDED_BY_PUSH
from invoice_pipelines.db.incoming_status import in_intake, validated
from invoice_pipelines.db.tables import (
    incoming_invoices,
    organizations,
    qbo_bill_queue,
    qbo_bills,
    qbo_connections,
    qbo_cursors,
    qbo_expense_accounts,
    qbo_mappings,
    qbo_push_queue,
    qbo_vendors,
    suppliers,
)
from invoice_pipelines.db.tenancy import active_organizations, system_transaction
from invoice_pipelines.quickbooks.domain.sync.bill_queue import HELD as BILL_HELD
from invoice_pipelines.quickbooks.domain.sync.bill_queue import WAITING as BILL_WAITING
from invoice_pipelines.quickbooks.domain.sync.bill_queue import needs_a_person

# warn this long before the refresh token's idle expiry (100 days) or its hard maximum
WARN_IDLE = timedelta(days=30)
WARN_HARD = timedelta(days=60)


def token_problems(system: Engine, now: datetime) -> tuple[int, list[tuple[str, str]]]:
    """(number of connections, [(slug, why)] of those a person must reconnect soon)."""
    with system_transaction(system) as conn:
        rows = conn.execute(
            select(
                organizations.c.slug,
                qbo_connections.c.status,
                qbo_connections.c.refresh_expires_at,
                qbo_connections.c.refresh_hard_expires_at,
                qbo_connections.c.last_error,
            ).join(organizations, organizations.c.id == qbo_connections.c.organization_id)
        ).all()
    problems = []
    for slug, status, idle, hard, error in rows:
        if status != "active":
            problems.append((slug, f"connection {status}"))
        elif error:
            problems.append((slug, error))
        elif idle and idle - now < WARN_IDLE:
            problems.append((slug, f"refresh token idle-expires {idle:%Y-%m-%d}"))
        elif hard and hard - now < WARN_HARD:
            problems.append((slug, f"refresh token reaches its maximum {hard:%Y-%m-%d}"))
    return len(rows), problems


def connected_organizations(system: Engine) -> list[tuple[str, str]]:
    """(slug, timezone) of active organizations with an active QuickBooks connection."""
    with system_transaction(system) as conn:
        connected = set(
            conn.scalars(
                select(qbo_connections.c.organization_id).where(
                    qbo_connections.c.status == "active"
                )
            )
        )
    return [(org.slug, org.timezone) for org in active_organizations(system) if org.id in connected]


def push_waiting(
    system: Engine,
) -> tuple[dict[str, int], dict[str, int], dict[str, int], dict[str, int]]:
    """Per connected organization's slug: its newest sales invoice not yet queued for QuickBooks
    (history left out: a migration's invoices are never pushed on their own),
    its newest queue entry still waiting and how many wait, and its newest customer/item mapping
    (ids; a slug is missing where there is none). The number waiting changes with each chunk a
    run pushes (quickbooks/assets.py), so the sensor asks for the next chunk's run."""
    q = qbo_push_queue.c
    # an invoice is queued with `create`, a credit note (a CreditMemo) with `credit`; an anti-join
    # (NOT EXISTS): `NOT IN (subquery)` becomes a scan of the whole queue for every invoice once
    # the queue outgrows PostgreSQL's hash memory (documents/pipeline.waiting_for_documents)
    queued = exists().where(
        q.sales_invoice_id == sales_ledger.field("id"), q.action.in_(("create", "credit"))
    )
    connected = select(qbo_connections.c.organization_id).where(
        qbo_connections.c.status == "active"
    )
    with system_transaction(system) as conn:
        invoice = sales_ledger.field  # the sales ledger's invoices (sales_ledger.py)
        new = dict(
            conn.execute(
                select(organizations.c.slug, func.max(invoice("id")))
                .select_from(sales_ledger.joined())
                .join(organizations, organizations.c.id == invoice("organization_id"))
                .where(
                    invoice("organization_id").in_(connected),
                    invoice("status") != "cancelled",
                    sales_ledger.not_history(),
                    ~queued,
                )
                .group_by(organizations.c.slug)
            ).all()
        )
        # invoices refused by our own check (customer or item not synced yet) count as waiting:
        # each time the organization's customers or items gain mappings they are checked again
        waiting = or_(
            q.status.in_(("pending", "sending")),
            and_(q.status == "failed", q.error_code == "validation"),
        )
        queued_rows = conn.execute(
            select(organizations.c.slug, func.max(q.id), func.count())
            .join(organizations, organizations.c.id == q.organization_id)
            .where(waiting, q.organization_id.in_(connected))
            .group_by(organizations.c.slug)
        ).all()
        pending = {slug: newest for slug, newest, _ in queued_rows}
        how_many = {slug: count for slug, _, count in queued_rows}
        mapped = dict(
            conn.execute(
                select(organizations.c.slug, func.max(qbo_mappings.c.id))
                .join(organizations, organizations.c.id == qbo_mappings.c.organization_id)
                .where(
                    qbo_mappings.c.entity.in_(NEEDED_BY_PUSH),
                    qbo_mappings.c.organization_id.in_(connected),
                )
                .group_by(organizations.c.slug)
            ).all()
        )
    return new, pending, how_many, mapped


def requested_pulls(system: Engine) -> list[tuple[str, str, datetime]]:
    """(slug, entity, when) of the pulls a QuickBooks webhook asked for, by slug and entity."""
    with system_transaction(system) as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(organizations.c.slug, qbo_cursors.c.entity, qbo_cursors.c.pull_requested_at)
                .join(organizations, organizations.c.id == qbo_cursors.c.organization_id)
                .where(qbo_cursors.c.pull_requested_at.is_not(None))
                .order_by(organizations.c.slug, qbo_cursors.c.entity)
            ).all()
        ]


def bill_push_waiting(system: Engine) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Per connected organization's slug: its newest VALIDATED (not history) or held-with-a-bill
    incoming invoice not queued at its version, its newest bill-queue row still waiting, and its newest
    vendor, supplier-register (a person linked a vendor) or expense-account change (a new one
    may let a waiting bill go). An organization without any expense account has no bill that
    could go: it books no bills in QuickBooks (`bill_booking_organizations`) and its documents
    start no run, so a German organization connected for its sales side keeps its supplier
    invoices for DATEV without a run per document."""
    t, q = incoming_invoices.c, qbo_bill_queue.c
    connected = select(qbo_connections.c.organization_id).where(
        qbo_connections.c.status == "active"
    )
    with_accounts = select(qbo_expense_accounts.c.organization_id)
    queued = exists().where(q.incoming_invoice_id == t.id, q.version == t.processing_version)
    has_bill = exists().where(
        qbo_bills.c.incoming_invoice_id == t.id, qbo_bills.c.state == "active"
    )
    # two queries, each through its working set's index (0048); one with OR reads every document
    sets = (
        and_(validated(), t.history.is_(False), t.organization_id.in_(with_accounts)),
        and_(in_intake(BILL_HELD), has_bill),
    )
    with system_transaction(system) as conn:
        new: dict[str, int] = {}
        for documents in sets:
            for slug, newest in conn.execute(
                select(organizations.c.slug, func.max(t.id))
                .join(organizations, organizations.c.id == t.organization_id)
                .where(t.organization_id.in_(connected), documents, ~queued)
                .group_by(organizations.c.slug)
            ).all():
                new[slug] = max(new.get(slug, newest), newest)
        waiting = or_(
            q.status.in_(("pending", "sending")),
            and_(q.status == "failed", q.error_code.in_(BILL_WAITING)),
        )
        pending = dict(
            conn.execute(
                select(organizations.c.slug, func.max(q.id))
                .join(organizations, organizations.c.id == q.organization_id)
                .where(waiting, q.organization_id.in_(connected))
                .group_by(organizations.c.slug)
            ).all()
        )
        changed: dict[str, int] = {}
        for table in (qbo_vendors, suppliers, qbo_expense_accounts):
            for slug, moment in conn.execute(
                select(organizations.c.slug, func.max(table.c.updated_at))
                .join(organizations, organizations.c.id == table.c.organization_id)
                .where(table.c.organization_id.in_(connected))
                .group_by(organizations.c.slug)
            ).all():
                stamp = int(moment.timestamp() * 1_000_000) if moment else 0
                changed[slug] = max(changed.get(slug, 0), stamp)
    return new, pending, changed


@dataclass(frozen=True)
class WaitingBill:
    """A supplier invoice that waits for a person to become a bill."""

    organization: str
    document: int
    number: str | None
    supplier: str | None
    waits_for: str | None  # the finding's code: vendor, account, tax, rate, lines, conflict
    why: str | None
    held: bool  # a paid bill held as a conflict while its document is back in review

    def cells(self) -> tuple:
        return (
            self.organization,
            self.document,
            self.number,
            self.supplier,
            self.waits_for,
            self.why,
        )


def bill_booking_organizations():
    """The organizations that book their supplier invoices in QuickBooks: connected, with an
    expense account set (`qbo-payables --expense-account`). The others (connected for their
    sales side) keep their supplier invoices for DATEV: no bill run starts for them and no bill
    of theirs waits."""
    return select(qbo_connections.c.organization_id).where(
        qbo_connections.c.status == "active",
        qbo_connections.c.organization_id.in_(select(qbo_expense_accounts.c.organization_id)),
    )


def waiting_bills(
    system: Engine, organization_id: int | None = None, limit: int = 50
) -> tuple[int, list[WaitingBill]]:
    """(how many, the first `limit`) of the supplier invoices that wait for a person to become
    bills, of one organization or of all that book bills in QuickBooks
    (`bill_booking_organizations`): the bill-queue rows waiting for a vendor, an expense account,
    a setting or a decision (an invoice longer than a bill takes), and the bills held as
    conflicts while their document is back in review (paid ones). The one query of the check
    `bills_waiting` and of `qbo-payables`."""
    q, t = qbo_bill_queue.c, incoming_invoices.c
    queued = and_(
        needs_a_person(),
        q.organization_id.in_(bill_booking_organizations()),
        *([q.organization_id == organization_id] if organization_id is not None else []),
    )
    in_queue = qbo_bill_queue.join(
        incoming_invoices,
        and_(t.organization_id == q.organization_id, t.id == q.incoming_invoice_id),
    )
    with system_transaction(system) as conn:
        count = conn.execute(select(func.count()).select_from(in_queue).where(queued)).scalar()
        rows = conn.execute(
            select(
                organizations.c.slug,
                t.id,
                t.invoice_number,
                t.seller_name,
                q.error_code,
                q.error_message,
                q.status,
            )
            .select_from(in_queue.join(organizations, organizations.c.id == q.organization_id))
            .where(queued)
            .order_by(organizations.c.slug, q.id)
            .limit(limit)
        ).all()
    found = [
        WaitingBill(slug, i, number, seller, code, why, held=status == "conflict")
        for slug, i, number, seller, code, why, status in rows
    ]
    return int(count or 0), found


def bill_amount_differences(system: Engine, limit: int = 50) -> tuple[int, list[tuple]]:
    """(how many, the first `limit`: slug, document id, number, our gross total, QBO's total) of
    the active bills whose total in QBO (as last read) is not the document's gross total."""
    b, t = qbo_bills.c, incoming_invoices.c
    where = and_(b.state == "active", b.total.is_not(None), b.total != t.gross_total)
    with system_transaction(system) as conn:
        joined = qbo_bills.join(
            incoming_invoices,
            and_(t.organization_id == b.organization_id, t.id == b.incoming_invoice_id),
        )
        count = conn.execute(select(func.count()).select_from(joined).where(where)).scalar()
        rows = conn.execute(
            select(organizations.c.slug, t.id, t.invoice_number, t.gross_total, b.total)
            .select_from(joined.join(organizations, organizations.c.id == b.organization_id))
            .where(where)
            .order_by(organizations.c.slug, t.id)
            .limit(limit)
        ).all()
    return int(count or 0), [tuple(r) for r in rows]
