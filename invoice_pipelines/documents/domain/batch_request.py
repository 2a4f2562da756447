"""A documents job as the launchpad asks for one (invoice_batch_job's request `documents`): its
Dagster config, apart from the kind (`documents/domain/batch.py`) so that a command that queues or runs
documents jobs does not import Dagster; the kind names it as a function (`Requests.config`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from invoice_pipelines.queue.dagster import NewInvoiceJob


class DocumentsJobRequest(NewInvoiceJob):
    """write the invoices' documents, optionally one combined PDF"""

    kind: Literal["documents"] = "documents"
    combined_pdf: bool = Field(
        default=False,
        description="Also write one PDF of all the job's invoices in this order, for printing.",
    )
