"""A batch job processed in its own process, for the crash and concurrency tests."""

#     python -m invoice_pipelines_tests.billing.worker URL JOB_ID CHUNK_SIZE
#         [--hang-at-position P SIGNAL_FILE] [--pause-before-position P FILE ...]
#
# --hang-at-position: the chunk whose window starts after position P (positions P+1 .. P+CHUNK_SIZE)
# does all its writes, writes its start value (ctx.last_value) to SIGNAL_FILE and sleeps inside its
# open transaction: the test kills the process there, mid-chunk, with SIGKILL. The chunk is chosen
# by position, not by the order in which chunks on several threads happen to reach their writes.
#
# --pause-before-position (repeatable): the chunk after position P does not start until FILE exists.
# Nothing of that chunk is open while it waits (no transaction; on PostgreSQL the chunk after it
# only reads until it knows where this one starts), so another job can go on meanwhile.
#
# Prints one JSON line: status, counts, fallbacks and their causes.

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from invoice_pipelines.billing.domain import chunks_in_flight
from invoice_pipelines.billing.domain.invoicing import process_batch_job
from invoice_pipelines.db.engine import make_engine
from invoice_pipelines_tests.billing.shop import hook_chunk_writes


def _wait_for(path: Path) -> None:
    while not path.exists():
        time.sleep(0.01)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("job_id", type=int)
    parser.add_argument("chunk_size", type=int)
    parser.add_argument("--hang-at-position", nargs=2, metavar=("P", "SIGNAL_FILE"))
    parser.add_argument(
        "--pause-before-position", nargs=2, action="append", default=[], metavar=("P", "FILE")
    )
    args = parser.parse_args(argv)
    engine = make_engine(args.url)
    if args.hang_at_position:
        hang_at, signal_file = int(args.hang_at_position[0]), Path(args.hang_at_position[1])

        def hangs(ctx):
            if ctx.job_id == args.job_id and ctx.after_position == hang_at:
                # whole or not at all: the test waits for the file to exist, then reads it
                part = signal_file.with_name(signal_file.name + ".part")
                part.write_text(str(ctx.last_value))
                os.replace(part, signal_file)
                time.sleep(600)  # killed here: invoices written, numbers taken, nothing committed

        module, name, wrapper = hook_chunk_writes(engine.dialect.name, hangs)
        setattr(module, name, wrapper)
    pauses = {int(position): Path(path) for position, path in args.pause_before_position}
    if pauses:
        assert engine.dialect.name == "postgresql", "pauses hook the chunks in flight"
        real_window = chunks_in_flight.PipelinedJob._window

        def window(self, k):
            if self._after(k) in pauses:
                _wait_for(pauses[self._after(k)])
            return real_window(self, k)

        chunks_in_flight.PipelinedJob._window = window
    job = process_batch_job(
        engine,
        args.job_id,
        system=engine,
        chunk_size=args.chunk_size,
        runner=f"worker-{args.job_id}",
    )
    print(
        json.dumps(
            {
                "status": job.status,
                "successful": job.successful_count,
                "skipped": job.skipped_count,
                "fallbacks": job.fallbacks,
                "fallback_causes": job.fallback_causes,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
