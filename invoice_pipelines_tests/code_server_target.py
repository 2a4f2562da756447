"""A code location for test_code_server.py: two jobs that tell where their run's process came
from. Each writes one JSON file into the folder CODE_SERVER_PROBE_DIR names."""

import json
import os
import time
from pathlib import Path

from dagster import Definitions, OpExecutionContext, in_process_executor, job, op


def _report(context: OpExecutionContext, name: str) -> None:
    parent = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    report = {
        "run_id": context.run_id,
        "pid": os.getpid(),
        "parent_cmdline": parent,
        "niceness": os.getpriority(os.PRIO_PROCESS, 0),
    }
    folder = Path(os.environ["CODE_SERVER_PROBE_DIR"])
    (folder / f"{name}-{context.run_id}.json").write_text(json.dumps(report))


@op
def where_am_i(context: OpExecutionContext) -> None:
    _report(context, "where")


@op
def wait_to_be_lowered(context: OpExecutionContext) -> None:
    # the server lowers a bulk run's priority right after the run's process has started, which
    # may be before this step or while it runs: wait until it is below the warm process's (the
    # run's parent, never lowered). Comparing with its own priority at the step's start waited
    # the whole minute whenever the server had been quicker than the step.
    parent = os.getpriority(os.PRIO_PROCESS, os.getppid())
    deadline = time.monotonic() + 60
    while os.getpriority(os.PRIO_PROCESS, 0) <= parent and time.monotonic() < deadline:
        time.sleep(0.1)
    _report(context, "bulk")


@op
def wait_for_termination(context: OpExecutionContext) -> None:
    _report(context, "waiting")
    time.sleep(120)


# in the run's process itself (the default executor would start a process per step)
@job(executor_def=in_process_executor)
def where_job():
    where_am_i()


@job(executor_def=in_process_executor)
def bulk_job():
    wait_to_be_lowered()


@job(executor_def=in_process_executor)
def waiting_job():
    wait_for_termination()


defs = Definitions(jobs=[where_job, bulk_job, waiting_job])
