"""A documents run ends on SIGTERM within the grace a supervisor gives it (issue 55: "six started
documents runs ignored SIGTERM for more than 15 s").

A real run: `make run`'s code server (invoice_pipelines/code_server.py) with the project's
definitions on PostgreSQL, `documents_job` launched by Dagster's run launcher, its worker
processes building the documents. The test is the supervisor: SIGTERM to the run's process, the
grace of `make run`'s stop (scripts/run-dagster.sh GRACE_SECONDS), then SIGKILL, as the stop does.
The run must have ended by itself before the KILL: its end recorded (FAILURE, not STARTED; nobody
else records it here), its worker processes gone, and its documents in a recorded state (each
invoice's document written and recorded, or neither). Before, the run's pool waited 5 s for each
worker that was warming up or busy (resources/workers/worker_pool.py); such a run was killed with its run
still STARTED.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from dagster._grpc.client import DagsterGrpcClient
from sqlalchemy import func, select

from invoice_pipelines.db.tables import sales_invoice_documents
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.housekeeping.dead_runs import recorded_process
from invoice_pipelines_tests.exports.books import customer, sales_invoice
from invoice_pipelines_tests.test_make_run import _default_signals

# a code server and its runs (`pytest -m "not slow"` leaves it out)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
# the grace `make run`'s stop gives a run between SIGTERM and SIGKILL
GRACE_SECONDS = int(
    re.search(r"^GRACE_SECONDS=(\d+)", (REPO / "scripts/run-dagster.sh").read_text(), re.M)[1]
)
INVOICES = 400  # 8 chunks of 50: many seconds of work for two workers
SELLER = {
    "street": "Industriestraße 5",
    "postal_code": "70565",
    "city": "Stuttgart",
    "iban": "DE02120300000000202051",
    "bic": "BYLADEM1001",
}
WORKER = "worker_pool import _worker_entry"
SAFETY = 300  # seconds: deadlines of waits, never measurements


class CodeServer:
    def __init__(self, folder: Path, process: subprocess.Popen) -> None:
        self.folder = folder
        self.process = process
        self.instance = DagsterInstance.from_config(str(folder / "home"))

    def launch(self, slug: str) -> str:
        from dagster._cli.job import execute_launch_command
        from dagster_shared.cli import WorkspaceOpts

        self.instance.add_dynamic_partitions("organizations", [slug])
        run = execute_launch_command(
            instance=self.instance,
            workspace_opts=WorkspaceOpts(workspace=[str(self.folder / "workspace.yaml")]),
            job_name="documents_job",
            tags=json.dumps({"dagster/partition": slug}),
        )
        return run.run_id

    def run_pid(self, run_id: str) -> int:
        deadline = time.monotonic() + SAFETY
        while (process := recorded_process(self.instance, run_id)) is None:
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.1)
        return process[0]

    def log(self) -> str:
        return (self.folder / "server.log").read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def code_server(pg_database) -> Iterator[CodeServer]:
    folder = Path(tempfile.mkdtemp(prefix="ip-term-", dir="/tmp"))  # a socket path is short
    (folder / "home").mkdir()
    (folder / "home" / "dagster.yaml").write_text(  # launched at once: no daemon here
        "telemetry:\n  enabled: false\nrun_coordinator:\n"
        "  module: dagster._core.run_coordinator\n  class: DefaultRunCoordinator\n"
    )
    socket = folder / "s.sock"
    (folder / "workspace.yaml").write_text(
        f"load_from:\n  - grpc_server:\n      socket: {socket}\n      host: localhost\n"
        "      location_name: invoice_pipelines\n"
    )
    env = {
        **os.environ,
        "DAGSTER_HOME": str(folder / "home"),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "INVOICE_PIPELINES_DB_URL": pg_database.url,
        "INVOICE_PIPELINES_DATA_DIR": str(folder / "data"),
    }
    with (folder / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "invoice_pipelines.code_server", "code-server", "start",
             "--socket", str(socket), "-m", "invoice_pipelines.definitions", "-d", str(REPO),
             "--location-name", "invoice_pipelines", "--log-level", "warning"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_default_signals,
        )  # fmt: skip
    server = CodeServer(folder, process)
    try:
        client = DagsterGrpcClient(socket=str(socket), host="localhost")
        deadline = time.monotonic() + SAFETY
        while not (socket.exists() and client.health_check_query() == "SERVING"):
            assert process.poll() is None, server.log()
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.5)
        yield server
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _organization(db) -> dict:
    org = db.new_organization(
        name="Müller Werkzeugbau GmbH", vat_id="DE123456789", settings={"seller": SELLER}
    )
    buyer = customer(db.engine, org["id"], "K-1", "Kunde GmbH")
    for _ in range(INVOICES):
        sales_invoice(db.engine, org["id"], buyer)
    return org


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    # gone before the open (FileNotFoundError), or between the open and the read
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _workers_of(pid: int) -> list[int]:
    """The worker processes the process `pid` started (resources/workers/worker_pool.py)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
        if parent == pid and WORKER in command:
            found.append(int(proc.name))
    return found


