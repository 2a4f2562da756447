"""Benchmark: XML e-invoices from upload to VALIDATED on the configured database, plus OCR pages/s.

Generates N distinct e-invoices (our own CII and UBL writers), drops them into a scratch upload
store for a fresh organization, registers them the way the upload sensor does, and runs the intake
step (XSD + official schematron + our rules; then the status changes) exactly as the intake job
does, with the `document_parser` the code location configures: the runs' shared parse server
(`--parser server`, `resources/workers/parse_server.py`; a scratch one of this bench's own, stopped at the
end), or workers of the run's own (`--parser run`, keep_warm_seconds=0). Parser start-up (until
the workers are warm) and the Dagster in-process run overhead are reported separately from the
per-document throughput; the limit is measured in a pool of its own (`parse_limit`).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid

from sqlalchemy import func, select

from invoice_pipelines.cli_args import non_negative_int, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=positive_int, default=200, help="number of XML e-invoices")
    parser.add_argument(
        "--workers", type=positive_int, default=os.cpu_count() or 2, help="parser processes"
    )
    parser.add_argument(
        "--ocr-pages", type=non_negative_int, default=4, help="pages for the OCR figure (0: skip)"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=200, help="documents per intake run"
    )
    parser.add_argument(
        "--parser",
        choices=("server", "run"),
        default="server",
        help="server: a parse server shared by the runs, as the code location configures the "
        "document_parser (keep_warm_seconds); run: workers of the run's own",
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark organization")


def run(args: argparse.Namespace) -> dict:
    from dagster import DagsterInstance, Definitions

    from invoice_pipelines.db.engine import database_url, make_engine, make_system_engine
    from invoice_pipelines.db.migrate import ensure_migrated
    from invoice_pipelines.db.tables import incoming_invoices, organizations
    from invoice_pipelines.db.tenancy import (
        find_organization,
        system_transaction,
        tenant_transaction,
    )
    from invoice_pipelines.intake import assets as intake_assets
    from invoice_pipelines.intake.domain.pipeline import process_documents
    from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
    from invoice_pipelines.intake.jobs import intake_job
    from invoice_pipelines.intake.parser_resource import DocumentParser
    from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
    from invoice_pipelines.resources.database.engines import Database, SystemDatabase
    from invoice_pipelines.resources.files.uploads import LocalUploads
    from invoice_pipelines.resources.ocr.engines import TesseractOcrEngine
    from invoice_pipelines.resources.workers.parse_server import KEEP_WARM_SECONDS, stop_server
    from invoice_pipelines_devtools.bench.limit import current_database, limit_fields, per_second
    from invoice_pipelines_devtools.demo.invoices import synthetic_xml_invoices

    ensure_migrated(make_engine(owner=True))
    engine = make_engine()
    system = make_system_engine()
    slug = f"bench-intake-{uuid.uuid4().hex[:8]}"
    with system_transaction(system, write=True) as conn:
        org_id = conn.execute(
            organizations.insert()
            .values(slug=slug, name="Benchmark intake")
            .returning(organizations.c.id)
        ).scalar_one()
    organization = find_organization(system, org_id)

    with (
        tempfile.TemporaryDirectory(prefix="ip-bench-uploads-") as root,
        tempfile.TemporaryDirectory(prefix="ip-bench-parse-") as server_dir,
    ):

        def document_parser() -> DocumentParser:
            """The document_parser as definitions.py configures it (a scratch server folder, so
            the bench neither uses nor stops a server of anyone else's)."""
            return DocumentParser(
                workers=args.workers,
                keep_warm_seconds=KEEP_WARM_SECONDS if args.parser == "server" else 0.0,
                server_dir=server_dir,
            )

        store = LocalUploads(root)
        t0 = time.perf_counter()
        old = time.time() - 600
        documents = list(synthetic_xml_invoices(args.n, seed=42))
        for name, data in documents:
            store.put(slug, name, data)
            path = os.path.join(root, slug, name)
            os.utime(path, (old, old))
        generate_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        parser = document_parser()
        try:
            # start (or connect), warm-up (schematron compilation): measured apart
            parser.wait_ready(300)
            parser_start_s = time.perf_counter() - t0

            t0 = time.perf_counter()
            scan = scan_uploads(
                engine,
                store,
                ScanState(),
                system=system,
                batch_size=args.batch_size,
                max_files_per_tick=args.n + 10,
                only_organizations={slug},
            )
            register_s = time.perf_counter() - t0
            batches = [b for b in scan.batches if b.organization_slug == slug]
            t0 = time.perf_counter()
            validated = failed = 0
            for batch in batches:
                # as a run does: each batch is one run's call, the parser set up for the run
                summary = process_documents(
                    engine,
                    store,
                    organization,
                    batch.document_ids,
                    parser=parser,
                    ocr=None,
                    max_bytes=parser.max_upload_bytes,
                )
                validated += summary.outcomes.get("VALIDATED", 0)
                failed += summary.outcomes.get("FAILED", 0)
            process_s = time.perf_counter() - t0
            parser.close()  # a run's teardown (the server stays warm for the next run)

            # fixed cost of one Dagster run (in-process executor, nothing left waiting), measured
            # apart; with --parser run it includes starting and stopping the run's own workers
            job = Definitions(
                assets=[intake_assets.uploads, intake_assets.incoming_invoices],
                jobs=[intake_job],
                resources={
                    "database": Database(),
                    "system_database": SystemDatabase(),
                    "upload_store": store,
                    "ocr_engine": TesseractOcrEngine(),
                    "document_parser": document_parser(),
                },
            ).resolve_job_def("intake_job")
            instance = DagsterInstance.ephemeral()
            instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [slug])
            t0 = time.perf_counter()
            job.execute_in_process(instance=instance, partition_key=slug)
            run_overhead_s = time.perf_counter() - t0
        finally:
            parser.close()
            if args.parser == "server":
                stop_server(parser.server_spec(), server_dir)
        limit = parse_limit(args.workers, documents)

    with tenant_transaction(engine, org_id) as conn:
        database = current_database(conn)
        in_db = conn.execute(
            select(func.count())
            .select_from(incoming_invoices)
            .where(
                incoming_invoices.c.organization_id == org_id,
                incoming_invoices.c.status == "VALIDATED",
            )
        ).scalar_one()

    if not args.keep:
        # the benchmark's organization (and, by cascade, its documents) must not linger in the
        # database `make run` shows
        with system_transaction(system, write=True) as conn:
            conn.execute(organizations.delete().where(organizations.c.id == org_id))

    result = {
        "scenario": "intake",
        "db": make_engine().dialect.name,
        "db_url": database_url(redact=True),
        "docs": args.n,
        "validated": in_db,
        "failed": failed,
        "workers": args.workers,
        "parser": args.parser,
        "seconds": round(register_s + process_s, 3),
        "docs_per_s": round(args.n / (register_s + process_s), 1),
        "register_seconds": round(register_s, 3),
        "parse_validate_record_seconds": round(process_s, 3),
        "parser_start_seconds": round(parser_start_s, 3),
        "dagster_run_overhead_seconds": round(run_overhead_s, 3),
        "generate_seconds": round(generate_s, 3),
        "target_docs_per_s": 100,
    }
    if args.ocr_pages:
        from invoice_pipelines_devtools.bench.ocr import measure_ocr

        result.update(measure_ocr(pages=args.ocr_pages))
    return limit_fields(
        result,
        "docs_per_s",
        per_second(limit["parsed"], limit["seconds"]),
        LIMIT_METHOD.format(workers=limit["workers"]),
        limit_seconds=round(limit["seconds"], 3),
        limit_validated=limit["validated"],
        # the limit reads no database: it parses the bytes the run registered in this one
        database_name=database,
        limit_database=database,
    )


LIMIT_METHOD = (
    "the same documents parsed and validated (XSD, schematron, our rules: parse_many) in a pool "
    "of the bench's own, already warm as the parse server warms its workers (rule sets compiled, "
    "made-up documents read), one worker per core ({workers}), straight from memory: no "
    "registration, no upload store, no parse server, no status changes or rows written"
)


def parse_limit(workers: int, documents: list[tuple[str, bytes]]) -> dict:
    """Parse the run's documents again in a warm pool of one worker per core, straight from
    memory in this process (no parse server between): seconds, documents parsed and how many
    came back VALIDATED."""
    from invoice_pipelines.intake.domain.warm_up import WARM_UP_WITH_DOCUMENTS
    from invoice_pipelines.intake.domain.workers import SafeParser
    from invoice_pipelines.resources.ocr.engines import available_cores

    cores = available_cores()
    with SafeParser(workers=cores, warm_up=WARM_UP_WITH_DOCUMENTS) as parser:
        parser.wait_ready(300)
        items = [(data, name) for name, data in documents]
        started = time.perf_counter()
        outcomes = parser.parse_many(items)
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "parsed": len(outcomes),
        "validated": sum(1 for o in outcomes if o.status == "VALIDATED"),
        "workers": cores,
    }
