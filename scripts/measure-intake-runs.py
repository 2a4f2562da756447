"""Documents per second through intake runs as the code location runs them (issue 26).

`bench intake` times the intake step with a parser that is already warm and reports the parser's
warm-up and a run's overhead apart. This measures what a burst of uploads costs end to end: the
documents are registered as upload_sensor registers them (`scan_uploads`, batches of
`--batch-size`), and every batch is one `intake_job` run in a process of its own, as Dagster's
default run launcher starts one: a fresh interpreter that imports Dagster and loads the whole code
location (`invoice_pipelines.definitions`), sets up the resources as configured there (the
`document_parser` among them), runs the job in process and tears the resources down. The runs of
one organization go one after another (deploy/dagster.yaml allows one at a time). This script is
the runs' parent, as the code location's server is for runs its launcher starts.

`--bursts 2` drops a second burst of new documents once the first is done: the first burst is
what a code location that has been idle pays, the second what a busy one pays.

Runs the tree on PYTHONPATH (or this one) against INVOICE_PIPELINES_DB_URL when it names a
PostgreSQL database, else a scratch database it creates on the local server and drops. One JSON
object on the last stdout line. For side-by-side comparisons, alternate two trees:

    for i in 1 2 3; do
      PYTHONPATH=/tmp/base .venv/bin/python scripts/measure-intake-runs.py --docs 600
      .venv/bin/python scripts/measure-intake-runs.py --docs 600
    done
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path

SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432"
if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RUN_ONE = """
import json, sys, time
started = time.perf_counter()
from dagster import DagsterInstance
from invoice_pipelines.definitions import defs
loaded = time.perf_counter()
slug, ids = sys.argv[1], json.loads(sys.argv[2])
job = defs.resolve_job_def("intake_job")
instance = DagsterInstance.ephemeral()
instance.add_dynamic_partitions("organizations", [slug])
result = job.execute_in_process(
    run_config={"ops": {"incoming_invoices": {"config": {"document_ids": ids}}}},
    instance=instance,
    partition_key=slug,
)
print(json.dumps({"success": result.success, "import_and_load_seconds": loaded - started,
                  "execute_seconds": time.perf_counter() - loaded}))
"""


def synthetic(n: int, seed: int) -> list[tuple[str, bytes]]:
    try:
        from invoice_pipelines_devtools.demo.invoices import synthetic_xml_invoices
    except ImportError:  # trees from before devtools/
        from invoice_pipelines.demo.invoices import synthetic_xml_invoices
    return list(synthetic_xml_invoices(n, seed=seed))


@contextmanager
def database():
    url = os.environ.get("INVOICE_PIPELINES_DB_URL", "")
    if url.startswith("postgresql"):
        yield url
        return
    from sqlalchemy import create_engine

    name = f"measure_intake_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"{SERVER}/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=600, help="XML e-invoices per burst")
    parser.add_argument("--batch-size", type=int, default=200, help="documents per run")
    parser.add_argument("--bursts", type=int, default=2)
    args = parser.parse_args()

    with ExitStack() as stack:
        url = stack.enter_context(database())
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="measure-intake-")))
        os.environ.update(
            INVOICE_PIPELINES_DB_URL=url,
            INVOICE_PIPELINES_UPLOAD_DIR=str(work / "uploads"),
            INVOICE_PIPELINES_DATA_DIR=str(work / "data"),
            OMP_THREAD_LIMIT="1",
        )
        from sqlalchemy import func, select

        from invoice_pipelines.db.engine import make_engine, make_system_engine
        from invoice_pipelines.db.migrate import ensure_migrated
        from invoice_pipelines.db.tables import incoming_invoices, organizations
        from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
        from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
        from invoice_pipelines.resources.files.upload_stores import LocalUploadStore

        ensure_migrated(make_engine(owner=True))
        engine = make_engine()
        system = make_system_engine()
        slug = f"measure-intake-{uuid.uuid4().hex[:6]}"
        with system_transaction(system, write=True) as conn:
            org_id = conn.execute(
                organizations.insert()
                .values(slug=slug, name="Measure intake")
                .returning(organizations.c.id)
            ).scalar_one()
        store = LocalUploadStore(root=str(work / "uploads"))
        state = ScanState()
        python = sys.executable
        env = dict(os.environ)
        bursts = []
        for burst in range(args.bursts):
            old = time.time() - 600
            for name, data in synthetic(args.docs, seed=42 + burst):
                store.put(slug, name, data)
                path = work / "uploads" / slug / name
                os.utime(path, (old, old))
            started = time.perf_counter()
            scan = scan_uploads(
                engine,
                store,
                state,
                system=system,
                batch_size=args.batch_size,
                max_files_per_tick=args.docs + 10,
                only_organizations={slug},
            )
            state = scan.state
            register_s = time.perf_counter() - started
            runs = []
            for batch in scan.batches:
                t0 = time.perf_counter()
                done = subprocess.run(
                    [python, "-c", RUN_ONE, slug, json.dumps(batch.document_ids)],
                    env=env,
                    # not the caller's folder: `python -c` puts it first on sys.path, so a
                    # checkout there would be imported instead of the tree on PYTHONPATH
                    cwd=work,
                    capture_output=True,
                    text=True,
                )
                if done.returncode != 0:
                    sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
                    raise SystemExit(f"run failed (exit {done.returncode})")
                run = json.loads(done.stdout.strip().splitlines()[-1])
                run["seconds"] = time.perf_counter() - t0
                run["documents"] = len(batch.document_ids)
                runs.append({k: round(v, 3) if isinstance(v, float) else v for k, v in run.items()})
            seconds = time.perf_counter() - started
            bursts.append(
                {
                    "docs": args.docs,
                    "runs": len(runs),
                    "seconds": round(seconds, 3),
                    "docs_per_s": round(args.docs / seconds, 1),
                    "register_seconds": round(register_s, 3),
                    "run_seconds": [r["seconds"] for r in runs],
                    "runs_detail": runs,
                }
            )
            print(json.dumps(bursts[-1]), file=sys.stderr, flush=True)
        with tenant_transaction(engine, org_id) as conn:
            validated = conn.execute(
                select(func.count())
                .select_from(incoming_invoices)
                .where(
                    incoming_invoices.c.organization_id == org_id,
                    incoming_invoices.c.status == "VALIDATED",
                )
            ).scalar_one()
        engine.dispose()
    total_docs = args.docs * args.bursts
    total_s = sum(b["seconds"] for b in bursts)
    print(
        json.dumps(
            {
                "measure": "intake-runs",
                "tree": str(Path(sys.modules["invoice_pipelines"].__file__).parents[1]),
                "docs": total_docs,
                "validated": validated,
                "batch_size": args.batch_size,
                "docs_per_s": round(total_docs / total_s, 1),
                "docs_per_s_by_burst": [b["docs_per_s"] for b in bursts],
                "seconds_by_burst": [b["seconds"] for b in bursts],
                "load_average": os.getloadavg(),
                "bursts": bursts,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
