"""A QuickBooks invoice push whose SIGTERM Dagster's handler loses (raised inside a weakref
callback, "Exception ignored") still stops at its next batch (resources/workers/stop_signal.py,
checked by `InvoicePusher`'s workers before each batch and by its run once they end).

The push runs in a fresh interpreter that does what Dagster's run worker does
(test_stop_signal.py): a SIGTERM handler that raises Dagster's interrupt and `remember()`. As
the first batch's answer comes back, the run's main thread is made to lose a SIGTERM: a SIGUSR1
handler (run by the main thread wherever it is, waiting for its workers) drops an object whose
weakref callback sends SIGTERM to the process, so Dagster's handler raises inside the callback.
The batch answered stays recorded, the invoices not sent stay queued, and a second push sends
exactly those: each invoice once in QBO, with one mapping."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from sqlalchemy import select

from invoice_pipelines.db.tables import qbo_push_queue
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.quickbooks.domain.sync.invoices import push_invoices
from invoice_pipelines_tests.quickbooks.conftest import TIME_SCALE, TOKEN_KEY
from invoice_pipelines_tests.quickbooks.test_invoices import _shop

ROOT = Path(__file__).resolve().parents[2]
INVOICES = 12
BATCH = 3  # invoices per batch in the stopped run: four batches' worth queued

SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys, threading
    from dagster import DagsterExecutionInterruptedError
    from invoice_pipelines.db.engine import make_engine
    from invoice_pipelines.db.tenancy import find_organization
    from invoice_pipelines.quickbooks.domain.client import QboClient
    from invoice_pipelines.quickbooks.domain.sync import invoices
    from invoice_pipelines.quickbooks.domain.sync.common import QboSettings, open_client
    from invoice_pipelines.resources.workers import stop_signal
    from invoice_pipelines_tests.resources.lost_sigterm import install_dagsters_handler, lose_a_sigterm

    install_dagsters_handler()
    assert stop_signal.remember()
    url, org_id, base_url, token_url, key, time_scale, batch, lose = sys.argv[1:9]
    invoices.MAX_BATCH = int(batch)

    handled = threading.Event()

    def in_the_main_thread(signo, frame):
        lose_a_sigterm()
        handled.set()

    signal.signal(signal.SIGUSR1, in_the_main_thread)
    real_batch = QboClient.batch
    answered = []

    def batch_then_lose(self, *args, **kwargs):  # a worker thread's batch
        answers = real_batch(self, *args, **kwargs)
        answered.append(len(answers))
        if len(answered) == 1 and lose == "lose":
            os.kill(os.getpid(), signal.SIGUSR1)
            assert handled.wait(120)  # a deadline, not a measurement
            print("lost, going on", flush=True)
        return answers

    QboClient.batch = batch_then_lose
    engine = make_engine(url)
    settings = QboSettings(base_url=base_url, token_url=token_url, token_key=key,
                           time_scale=float(time_scale))
    try:
        with open_client(engine, int(org_id), settings) as client:
            counts = invoices.push_invoices(engine, find_organization(engine, int(org_id)),
                                            client, workers=1)
        print("finished:", json.dumps(counts.as_dict()), flush=True)
    except DagsterExecutionInterruptedError as stop:
        print("interrupted:", stop, flush=True)
    """
)


def _push_in_a_process(db, qbo, lose: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable, "-c", SCRIPT, db.url, str(qbo.org_id), qbo.sim.base_url,
            qbo.sim.token_url, TOKEN_KEY, str(TIME_SCALE), str(BATCH), lose,
        ],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


def _statuses(qbo) -> dict[int, str]:
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        rows = conn.execute(
            select(qbo_push_queue.c.sales_invoice_id, qbo_push_queue.c.status).where(
                qbo_push_queue.c.organization_id == qbo.org_id,
                qbo_push_queue.c.action == "create",
            )
        )
        return dict(rows.all())


def test_a_lost_sigterm_stops_the_invoice_push_at_its_next_batch(qbo):
    _, _, ids = _shop(qbo, invoices=INVOICES)
    done = _push_in_a_process(qbo.db, qbo, "lose")
    assert "Exception ignored" in done.stderr, done.stderr  # Dagster's own interrupt was lost
    assert "lost, going on" in done.stdout, done.stdout + done.stderr[-3000:]
    assert "interrupted: the run's process was sent SIGTERM" in done.stdout, (
        done.stdout + done.stderr[-3000:]
    )
    assert "finished:" not in done.stdout
    # the batch answered is recorded; no batch left after it: the rest is queued, not claimed
    in_qbo = [r["DocNumber"] for r in qbo.sim.records(qbo.realm, "Invoice")]
    statuses = _statuses(qbo)
    pushed = sorted(i for i, status in statuses.items() if status == "pushed")
    assert len(in_qbo) == len(pushed) == BATCH, (in_qbo, statuses)
    assert sorted(statuses.values()) == ["pending"] * (INVOICES - BATCH) + ["pushed"] * BATCH
    assert all(qbo.mapping("invoice", i) is not None for i in pushed)

    # the next run (the push sensor's) sends exactly the rest
    with qbo.client() as client:
        again = push_invoices(qbo.engine, qbo.organization, client)
    assert again.pushed == INVOICES - BATCH and again.failed == 0
    in_qbo = [r["DocNumber"] for r in qbo.sim.records(qbo.realm, "Invoice")]
    assert sorted(in_qbo) == sorted(set(in_qbo)) and len(in_qbo) == INVOICES
    assert set(_statuses(qbo).values()) == {"pushed"}
    mapped = {qbo.mapping("invoice", i)["qbo_id"] for i in ids}
    assert mapped == {r["Id"] for r in qbo.sim.records(qbo.realm, "Invoice")}


def test_a_push_that_remembers_and_was_sent_nothing_pushes_everything(qbo):
    _shop(qbo, invoices=INVOICES)
    done = _push_in_a_process(qbo.db, qbo, "quiet")
    assert "finished:" in done.stdout, done.stdout + done.stderr[-3000:]
    assert len(qbo.sim.records(qbo.realm, "Invoice")) == INVOICES
    assert set(_statuses(qbo).values()) == {"pushed"}