def _recorded(db, org_id: int) -> int:
    d = sales_invoice_documents.c
    with tenant_transaction(db.engine, org_id) as conn:
        return conn.execute(
            select(func.count()).where(d.organization_id == org_id, d.status == "generated")
        ).scalar_one()


def _terminate_as_a_supervisor(pid: int) -> bool:
    """SIGTERM, the grace, SIGKILL for what is left: whether the process ended by itself."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not _alive(pid):
        return True
    os.kill(pid, signal.SIGKILL)
    return False


def _assert_recorded_state(db, org: dict, store: Path) -> None:
    """Each invoice has at most one generated document per kind, each recorded document is on
    disk as recorded, and no document is on disk without its row."""
    d = sales_invoice_documents.c
    with tenant_transaction(db.engine, org["id"]) as conn:
        rows = conn.execute(
            select(d.sales_invoice_id, d.kind, d.storage_key, d.sha256).where(
                d.organization_id == org["id"], d.status == "generated"
            )
        ).all()
    keys = [(row.sales_invoice_id, row.kind) for row in rows]
    assert len(keys) == len(set(keys))
    for row in rows:
        data = (store / row.storage_key).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row.sha256, row.storage_key
    on_disk = {
        str(path.relative_to(store)) for path in (store / org["slug"]).rglob("*") if path.is_file()
    }
    assert on_disk == {row.storage_key for row in rows}


@pytest.mark.parametrize("when", ["warming_up", "mid_work"])
def test_a_documents_run_ends_within_the_grace_on_sigterm(code_server, pg_database, when):
    db = pg_database
    org = _organization(db)
    run_id = code_server.launch(org["slug"])
    pid = code_server.run_pid(run_id)
    deadline = time.monotonic() + SAFETY
    while not (workers := _workers_of(pid)):  # the run's pool has started
        assert _alive(pid) and time.monotonic() < deadline, code_server.log()
        time.sleep(0.05)
    if when == "mid_work":
        while _recorded(db, org["id"]) == 0:  # a first chunk is recorded, the next being built
            assert _alive(pid) and time.monotonic() < deadline, code_server.log()
            time.sleep(0.05)
    assert _alive(pid), "the run ended before the signal: give it more work"

    ended_by_itself = _terminate_as_a_supervisor(pid)

    run = code_server.instance.get_run_by_id(run_id)
    assert ended_by_itself, f"still running {GRACE_SECONDS} s after SIGTERM: {code_server.log()}"
    assert run.status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED), run.status
    deadline = time.monotonic() + SAFETY  # (killed ones are reaped by init)
    while [w for w in workers if _alive(w)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [w for w in workers if _alive(w)], "the run's workers outlived it"
    assert _recorded(db, org["id"]) < INVOICES, "the run was done before the signal"
    _assert_recorded_state(db, org, code_server.folder / "data" / "documents")
