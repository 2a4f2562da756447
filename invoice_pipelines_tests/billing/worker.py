"""A batch job processed in its own process, for the crash and concurrency tests."""

#     python -m invoice_pipelines_tests.billing.worker URL JOB_ID CHUNK_SIZE [--hang-in-chunk N SIGNAL_FILE]
#     python -m invoice_pipelines_tests.billing.worker URL JOB_ID CHUNK_SIZE --start-when FILE
#
# With --hang-in-chunk the N-th chunk does all its writes, then touches SIGNAL_FILE and sleeps inside
# its open transaction: the test kills the process there, mid-chunk, with SIGKILL. With --start-when
# the worker connects, then waits for FILE, so two workers start processing at the same moment.

from __future__ import annotations

import sys
import time
from pathlib import Path

from invoice_pipelines.billing.invoicing import process_batch_job
from invoice_pipelines.db.engine import make_engine
from invoice_pipelines_tests.billing.shop import hook_chunk_writes


def main(argv: list[str]) -> int:
    url, job_id, chunk_size = argv[0], int(argv[1]), int(argv[2])
    engine = make_engine(url)
    if len(argv) > 3 and argv[3] == "--hang-in-chunk":
        hang_at, signal_file = int(argv[4]), Path(argv[5])
        calls = [0]

        def hangs(ctx):  # noqa: ANN001, ANN202
            calls[0] += 1
            if calls[0] == hang_at:
                signal_file.write_text(str(ctx.last_value))
                time.sleep(600)  # killed here: invoices written, numbers taken, nothing committed

        module, name, wrapper = hook_chunk_writes(engine.dialect.name, hangs)
        setattr(module, name, wrapper)
    if len(argv) > 3 and argv[3] == "--start-when":
        start_file = Path(argv[4])
        while not start_file.exists():
            time.sleep(0.005)
    job = process_batch_job(engine, job_id, chunk_size=chunk_size, runner=f"worker-{job_id}")
    print(job.status, job.successful_count, job.skipped_count, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
