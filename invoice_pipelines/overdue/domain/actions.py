"""The overdue area's requests as actions the commands call: `dun`, one organization's dunning
run as `invoice-pipelines overdue` asks it (the notices, then their letters and their sending,
as the runs' assets do one after the other), and `as_of_option`, the command's `--as-of`."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Engine

from invoice_pipelines.db.tenancy import Organization
from invoice_pipelines.overdue.domain.letter import write_letters
from invoice_pipelines.overdue.domain.notice_sending import send_notices_over
from invoice_pipelines.overdue.domain.pipeline import DunningResult, run_overdue
from invoice_pipelines.overdue.domain.scheduling import AsOfError, check_as_of_day


def as_of_option(text: str | None) -> date | None:
    """The day `--as-of` names (None: today); AsOfError in one sentence when it names none, or
    one a dunning run may not notice as of."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise AsOfError(f"--as-of must be YYYY-MM-DD, got {text!r}") from None
    return check_as_of_day(day, what="--as-of")


def dun(
    engine: Engine, resources: Any, org: Organization, *, on: date | None, dry_run: bool
) -> dict:
    """The dunning run of `org` as of `on`, then (unless it failed or was a dry run) the letters
    of its notices (`resources.letter_writer`, the documents area's, into
    `resources.document_store`) and their sending over the delivery channels' `resources`:
    everything in one summary, what the command prints."""
    result = run_overdue(engine, org, on=on, dry_run=dry_run, requested_by="cli")
    delivery: dict = {}
    if result.status != "FAILED" and not result.dry_run:
        store = resources.document_store
        letters = write_letters(engine, resources.letter_writer, store, org)
        sent = send_notices_over(engine, resources, store, org)
        delivery = {
            "letters_written": [
                {k: w[k] for k in ("notice_id", "path", "size_bytes", "pages")}
                for w in letters.written
            ],
            "letters_failed": {str(k): v for k, v in letters.failed.items()},
            "notices_sent": sent.sent,
            "notices_send_failed": {str(k): v for k, v in sent.failed.items()},
            "notices_send_postponed": {str(k): v for k, v in sent.postponed.items()},
            "notices_send_unknown": sent.unknown,
            "notices_withdrawn": {str(k): v for k, v in sent.withdrawn.items()},
        }
    return {**_summary(result), **delivery}


def succeeded(summary: dict) -> bool:
    return summary["status"] in ("SUCCESS", "PARTIAL")


def _summary(result: DunningResult) -> dict:
    return {
        "organization": result.organization,
        "as_of": str(result.as_of or ""),
        "status": result.status,
        "dry_run": result.dry_run,
        "scanned": result.scanned,
        "notices_created": result.notices_created,
        "notices_by_level": dict(result.created_by_level),
        "fees_charged": f"{result.fees:.2f}",
        "interest_charged": f"{result.interest:.2f}",
        "errors": result.errors[:20],
        "seconds": round(result.seconds, 3),
        "fee_invoice_batch_job": result.fee_invoice_job_id,
        "notices_fee_invoiced": result.notices_invoiced,
    }
