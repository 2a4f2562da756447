"""A batch job as a user sees it (`BatchJob`): what a kind's work, its summary and the queue's
commands are handed. Apart from `queue/domain/jobs.py` (reading and changing jobs) so that a kind's type
(`queue/domain/job_kind.py`) can name it without the queue's state functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

TERMINAL_STATUSES = ("completed", "completed_with_errors", "failed", "cancelled")


@dataclass(frozen=True)
class BatchJob:
    """A batch job as a user sees it (`batch-status`, the progress bar, the sensor)."""

    id: int
    organization_id: int
    organization_slug: str
    kind: str
    status: str
    invoice_date: date | None
    due_days: int
    total_count: int
    processed_count: int
    successful_count: int
    failed_count: int
    skipped_count: int
    cancel_requested: bool
    retry_of_job_id: int | None
    runner: str | None
    created_by: str | None
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    completed_at: datetime | None
    duration_seconds: float | None
    estimated_duration_seconds: float | None
    failure_reason: str | None
    errors: list[dict] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "organization": self.organization_slug,
            "kind": self.kind,
            "status": self.status,
            "invoice_date": self.invoice_date.isoformat() if self.invoice_date else None,
            "due_days": self.due_days,
            "total": self.total_count,
            "processed": self.processed_count,
            "successful": self.successful_count,
            "failed": self.failed_count,
            "skipped": self.skipped_count,
            "cancel_requested": self.cancel_requested,
            "retry_of_job_id": self.retry_of_job_id,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
            "duration_seconds": self.duration_seconds,
            "estimated_duration_seconds": self.estimated_duration_seconds,
            "failure_reason": self.failure_reason,
            "errors": self.errors,
        }
