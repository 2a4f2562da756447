"""A kind declared here only ("labels": a label file per sales invoice) and handed over with the
areas' kinds runs through the queue's normal path, and the queue speaks of it in the kind's own words: its
items' word and what done means for them in batch-status, its sentence when the stuck-job sweep
stops one of its jobs."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from invoice_pipelines.db.types import utcnow
from invoice_pipelines.queue.domain import items
from invoice_pipelines.queue.domain.job_kind import SUCCEEDED, Chunks, JobKind, Reading
from invoice_pipelines.queue.domain.jobs import get_batch_job
from invoice_pipelines.queue.domain.known_kinds import Kinds
from invoice_pipelines.queue.domain.stuck import fail_stuck_jobs
from invoice_pipelines_tests.queue.queued import queue_over_invoices

LABELS_STUCK = "Labels printed stay; the invoices not reached got no label"


def _labels_work(engine, resources, run_id):
    def work(job, organization, request, invoice_ids):
        folder = Path(os.environ["LABELS_DIR"])
        for invoice_id in invoice_ids:
            (folder / f"label-{invoice_id}.txt").write_text(f"invoice {invoice_id}\n")
        return {invoice_id: SUCCEEDED for invoice_id in invoice_ids}

    return work


LABELS = JobKind(
    name="labels",
    runs=Chunks(_labels_work),
    reading=Reading(unit="invoices", done="labelled", stuck_left=LABELS_STUCK),
)


def _enqueue(db, org: dict, invoice_ids: list[int]) -> int:
    return queue_over_invoices(db.engine, org["slug"], "labels", invoice_ids, created_by="anna")


def test_a_kind_declared_in_a_test_runs_and_is_shown_in_its_own_words(
    db, capsys, monkeypatch, tmp_path, commands_given
):
    from invoice_pipelines.cli import main

    org = db.new_organization(name="Etiketten GmbH")
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    monkeypatch.setenv("LABELS_DIR", str(tmp_path))
    commands_given(LABELS)  # the commands get it with the areas' kinds
    job_id = _enqueue(db, org, [3, 8])

    assert main(["batch-run", str(job_id)]) == 0
    job = get_batch_job(db.engine, job_id)
    assert (job.status, job.total_count, job.processed_count, job.successful_count) == (
        "completed",
        2,
        2,
        2,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["label-3.txt", "label-8.txt"]
    capsys.readouterr()

    assert main(["batch-status", str(job_id)]) == 0
    out = capsys.readouterr().out
    assert f"batch job {job_id} (labels) for {org['slug']}: completed" in out
    assert "  invoices: 2 requested, 2 processed, 2 labelled, 0 failed, 0 skipped" in out
    assert "orders" not in out and "invoice date" not in out

    assert main(["batch-list", "--org", org["slug"]]) == 0
    [row] = [
        line for line in capsys.readouterr().out.splitlines() if line.split()[0] == str(job_id)
    ]
    assert row.split()[2:5] == ["completed", "labels", "2/2"]


def test_the_stuck_job_sweep_stops_a_stalled_job_of_the_kind_with_its_sentence(db):
    org = db.new_organization(name="Etiketten GmbH")
    job_id = _enqueue(db, org, [5, 6, 7])
    # taken by a runner that dies before its first chunk
    assert items.claim_item_job(db.engine, get_batch_job(db.engine, job_id), "dead-runner")

    stopped = fail_stuck_jobs(db.engine, Kinds.of(LABELS), now=utcnow() + timedelta(minutes=31))

    [job] = [j for j in stopped if j.id == job_id]
    assert (job.status, job.failed_count) == ("failed", 3)
    assert f"{LABELS_STUCK} (retry the failed items)." in job.failure_reason
    assert "orders" not in job.failure_reason
