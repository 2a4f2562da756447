"""One run worker in a process of its own, for the scale-out tests: what a Dagster run on another
machine does for an area that has queued work, against the same database.

    python -m invoice_pipelines_tests.scale_out_worker GO_FILE AREA URL ARGS...
        invoicing       JOB_ID                  process_batch_job (two chunks in flight)
        intake          STORE_ROOT ORG_ID IDS   process_documents (ids comma-separated)
        invoice-job     STORE_ROOT JOB_ID       run_invoice_job: a documents or communications job
        qbo-push        ORG_ID BASE_URL TOKEN_URL TOKEN_KEY TIME_SCALE   push under the lease
        dunning         AS_OF SMS_URL STORE_ROOT SLUGS   run_overdue + send_notices per organization

Every worker imports everything first, then waits for GO_FILE, so they start their work together.
Prints one JSON line with what it did.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from invoice_pipelines.db.tenancy import find_organization


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 120
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} never appeared")
        time.sleep(0.005)


def main(argv: list[str]) -> int:
    go, area, url, *rest = argv
    from invoice_pipelines.db.engine import make_engine

    engine = make_engine(url)
    runner = f"worker-{os.getpid()}"
    if area == "invoicing":
        from invoice_pipelines.billing.domain.invoicing import process_batch_job

        _wait_for(Path(go))
        job = process_batch_job(engine, int(rest[0]), system=engine, chunk_size=100, runner=runner)
        print(json.dumps({"status": job.status, "processed": job.processed_count}))
    elif area == "intake":
        from invoice_pipelines.intake.domain.parse import parse_document
        from invoice_pipelines.intake.domain.pipeline import process_documents
        from invoice_pipelines.resources.files.uploads import LocalUploads

        class InProcessParser:  # XML only here: no worker pool needed
            def parse_many(self, items):
                return [parse_document(data, filename) for data, filename in items]

        store = LocalUploads(rest[0])
        ids = [int(i) for i in rest[2].split(",")]
        parser = InProcessParser()
        _wait_for(Path(go))
        organization = find_organization(engine, int(rest[1]))
        summary = process_documents(engine, store, organization, ids, parser=parser, ocr=None)
        print(
            json.dumps(
                {
                    "processed": summary.processed,
                    "outcomes": dict(summary.outcomes),
                    "stale": summary.stale,
                    "skipped": sorted(summary.skipped),
                }
            )
        )
    elif area == "invoice-job":
        from invoice_pipelines.areas import command_resources
        from invoice_pipelines.delivery.domain.pipeline import AlreadySending
        from invoice_pipelines.queue.domain.job_kind import RunSettings
        from invoice_pipelines.queue.domain.jobs import get_batch_job
        from invoice_pipelines.queue.domain.kinds import run_job
        from invoice_pipelines.resources.files.files import LocalFiles
        from invoice_pipelines.resources.for_commands import EnvResources

        store = LocalFiles(rest[0], area="documents")
        # the mailer, the kinds and the rest as a command gets them (the areas' one table), the
        # store and the engines given (the URL is this worker's argument, not the environment's)
        resources = EnvResources(
            command_resources(), document_store=store, database=engine, system_database=engine
        )
        kinds = resources.batch_kinds
        job = get_batch_job(engine, int(rest[1]))
        _wait_for(Path(go))
        try:
            job = run_job(engine, job, kinds, resources, RunSettings(5, runner))
            print(json.dumps({"status": job.status, "processed": job.processed_count}))
        except AlreadySending as exc:
            # another machine sends for this organization right now: this run leaves it alone
            print(json.dumps({"refused": str(exc)}))
    elif area == "qbo-push":
        from invoice_pipelines.quickbooks.domain.sync.common import (
            QboSettings,
            open_client,
            realm_lease,
        )
        from invoice_pipelines.quickbooks.domain.sync.invoices import push_invoices

        org_id, base_url, token_url, token_key, time_scale = rest
        settings = QboSettings(
            base_url=base_url,
            token_url=token_url,
            token_key=token_key,
            time_scale=float(time_scale),
        )
        _wait_for(Path(go))
        # as the qbo_invoices asset run does: the organization's sync lease in the database, so
        # two runs never talk to one realm at once (push_invoices alone assumes it is held)
        with (
            realm_lease(engine, int(org_id), runner, poll_seconds=0.5),
            open_client(engine, int(org_id), settings) as client,
        ):
            counts = push_invoices(engine, find_organization(engine, int(org_id)), client)
        print(json.dumps(counts.as_dict()))
    elif area == "dunning":
        from datetime import date

        from invoice_pipelines.overdue.domain.notice_sending import send_notices
        from invoice_pipelines.overdue.domain.pipeline import run_overdue
        from invoice_pipelines.resources.files.files import LocalFiles
        from invoice_pipelines.resources.messaging.smtp import Smtp
        from invoice_pipelines.resources.messaging.text_messages import TextMessages

        as_of, sms_url, store_root, slugs = rest
        provider = TextMessages(base_url=sms_url)
        mailer = Smtp(port=1)  # no e-mail level in these organizations: never connected
        store = LocalFiles(store_root, area="documents")
        _wait_for(Path(go))
        # as the dunning_notices asset does for each partition of its run: notice, then send
        runs = {}
        for slug in slugs.split(","):
            result = run_overdue(
                engine,
                find_organization(engine, slug),
                on=date.fromisoformat(as_of),
                run_id=runner,
                chunk_size=40,
            )
            sent = send_notices(
                engine,
                mailer,
                store,
                find_organization(engine, result.organization_id),
                text_messages=provider,
            )
            runs[slug] = {
                "log_id": result.log_id,
                "status": result.status,
                "notices_created": result.notices_created,
                "by_level": dict(result.created_by_level),
                "fees": str(result.fees),
                "sent": sent.sent,
                "unknown": sent.unknown,
                "failed": len(sent.failed),
            }
        print(json.dumps(runs))
    else:
        raise SystemExit(f"unknown area {area}")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
