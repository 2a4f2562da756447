"""What happens to the documents of an intake run that failed: each one still waiting is sent
again in a run of its own, so one document that stops its run stops only itself.

A run fails only when something outside one document's outcome broke (its parser process
killed, the database gone, an error no document-level guard caught): the documents it took up
are still UPLOADED or CREATED. `redispatch_batches` names them for the failure sensor (defs.py),
one run each; the run's depth (how many failed runs led to it) travels as a tag, and a document
is sent again at most `MAX_INTAKE_ATTEMPTS` times: the pipeline counts every run that took it
up (`intake_attempts`) and marks it FAILED (IP-PROC-02) at the limit, so nothing is dispatched
forever. The upload sensor's slow re-dispatch of documents waiting for 15 minutes stays the
backstop for runs that never started.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Engine

from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.incoming_status import in_intake
from invoice_pipelines.db.tables import incoming_invoices
from invoice_pipelines.db.tenancy import (
    tenant_transaction,
)
from invoice_pipelines.limits import MAX_INTAKE_ATTEMPTS

DEPTH_TAG = "invoice_pipelines/redispatch_depth"
# documents of one failed run sent again (a run without ids, every waiting document, may have
# taken thousands: the rest wait for the upload sensor's re-dispatch)
MOST_PER_FAILED_RUN = 200


@dataclass(frozen=True)
class Redispatch:
    """One document of a failed run, sent again alone."""

    organization_slug: str
    document_id: int
    run_key: str
    depth: int


def run_depth(tags: Mapping[str, str]) -> int:
    try:
        return max(0, int(tags.get(DEPTH_TAG, "0")))
    except ValueError:
        return 0


def redispatch_batches(
    engine: Engine,
    org: Organization,
    document_ids: Sequence[int],
    *,
    failed_run_id: str,
    depth: int,
) -> list[Redispatch]:
    """The documents of the failed run (all waiting ones of the organization when it named
    none) that still wait, each to be run alone at `depth + 1`; none past the attempt limit's
    depth (a run at that depth marks its document FAILED instead of reading it)."""
    if depth + 1 > MAX_INTAKE_ATTEMPTS:
        return []
    t = incoming_invoices.c
    query = select(t.id).where(
        t.organization_id == org.id,
        in_intake([Status.UPLOADED, Status.CREATED]),
    )
    if document_ids:
        query = query.where(t.id.in_(sorted({int(i) for i in document_ids})))
    with tenant_transaction(engine, org.id) as conn:
        waiting = list(conn.execute(query.order_by(t.id).limit(MOST_PER_FAILED_RUN)).scalars())
    return [
        Redispatch(org.slug, doc_id, f"redispatch:{failed_run_id}:{doc_id}", depth + 1)
        for doc_id in waiting
    ]
