"""Fees and default interest of dunning notices, invoiced through batch invoicing.

When an organization sets `settings.dunning.fee_invoices`, every notice that charged a fee or
interest and is not invoiced yet becomes lines of one `customer_lines` batch job (a customer's
notices on one invoice), queued in the same transaction that records the job on the notices, so
each notice is invoiced once whoever runs at the same time; the original invoices are never
edited. Dunning fees and default interest are damages, not a supply, so the lines carry VAT
category O (not subject to VAT) at 0 %. Notices in another currency than the organization's are
left out (batch invoicing invoices in the organization's currency) and reported.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from invoice_pipelines.core.batch_requests import CUSTOMER_LINES, normalize_customer_lines
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tables import dunning_notices, sales_invoices
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.queue.domain.requests import insert_job

NOT_SUBJECT_TO_VAT = "O"


def _lines(notice) -> list[dict]:
    number = notice.invoice_number
    lines = []
    if notice.fee:
        lines.append(
            {"description": f"Mahngebühr ({notice.level_name}) zu Rechnung {number}",
             "unit_price": notice.fee}
        )  # fmt: skip
    if notice.interest:
        lines.append(
            {"description": f"Verzugszinsen {notice.interest_from.isoformat()} bis "
             f"{notice.interest_until.isoformat()} zu Rechnung {number}",
             "unit_price": notice.interest}
        )  # fmt: skip
    return [
        {**line, "line_type": "charge", "quantity": "1", "vat_rate": "0",
         "vat_category": NOT_SUBJECT_TO_VAT}
        for line in lines
    ]  # fmt: skip


def queue_fee_invoices(
    engine: Engine, org: Organization, *, requested_by: str
) -> tuple[int | None, int]:
    """Queue one batch invoicing job for the notices' fees and interest not invoiced yet;
    returns (job id or None, notices it invoices)."""
    n, si = dunning_notices, sales_invoices
    with tenant_transaction(engine, org.id, write=True) as conn:
        notices = conn.execute(
            select(
                n.c.id, n.c.customer_id, n.c.level_name, n.c.fee, n.c.interest, n.c.interest_from,
                n.c.interest_until, si.c.invoice_number,
            )
            .join_from(n, si, si.c.id == n.c.sales_invoice_id)
            .where(
                n.c.organization_id == org.id,
                n.c.fee_batch_job_id.is_(None),
                (n.c.fee > 0) | (n.c.interest > 0),
                n.c.currency == org.currency,
            )
            .order_by(n.c.customer_id, n.c.id)
            # a second run at the same time takes the others, never the same notice
            .with_for_update(of=n, skip_locked=True)
        ).all()  # fmt: skip
        if not notices:
            return None, 0
        by_customer: dict[int, list[dict]] = {}
        for notice in notices:
            by_customer.setdefault(notice.customer_id, []).extend(_lines(notice))
        customers = [{"customer_id": c, "lines": lines} for c, lines in by_customer.items()]
        job_id = insert_job(
            engine,
            org,
            kind=CUSTOMER_LINES,
            request={"customers": normalize_customer_lines(customers)},
            invoice_date=None,
            due_days=None,
            created_by=requested_by,
            runner=None,
            conn=conn,
        )
        conn.execute(
            update(n)
            .where(n.c.id.in_([notice.id for notice in notices]))
            .values(fee_batch_job_id=job_id)
        )
    return job_id, len(notices)
