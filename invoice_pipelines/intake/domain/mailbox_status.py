"""What a person sees of the mailboxes (issue 86), built without Dagster: the `mailbox_fresh`
check's finding, the `mailbox_messages` observation's figures, and an e-mailed document's
provenance (`incoming show`, the `incoming_invoices` metadata).

`mailbox_fresh` warns for each active mailbox that no tick has read for `STALE_MINUTES` (the
sensor reads every few seconds and marks a read at most once a minute), or whose last tick could
not read it, with the sentence why (a refused login, a timeout, a dropped connection).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, or_, select
from sqlalchemy.engine import Connection

from invoice_pipelines.core.text import terminal_text
from invoice_pipelines.db.tables import mailbox_messages, mailbox_uploads, mailboxes
from invoice_pipelines.db.tenancy import active_organizations_named, system_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.metadata import CheckFinding, Markdown, markdown_table

MAILBOX_MESSAGES = "mailbox_messages"
FRESH_CHECK = "mailbox_fresh"
STALE_MINUTES = 15
TABLE_ROWS = 20


def fresh_finding(system: Engine, *, stale_minutes: int = STALE_MINUTES) -> CheckFinding:
    """Every active mailbox read within `stale_minutes` and without an error (all organizations)."""
    active = active_organizations_named()
    m, o = mailboxes.c, active.c
    cutoff = utcnow() - timedelta(minutes=stale_minutes)
    with system_transaction(system) as conn:
        total = len(
            conn.execute(
                select(m.id)
                .select_from(mailboxes.join(active, o.id == m.organization_id))
                .where(m.active.is_(True))
            ).all()
        )
        rows = conn.execute(
            select(o.slug, m.last_read_at, m.last_error)
            .select_from(mailboxes.join(active, o.id == m.organization_id))
            .where(
                m.active.is_(True),
                or_(m.last_read_at.is_(None), m.last_read_at < cutoff, m.last_error.is_not(None)),
            )
            .order_by(o.slug)
        ).all()
    if not rows:
        return CheckFinding(
            True,
            f"all {total} mailbox(es) read within {stale_minutes} minutes",
            {"mailboxes": total, "stale": 0},
        )
    table = markdown_table(
        ("organization", "last read", "why not"),
        [
            (
                row.slug,
                row.last_read_at.isoformat(timespec="seconds") if row.last_read_at else "never",
                terminal_text(row.last_error or "no tick read it")[:300],
            )
            for row in rows
        ],
        limit=TABLE_ROWS,
    )
    return CheckFinding(
        False,
        f"{len(rows)} of {total} mailbox(es) not read within {stale_minutes} minutes or failing: "
        f"{', '.join(r.slug for r in rows[:5])}",
        {"mailboxes": total, "stale": len(rows), "stale_mailboxes": Markdown(table)},
    )


def provenance(conn: Connection, organization_id: int, document_ids: list[int]) -> dict[int, dict]:
    """Document id -> how its original came by e-mail (the first upload of it that did): the
    message's From, To, Date, subject, Message-ID and Authentication-Results, the attachment's name
    as given, and what became of the message."""
    if not document_ids:
        return {}
    u, m = mailbox_uploads.c, mailbox_messages.c
    rows = conn.execute(
        select(
            u.incoming_invoice_id, u.attachment_name, u.duplicate, m.message_id, m.from_address,
            m.to_address, m.sent_at, m.subject, m.authentication_results, m.state, m.moved_at,
        )
        .select_from(
            mailbox_uploads.join(
                mailbox_messages,
                (m.organization_id == u.organization_id) & (m.id == u.mailbox_message_id),
            )
        )
        .where(u.organization_id == organization_id, u.incoming_invoice_id.in_(document_ids))
        .order_by(u.duplicate, u.id)
    ).all()  # fmt: skip
    found: dict[int, dict] = {}
    for row in rows:
        found.setdefault(
            row.incoming_invoice_id,
            {
                "channel": "e-mail",
                "from": row.from_address,
                "to": row.to_address,
                "date": row.sent_at.isoformat() if row.sent_at else None,
                "subject": row.subject,
                "message_id": row.message_id,
                "attachment": row.attachment_name,
                "authentication_results": row.authentication_results,
            },
        )
    return found


def provenance_figures(
    conn: Connection, organization_id: int, document_ids: list[int]
) -> dict[str, object]:
    """What an intake run's `incoming_invoices` materialization shows of the documents it read
    that came by e-mail: how many, and where each came from (nothing when none did)."""
    found = provenance(conn, organization_id, document_ids)
    if not found:
        return {}
    rows = [
        (doc_id, s["from"], s["subject"], s["date"], s["attachment"], s["message_id"])
        for doc_id, s in sorted(found.items())
    ]
    header = ("document", "from", "subject", "sent", "attachment", "Message-ID")
    return {
        "emailed_documents": len(found),
        "emailed_sources": Markdown(markdown_table(header, rows, limit=TABLE_ROWS)),
    }
