"""A job over sales invoices queued for a test, the way an area queues one (`insert_job`)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine

from invoice_pipelines.queue.requests import insert_job, lookup_organization


def queue_over_invoices(
    engine: Engine,
    organization: str | int,
    kind: str,
    invoice_ids: Iterable[int],
    *,
    created_by: str = "test",
    runner: str | None = None,
) -> int:
    """A pending job of `kind` over the given invoices; its id."""
    return insert_job(
        engine,
        lookup_organization(engine, organization),
        kind=kind,
        request={"invoice_ids": list(invoice_ids)},
        invoice_date=None,
        due_days=None,
        created_by=created_by,
        runner=runner,
    )
