"""A job over sales invoices queued for a test, the way an area queues one (`insert_job`)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines.queue.domain.requests import insert_job


def queue_over_invoices(
    engine: Engine,
    organization: Organization | str | int,
    kind: str,
    invoice_ids: Iterable[int],
    *,
    created_by: str = "test",
    runner: str | None = None,
) -> int:
    """A pending job of `kind` over the given invoices (of the organization, or of its slug or
    id); its id."""
    return insert_job(
        engine,
        organization
        if isinstance(organization, Organization)
        else find_organization(engine, organization),
        kind=kind,
        request={"invoice_ids": list(invoice_ids)},
        invoice_date=None,
        due_days=None,
        created_by=created_by,
        runner=runner,
    )
