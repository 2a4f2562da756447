"""Each supplier invoice is one bill with its files once, whatever QuickBooks or our process does
in between: 429s, 5xx, timeouts and answers lost after QBO committed (the client retries with the
same requestid); a run that gives up with rows `sending`; a process killed while QBO holds its
request (the next run asks QBO what was done before it sends anything); two runs at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from invoice_pipelines.db.tables import qbo_connections
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.quickbooks.domain.sync.common import realm_lease
from invoice_pipelines_devtools.demo.invoices import LOGISTICS_SUPPLIER, SOFTWARE_SUPPLIER
from invoice_pipelines_tests.quickbooks.conftest import TOKEN_KEY, connect
from invoice_pipelines_tests.quickbooks.payables_books import Books, supplier_invoice, xml_of

SUPPLIERS = [None, LOGISTICS_SUPPLIER, SOFTWARE_SUPPLIER]


@pytest.fixture
def books(db, simulator, tmp_path) -> Books:
    books = Books(connect(db, simulator, currency="EUR", country="DE"), tmp_path / "uploads")
    books.allow()
    return books


def _receive(books: Books, n: int) -> list[dict]:
    files = {}
    for i in range(n):
        seller = SUPPLIERS[i % len(SUPPLIERS)]
        invoice = supplier_invoice(f"RE-F-{i}", **({"seller": seller} if seller else {}))
        files[f"f{i}.xml"] = xml_of(invoice)
    return list(books.receive(files).values())


def _exactly_once(books: Books, docs: list[dict]) -> None:
    """One bill per document, two files per bill (the XML and its readable PDF), each document
    EXPORTED, one vendor per supplier."""
    bills = books.qbo_records("Bill")
    numbers = sorted(b["DocNumber"] for b in bills)
    assert numbers == sorted(d["invoice_number"] for d in docs)
    per_bill: dict[str, list[str]] = {}
    for attached in books.qbo_records("Attachable"):
        bill_id = attached["AttachableRef"][0]["EntityRef"]["value"]
        per_bill.setdefault(bill_id, []).append(attached["FileName"].rsplit(".", 1)[1])
    assert {b["Id"]: sorted(per_bill.get(b["Id"], [])) for b in bills} == {
        b["Id"]: ["pdf", "xml"] for b in bills
    }
    names = [v["DisplayName"] for v in books.qbo_records("Vendor")]
    assert len(names) == len(set(names)) == len({d["seller_name"] for d in docs})
    assert {books.document(d["id"])["status"] for d in docs} == {"EXPORTED"}
    assert {r["status"] for r in books.queue()} == {"pushed"}


def test_429_5xx_timeouts_and_lost_answers_never_double_a_bill_or_a_file(books):
    docs = _receive(books, 3)
    sim, realm = books.qbo.sim, books.qbo.realm
    for path in ("/vendor?", "/bill?", "/upload?", "/term?"):
        sim.inject(realm, "429", path_contains=path)
        sim.inject(realm, "503", path_contains=path)
        sim.inject(realm, "drop_after_commit", path_contains=path)
    sim.inject(realm, "500", count=2, path_contains="/bill?")
    sim.inject(realm, "timeout", path_contains="/upload?", seconds=1)
    sim.inject(realm, "drop_after_commit", count=2, path_contains="/upload?")
    counts = books.push(workers=2)
    assert counts.failed == 0, counts.errors
    _exactly_once(books, docs)
    replays = [r for r in sim.requests(realm) if r.get("injected") == "drop_after_commit"]
    assert len(replays) >= 5  # the lost answers were there to be lost


def test_a_run_that_gives_up_leaves_rows_sending_the_next_finds_them_in_qbo(books):
    docs = _receive(books, 2)
    sim, realm = books.qbo.sim, books.qbo.realm
    # every answer to the bills' creation is lost, more often than the client retries: the bills
    # are in QBO, but this run never learns it
    sim.inject(realm, "drop_after_commit", count=20, path_contains="/bill?")
    first = books.push(workers=1)
    # the two vendors were created; neither bill is known to have been
    assert (first.of("vendors").pushed, first.pushed, first.failed) == (2, 0, 2)
    assert {r["status"] for r in books.queue()} == {"sending"}
    assert len(books.qbo_records("Bill")) == 2
    sim.clear_faults(realm)
    before = len(sim.requests(realm))
    # the next run holds the organization's lease, as every production run does: rows left
    # `sending` are a dead run's, looked up in QBO before anything is sent
    with realm_lease(books.qbo.engine, books.qbo.org_id, "next-run"):
        second = books.push()
    assert second.linked == 2 and second.failed == 0
    sent = [r for r in sim.requests(realm)[before:] if r["path"].endswith("/bill")]
    assert [r["method"] for r in sent if r["method"] == "POST"] == []
    _exactly_once(books, docs)


def test_two_runs_at_once_push_each_bill_once(books):
    docs = _receive(books, 6)
    start = threading.Barrier(2)
    results, errors = [], []

    def push() -> None:
        try:
            start.wait()
            results.append(books.push(workers=2))
        except Exception as exc:  # reported below: a thread's exception is otherwise lost
            errors.append(exc)

    runs = [threading.Thread(target=push) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert errors == [] and sum(r.failed for r in results) == 0
    _exactly_once(books, docs)


def _cli_env(books: Books) -> dict:
    sim = books.qbo.sim
    return {
        **os.environ,
        "INVOICE_PIPELINES_DB_URL": books.qbo.db.url,
        "INVOICE_PIPELINES_QBO_BASE_URL": sim.base_url,
        "INVOICE_PIPELINES_QBO_TOKEN_URL": sim.token_url,
        "INVOICE_PIPELINES_QBO_TOKEN_KEY": TOKEN_KEY,
        "INVOICE_PIPELINES_STORAGE": "local",
        "INVOICE_PIPELINES_UPLOAD_DIR": str(books.root),
    }


def _killed_while_held(books: Books, path: str) -> None:
    """`qbo-sync --what bills` in a process of its own, SIGKILLed while the simulator holds its
    request on `path` (answered after the kill: QBO did it, the process never knew)."""
    sim, realm = books.qbo.sim, books.qbo.realm
    sim.inject(realm, "delay", path_contains=path, seconds=240)  # 4 s on the 60x clock
    command = [sys.executable, "-m", "invoice_pipelines.cli", "qbo-sync", "--org"]
    command += [books.qbo.org["slug"], "--what", "bills"]
    process = subprocess.Popen(
        command, env=_cli_env(books), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if not sim.sim.faults.get(realm):
            break  # the fault is taken: the simulator holds the request now
        time.sleep(0.02)
    assert process.poll() is None, process.communicate()
    os.kill(process.pid, signal.SIGKILL)
    process.wait(30)
    assert process.returncode == -signal.SIGKILL
    # QBO answers the held request all the same; then the dead run's lease runs out (60 minutes:
    # moved back here instead of waited for)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(e.get("injected") == "delay" for e in sim.requests(realm)):
            break
        time.sleep(0.05)
    with tenant_transaction(books.qbo.engine, books.qbo.org_id, write=True) as conn:
        conn.execute(
            update(qbo_connections)
            .where(qbo_connections.c.organization_id == books.qbo.org_id)
            .values(sync_lease_until=datetime.now(UTC) - timedelta(seconds=1))
        )


def _resume(books: Books) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "invoice_pipelines.cli", "qbo-sync", "--org"]
        + [books.qbo.org["slug"], "--what", "bills"],
        env=_cli_env(books),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])["bills"]


@pytest.mark.parametrize("held", ["/bill?", "/upload?"])
def test_a_push_killed_while_qbo_holds_its_request_resumes_without_doubles(books, held):
    docs = _receive(books, 1)
    _killed_while_held(books, held)
    assert {r["status"] for r in books.queue()} == {"sending"}
    resumed = _resume(books)
    assert resumed["failed"] == 0, resumed["errors"]
    _exactly_once(books, docs)
