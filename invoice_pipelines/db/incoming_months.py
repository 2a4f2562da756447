"""Which month an incoming invoice belongs to: its issue date's, or, without a date, the month it
was uploaded in (so it is listed, and skipped with the reason, instead of vanishing from every
export). The exports read a month by it; the intake's check finds the VALIDATED documents no
export month will ever book."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.engine import Connection

from invoice_pipelines.core.export_months import month_bounds
from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.db.incoming_status import ACCEPTED, in_intake, validated
from invoice_pipelines.db.tables import incoming_invoices, organizations, uploads

EXPORTABLE = (Status.VALIDATED.value, Status.EXPORTED.value)


def incoming_in_month(organization_id: int, period: str, statuses: Sequence[str] = EXPORTABLE):
    """The WHERE clause of an organization's incoming invoices of month `period` in `statuses`."""
    start, end = month_bounds(period)
    t = incoming_invoices.c
    # the intake's statuses through their index; VALIDATED and EXPORTED by the month's rows
    accepted = set(statuses) & ACCEPTED
    return and_(
        t.organization_id == organization_id,
        t.status.in_(statuses) if accepted else in_intake(statuses),
        or_(
            and_(t.issue_date >= start, t.issue_date < end),
            and_(
                t.issue_date.is_(None),
                t.created_at >= datetime(start.year, start.month, 1, tzinfo=UTC),
                t.created_at < datetime(end.year, end.month, 1, tzinfo=UTC),
            ),
        ),
    )


def validated_outside_months(
    conn: Connection,
    first_month: str,
    last_month: str,
    *,
    organization_id: int | None = None,
    limit: int | None = None,
) -> tuple[int, list[dict]]:
    """VALIDATED incoming invoices whose month (as `incoming_in_month` reads it) lies outside
    `first_month`..`last_month`, the months the export assets have partitions for: no export
    partition ever books them. (count, the first `limit` of them oldest first: id, organization
    slug, file name, invoice number, issue date, month, 'before' or 'after'.)

    In the system scope this spans every organization; `organization_id` narrows it to one."""
    start, _ = month_bounds(first_month)
    _, end = month_bounds(last_month)
    start_at = datetime(start.year, start.month, 1, tzinfo=UTC)
    end_at = datetime(end.year, end.month, 1, tzinfo=UTC)
    t = incoming_invoices.c
    before = or_(
        and_(t.issue_date.is_not(None), t.issue_date < start),
        and_(t.issue_date.is_(None), t.created_at < start_at),
    )
    after = or_(
        and_(t.issue_date.is_not(None), t.issue_date >= end),
        and_(t.issue_date.is_(None), t.created_at >= end_at),
    )
    where = and_(validated(organization_id=organization_id), or_(before, after))
    if organization_id is not None:
        where = and_(where, t.organization_id == organization_id)
    count = conn.execute(select(func.count()).select_from(incoming_invoices).where(where)).scalar()
    query = (
        select(
            t.id,
            organizations.c.slug.label("organization"),
            uploads.c.filename,
            t.invoice_number,
            t.issue_date,
            t.created_at,
            case((before, literal("before")), else_=literal("after")).label("side"),
        )
        .select_from(incoming_invoices)
        .join(organizations, organizations.c.id == t.organization_id)
        .outerjoin(uploads, uploads.c.id == t.upload_id)
        .where(where)
        .order_by(t.issue_date, t.id)
    )
    if limit is not None:
        query = query.limit(limit)
    found = []
    for row in conn.execute(query).mappings():
        day = row["issue_date"] or row["created_at"].date()
        found.append(
            {
                "id": row["id"],
                "organization": row["organization"],
                "filename": row["filename"] or "",
                "invoice_number": row["invoice_number"] or "",
                "issue_date": row["issue_date"],
                "month": f"{day.year:04d}-{day.month:02d}",
                "side": row["side"],
            }
        )
    return int(count or 0), found
