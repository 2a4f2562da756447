"""What the QuickBooks schedules, sensors and token check read from the database: which
organizations are connected, whose tokens need a person, whose invoices wait to be pushed and
which pulls a webhook asked for. Plain queries; `quickbooks/defs.py` turns them into runs."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, func, or_, select

from invoice_pipelines.core.qbo_entities import NEEDED_BY_PUSH
from invoice_pipelines.db.tables import (
    organizations,
    qbo_connections,
    qbo_cursors,
    qbo_mappings,
    qbo_push_queue,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import system_transaction

# warn this long before the refresh token's idle expiry (100 days) or its hard maximum
WARN_IDLE = timedelta(days=30)
WARN_HARD = timedelta(days=60)


def token_problems(engine: Engine, now: datetime) -> tuple[int, list[tuple[str, str]]]:
    """(number of connections, [(slug, why)] of those a person must reconnect soon)."""
    with system_transaction(engine) as conn:
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


def connected_organizations(engine: Engine) -> list[tuple[str, str]]:
    """(slug, timezone) of active organizations with an active QuickBooks connection."""
    with system_transaction(engine) as conn:
        return [
            (slug, tz)
            for slug, tz in conn.execute(
                select(organizations.c.slug, organizations.c.timezone)
                .join(qbo_connections, qbo_connections.c.organization_id == organizations.c.id)
                .where(organizations.c.active.is_(True), qbo_connections.c.status == "active")
            ).all()
        ]


def push_waiting(engine: Engine) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Per connected organization's slug: its newest sales invoice not yet queued for QuickBooks,
    its newest queue entry still waiting, and its newest customer/item mapping (ids; a slug is
    missing where there is none)."""
    q = qbo_push_queue.c
    # an invoice is queued with `create`, a credit note (a CreditMemo) with `credit`
    queued = select(q.sales_invoice_id).where(q.action.in_(("create", "credit")))
    connected = select(qbo_connections.c.organization_id).where(
        qbo_connections.c.status == "active"
    )
    with system_transaction(engine) as conn:
        new = dict(
            conn.execute(
                select(organizations.c.slug, func.max(sales_invoices.c.id))
                .join(organizations, organizations.c.id == sales_invoices.c.organization_id)
                .where(
                    sales_invoices.c.organization_id.in_(connected),
                    sales_invoices.c.status != "cancelled",
                    sales_invoices.c.id.not_in(queued),
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
        pending = dict(
            conn.execute(
                select(organizations.c.slug, func.max(q.id))
                .join(organizations, organizations.c.id == q.organization_id)
                .where(waiting, q.organization_id.in_(connected))
                .group_by(organizations.c.slug)
            ).all()
        )
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
    return new, pending, mapped


def requested_pulls(engine: Engine) -> list[tuple[str, str, datetime]]:
    """(slug, entity, when) of the pulls a QuickBooks webhook asked for, by slug and entity."""
    with system_transaction(engine) as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(organizations.c.slug, qbo_cursors.c.entity, qbo_cursors.c.pull_requested_at)
                .join(organizations, organizations.c.id == qbo_cursors.c.organization_id)
                .where(qbo_cursors.c.pull_requested_at.is_not(None))
                .order_by(organizations.c.slug, qbo_cursors.c.entity)
            ).all()
        ]
