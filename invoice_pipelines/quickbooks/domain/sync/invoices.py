"""Sales invoices pushed to QBO, one way: the queue, validation, batches, DocNumber links, voids.

`enqueue` adds every sales invoice not queued yet but history (an invoice a migration brought in:
exported and reported, never pushed on its own), and a void for every cancelled invoice that
reached QBO, with one INSERT ... SELECT each. `push_invoices` works the queue:

1. Rows left `sending` by a run that died have an unknown outcome: they are looked up in QBO by
   DocNumber and linked when found, otherwise sent again (with the same requestid). Under the
   organization's lease (`realm_lease`) every such row is a dead run's; without it only rows
   older than SENDING_STALE_AFTER are, and they are claimed first, so two runs never both take
   them.
2. Each pending invoice is checked first (customer and items mapped, tax codes mapped, totals
   consistent, DocNumber fits); a bad one ends `failed` with one sentence, the others go on.
3. Valid invoices go in batches of 30. The rows are claimed (`pending` -> `sending`, a
   conditional UPDATE: a row another run claimed first is left to it) and committed before the
   request; the batch's requestid is derived from its rows' requestids, so a retry after a
   dropped connection replays QBO's answer instead of creating the invoices twice. So two push
   runs of one organization never send one invoice twice even without the lease.
4. A 6140 (DocNumber exists) links our invoice to the existing one when it is the same invoice
   (same customer and total), otherwise it is a conflict for a person, never a second invoice.
5. Voids are claimed the same way before their requests; one left `sending` by a dead run is
   pending again on the next (its requestid replays QBO's answer).

A run may be bounded (issue 56: 100,000 invoices at QBO's 500 requests a minute are hours):
`limit` invoices sent at most, and no batch started after `minutes` (one batch at least). The rows
it does not reach stay `pending`, never claimed, and the next run takes them in queue order; rows
our check refuses do not count, so they never fill a run. Exactly once holds across runs as it
does across batches: every row is claimed and committed before its request, under the same
requestid, and a row a run left `sending` is looked up in QBO by the next before it is sent again.

Every move of a queue row is a transition of the shared outbox (`invoice_pipelines.outbox`);
the queue has no `unknown` status, so step 1 settles what the outbox hands back as dead.

Nothing is ever pulled back: QBO's copy is not a source for our invoices (payments are, see
payments.py). Credit notes are not invoices here: `push_invoices` hands them to credit_memos.py
after the invoices, which pushes each as a CreditMemo through the same queue, and then the
early-payment discounts the payment pull settled to discounts.py (a CreditMemo each, applied).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy import Engine, and_, case, exists, func, select, true, update

from invoice_pipelines import sales_ledger
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.inserts import insert_selected
from invoice_pipelines.db.tables import qbo_mappings, qbo_push_queue
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.outbox import claim, finish, refuse
from invoice_pipelines.quickbooks.domain.client import (
    MAX_BATCH,
    QboClient,
    batch_fault,
    quote,
    request_id,
)
from invoice_pipelines.quickbooks.domain.company import import_pending
from invoice_pipelines.quickbooks.domain.errors import DuplicateDocNumber, QboError, StaleObject
from invoice_pipelines.quickbooks.domain.sync.common import (
    SyncCounts,
    held_lease,
    hold_for_review,
    mappings_by_local_id,
    mark_dead_sending,
    save_mapping,
    save_mappings,
)
from invoice_pipelines.quickbooks.domain.sync.credit_memos import push_credit_memos
from invoice_pipelines.quickbooks.domain.sync.discounts import push_discounts
from invoice_pipelines.quickbooks.domain.sync.push_queue import (
    PUSH_FIELDS,
    PUSHES,
    QUEUE_COLUMNS,
    SENDING_STALE_AFTER,
    Candidate,
    build_invoice,
    enqueueable,
    same_invoice,
)
from invoice_pipelines.resources.workers import stop_signal
from invoice_pipelines.resources.workers.thread_pools import stopping_pool

# the queue's actions of an invoice; a credit note has its own (credit_memos.py)
INVOICE_ACTIONS = ("create", "void")
# queue rows read (with their lines) and checked at a time: the first page is the first window's
# invoices (QBO's 500 a minute), the pages after it are read while batches are out
FIRST_PAGE = 500
PAGE = 1500
# threads recording the batches' answers (run): two, so a window's burst of answers does not
# queue up behind one thread at the end of a push
RECORDERS = 2


def enqueue(engine: Engine, organization_id: int, named: Sequence[int] | None = None) -> dict:
    """Queue new invoices (create) and cancelled pushed ones (void): two set-based inserts.

    `named`: only these invoices (ids), history among them: a person asks for an invoice a
    migration brought in to be pushed (`qbo-sync --what invoices --invoice ID`)."""
    queued = qbo_push_queue.alias("queued")
    with tenant_transaction(engine, organization_id, write=True) as conn:

        def insert(rows) -> int:
            return insert_selected(conn, qbo_push_queue, PUSHES.key, QUEUE_COLUMNS, rows)

        ledger = sales_ledger.field
        creates = insert(
            enqueueable("create").where(
                ledger("organization_id") == organization_id,
                ledger("status") != "cancelled",
                # a credit note is a QBO CreditMemo (credit_memos.py), not an Invoice: pushed
                # as an invoice it would charge the customer a second time
                ledger("corrects_invoice_id").is_(None),
                # a migration's history is not pushed as if it were new, unless named
                sales_ledger.not_history() if named is None else ledger("id").in_(named),
                # OFFSET 0 keeps it a probe of the queue's unique index per invoice: PostgreSQL
                # otherwise makes it an anti-join, which on a queue it has no statistics of
                # (a new database: empty when planned, 5,000 rows when done) and under the
                # tenant policy it planned as a scan of every `create` key per invoice, the
                # ones this statement inserts included: 1.1-2.3 s for 5,000 invoices instead
                # of 0.08 (issue 59). With statistics both take 0.01-0.02 s when all are queued
                ~exists(
                    select(queued.c.id)
                    .where(
                        queued.c.sales_invoice_id == ledger("id"),
                        queued.c.action == "create",
                    )
                    .offset(0)
                ),
            ),
        )
        voids = insert(
            enqueueable("void").where(
                ledger("organization_id") == organization_id,
                ledger("status") == "cancelled",
                true() if named is None else ledger("id").in_(named),
                exists().where(
                    queued.c.sales_invoice_id == ledger("id"),
                    queued.c.action == "create",
                    queued.c.status == "pushed",
                ),
                ~exists().where(
                    queued.c.sales_invoice_id == ledger("id"),
                    queued.c.action == "void",
                ),
            ),
        )
    return {"queued_creates": creates, "queued_voids": voids}


def _load_pending(engine: Engine, organization_id: int, wanted, limit: int | None = None):
    """The create rows `wanted` selects, with their invoices (PUSH_FIELDS) and lines from the
    sales ledger, and the mappings: one query for the rows, one per 5,000 invoices for the lines,
    one per mapped entity."""
    q = qbo_push_queue.c
    with tenant_transaction(engine, organization_id) as conn:
        query = (
            select(q.id.label("queue_id"), q.request_id, *sales_ledger.fields(*PUSH_FIELDS))
            .select_from(sales_ledger.joined_to(qbo_push_queue, q.sales_invoice_id, *PUSH_FIELDS))
            .where(q.organization_id == organization_id, q.action == "create", wanted)
            .order_by(q.id)
        )
        if limit:
            query = query.limit(limit)
        rows = [dict(r) for r in conn.execute(query).mappings()]
        lines = sales_ledger.read_lines(conn, [r["id"] for r in rows])
        customers = mappings_by_local_id(conn, organization_id, "customer")
        items = mappings_by_local_id(conn, organization_id, "item")
    candidates = [
        Candidate(r["queue_id"], r["id"], r["request_id"], r, lines.get(r["id"], [])) for r in rows
    ]
    return candidates, customers, items


class _Ready:
    """The checked invoices waiting for a batch, in queue order, each with the customers'
    mappings of its page: the page reader adds them, a worker takes as many as a batch may hold
    and gives back, to the front, those the limiter had no room for yet."""

    def __init__(self) -> None:
        self._items: deque[tuple[Candidate, dict, dict]] = deque()
        self._closed = False
        self._changed = threading.Condition()

    def add(self, page: list[tuple[Candidate, dict]], customers: dict) -> None:
        with self._changed:
            self._items.extend((candidate, body, customers) for candidate, body in page)
            self._changed.notify_all()

    def close(self) -> None:
        """No more will come: a worker finding none left ends."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def take(self, most: int) -> list[tuple[Candidate, dict, dict]]:
        """Up to `most`, waiting while none are there and more may come; [] at the end."""
        with self._changed:
            self._changed.wait_for(lambda: self._items or self._closed)
            return [self._items.popleft() for _ in range(min(most, len(self._items)))]

    def give_back(self, items: list[tuple[Candidate, dict, dict]]) -> None:
        with self._changed:
            self._items.extendleft(reversed(items))
            self._changed.notify_all()


class InvoicePusher:
    """Pushes one organization's queue through one client."""

    def __init__(
        self,
        engine: Engine,
        organization_id: int,
        client: QboClient,
        *,
        settings: dict | None = None,
        workers: int = 6,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.organization_id = organization_id
        self.client = client
        self.settings = settings if settings is not None else client.connection_settings
        self.workers = workers
        self.progress = progress
        self.counts = SyncCounts(extra={"voided": 0})
        self._lock = threading.Lock()
        self.lease = None  # the organization's lease when this run holds it (set by run)
        self.deadline: float | None = None  # no batch starts after it (time.monotonic)
        self._batches_begun = 0
        # the thread that records the batches' answers while `run` pushes, and its tasks
        self._recorder: ThreadPoolExecutor | None = None
        self._recorded: list[Future] = []
        self._stop_sending = threading.Event()

    # -- bookkeeping --------------------------------------------------------------------------

    def _link(self, conn, candidate: Candidate, record: dict, *, linked: bool) -> None:
        invoice = candidate.invoice
        save_mapping(
            conn,
            self.organization_id,
            "invoice",
            candidate.sales_invoice_id,
            record,
            details={"doc_number": invoice["invoice_number"], "linked": linked},
        )
        finish(
            conn,
            PUSHES,
            qbo_push_queue.c.id == candidate.queue_id,
            "pushed",
            qbo_id=str(record["Id"]),
            error_code=None,
        )

    def _link_created(self, conn, created: list[tuple[Candidate, dict]]) -> None:
        """`_link` (not linked: created by this run) for a batch's created invoices at once: their
        mappings, and their rows `sending` -> `pushed` with each one's QBO id."""
        if not created:
            return
        save_mappings(
            conn,
            self.organization_id,
            "invoice",
            [
                (
                    candidate.sales_invoice_id,
                    record,
                    {"doc_number": candidate.invoice["invoice_number"], "linked": False},
                )
                for candidate, record in created
            ],
        )
        qbo_ids = {candidate.queue_id: str(record["Id"]) for candidate, record in created}
        finish(
            conn,
            PUSHES,
            qbo_push_queue.c.id.in_(list(qbo_ids)),
            "pushed",
            qbo_id=case(qbo_ids, value=qbo_push_queue.c.id),
            error_code=None,
        )

    # -- the work -----------------------------------------------------------------------------

    def run(self, limit: int | None = None, minutes: float | None = None) -> SyncCounts:
        """Push the queue: all of it, or `limit` invoices at most and no batch started after
        `minutes` (module doc)."""
        self.lease = held_lease(self.organization_id)
        if minutes is not None:
            self.deadline = time.monotonic() + minutes * 60
        enqueue(self.engine, self.organization_id)
        self.reconcile_unknown()
        # the batches of a page go out while the next page is read and checked: the first batch
        # leaves after one page, not after the whole queue (5,000 invoices: 0.6 s, which on the
        # bench's clock is 12 s of QBO's minute)
        # a batch's answer is recorded by threads of their own, so a worker goes on to its next
        # batch at once: the first window's batches leave within fewer workers' turns, and every
        # later window repeats that spacing. Interrupted, it records every answer it was handed
        # (an executor waits for its queue), as the workers finish the batches in flight
        workers = max(1, self.workers)
        ready = _Ready()
        with ThreadPoolExecutor(RECORDERS, thread_name_prefix="qbo-record") as recorder:
            self._recorder, self._recorded = recorder, []
            try:
                # interrupted (SIGTERM), each worker ends after the batch in hand; the invoices
                # not yet in a batch stay pending, unclaimed
                with stopping_pool(workers, stop=self._stop_sending) as pool:
                    senders = [pool.submit(self._send_batches, ready) for _ in range(workers)]
                    try:
                        for page, customers in self._ready(limit):
                            stop_signal.raise_if_received()
                            ready.add(page, customers)
                    finally:
                        ready.close()
                    for future in senders:
                        future.result()
                    # a SIGTERM Dagster's handler lost (stop_signal.py): the workers stopped
                    # before their next batch (`_send_batches`); the run ends as Dagster's
                    # interrupt
                    stop_signal.raise_if_received()
            finally:
                self._recorder = None
        for future in self._recorded:
            future.result()
        self.push_voids()
        return self.counts

    def _send_batches(self, ready: _Ready) -> None:
        """A worker: batches of the ready invoices, each as large as the realm's limits let it be
        now (up to 30, at least `least_batch` while more wait), until none are left. So a window
        is filled exactly: 16 batches of 30 and one of 20 make QBO's 500."""
        limiter = self.client.limiter
        least = limiter.limits.least_batch
        while True:
            # a SIGTERM Dagster's handler lost (stop_signal.py): no batch starts, the run raises.
            # Asked before `take`: its read of a pipe lets another worker run, which between a
            # `take` and `_out_of_time` would count its batch as the run's first instead
            if stop_signal.received():
                return
            taken = ready.take(MAX_BATCH)
            if not taken or self._stopped() or self._out_of_time():
                return  # the rows stay pending, unclaimed, for the next run
            ticket = limiter.acquire_up_to(len(taken), least=min(least, len(taken)), batch=True)
            if ticket.cost < len(taken):
                ready.give_back(taken[ticket.cost :])
                taken = taken[: ticket.cost]
            if self._stopped() or stop_signal.received():  # (the limiter may have waited)
                limiter.cancel(ticket)
                return
            self._push_chunk([(c, body) for c, body, _ in taken], taken[-1][2], ticket)

    def _stopped(self) -> bool:
        """Another run has the organization now, recording an answer failed or the run was
        interrupted: no batch is started."""
        lost = self.lease is not None and self.lease.lost.is_set()
        return lost or self._stop_sending.is_set()

    def _ready(self, limit: int | None) -> Iterator[tuple[list[tuple[Candidate, dict]], dict]]:
        """The claimable create rows in queue order with their QBO bodies, page by page (each
        with the customers' mappings), `limit` in all at most. Rows our check refuses are marked
        so on the way and not counted: pages are read until `limit` pass or none are left."""
        wanted_total = limit
        after = 0
        page_size = FIRST_PAGE
        while wanted_total is None or wanted_total > 0:
            size = page_size if wanted_total is None else min(page_size, wanted_total)
            wanted = and_(PUSHES.claimable(), qbo_push_queue.c.id > after)
            candidates, customers, items = _load_pending(
                self.engine, self.organization_id, wanted, size
            )
            ready: list[tuple[Candidate, dict]] = []
            for candidate in candidates:
                body, problem = build_invoice(candidate, customers, items, self.settings)
                if problem:
                    self._refuse(candidate, problem)
                else:
                    ready.append((candidate, body))
            if ready:
                yield ready, customers
            if wanted_total is not None:
                wanted_total -= len(ready)
            if len(candidates) < size:
                return
            after = candidates[-1].queue_id
            page_size = PAGE

    def _refuse(self, candidate: Candidate, problem: str) -> None:
        self.counts.failed += 1
        self.counts.errors.append(f"{candidate.invoice['invoice_number']}: {problem}")
        cancelled = candidate.invoice["status"] == "cancelled"
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            # not a row another run has taken meanwhile (refuse is conditional)
            refuse(
                conn,
                PUSHES,
                qbo_push_queue.c.id == candidate.queue_id,
                problem,
                # a cancelled invoice stays out for good; other checks are made again
                error_code="cancelled" if cancelled else "validation",
                attempts=qbo_push_queue.c.attempts + 1,
            )

    def _out_of_time(self) -> bool:
        """Past the run's deadline, once it has begun a batch (a bounded run always pushes one);
        else counts the batch as begun."""
        with self._lock:
            if self.deadline is not None and self._batches_begun:
                if time.monotonic() >= self.deadline:
                    return True
            self._batches_begun += 1
            return False

    def _push_chunk(self, chunk: list[tuple[Candidate, dict]], customers: dict, ticket) -> None:
        """Claim the chunk's rows and send those claimed as one batch on `ticket` (room for them
        the limiter counted already; given back when nothing is sent)."""
        ids = [c.queue_id for c, _ in chunk]
        try:
            with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
                # the claim: only rows still pending become ours (PostgreSQL re-checks the
                # condition after waiting for another run's claim of the same row; SQLite's write
                # lock serializes the claims)
                claimed = set(
                    claim(
                        conn,
                        PUSHES,
                        qbo_push_queue.c.id.in_(ids),
                        attempts=qbo_push_queue.c.attempts + 1,
                    )
                )
        except BaseException:
            self.client.limiter.cancel(ticket)
            raise
        if len(claimed) < len(chunk):
            chunk = [(c, body) for c, body in chunk if c.queue_id in claimed]
            ids = [c.queue_id for c, _ in chunk]
            if not chunk:
                self.client.limiter.cancel(ticket)
                return
        batch_id = request_id("batch", *sorted(c.request_id for c, _ in chunk))
        operations = [
            {"bId": str(c.queue_id), "operation": "create", "Invoice": body} for c, body in chunk
        ]
        try:
            # a chunk another run claimed part of goes on the ticket of the whole: it counts a
            # few items more than it carries, which only holds back more than needed
            answers = self.client.batch(operations, requestid=batch_id, ticket=ticket)
        except QboError as exc:
            with self._lock:
                self.counts.errors.append(f"batch of {len(chunk)}: {exc}")
            if exc.temporary:
                # unknown outcome (or QBO kept failing): the rows stay `sending`; the next run
                # looks them up by DocNumber before sending them again
                return
            # QBO refused the whole request: nothing was created
            with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
                finish(
                    conn,
                    PUSHES,
                    qbo_push_queue.c.id.in_(ids),
                    "failed",
                    error=str(exc),
                    error_code=(exc.code or "error")[:16],
                )
            with self._lock:
                self.counts.failed += len(chunk)
            return
        if self._recorder is not None:
            with self._lock:
                self._recorded.append(
                    self._recorder.submit(self._recorded_or_stop, chunk, answers, customers)
                )
        else:
            self._record(chunk, answers, customers)

    def _recorded_or_stop(self, *args) -> None:
        """`_record` in the recorder's thread; when it fails, no worker starts another batch (the
        rows it left `sending` are looked up in QBO by the next run) and `run` raises it."""
        try:
            self._record(*args)
        except BaseException:
            self._stop_sending.set()
            raise

    def _record(
        self, chunk: list[tuple[Candidate, dict]], answers: dict[str, dict], customers: dict
    ) -> None:
        """A batch's answer: the created linked, the refused failed, a 6140 resolved."""
        conflicts, created = [], []
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            for candidate, _body in chunk:
                answer = answers.get(str(candidate.queue_id), {})
                fault = batch_fault(answer) if answer else QboError("no answer for this item")
                if fault is None and "Invoice" in answer:
                    created.append((candidate, answer["Invoice"]))
                elif isinstance(fault, DuplicateDocNumber):
                    conflicts.append(candidate)
                else:
                    finish(
                        conn,
                        PUSHES,
                        qbo_push_queue.c.id == candidate.queue_id,
                        "failed",
                        error=str(fault),
                        error_code=(fault.code or "error")[:16],
                    )
                    with self._lock:
                        self.counts.failed += 1
                        self.counts.errors.append(f"{candidate.invoice['invoice_number']}: {fault}")
            # the created ones in three statements, not three per invoice: the tail of a push is
            # its last batch's bookkeeping, and a worker's turn is its batch's answer plus this
            self._link_created(conn, created)
        with self._lock:
            self.counts.pushed += len(created)
        for candidate in conflicts:
            self._resolve_doc_number(candidate, customers)
        if self.progress:
            self.progress(len(chunk))

    def _find_by_doc_numbers(self, numbers: list[str]) -> dict[str, list[dict]]:
        found: dict[str, list[dict]] = {}
        for start in range(0, len(numbers), 100):
            chunk = numbers[start : start + 100]
            where = f"DocNumber IN ({', '.join(quote(n) for n in chunk)})"
            for record in self.client.query_all("Invoice", where, order_by=""):
                found.setdefault(str(record.get("DocNumber")), []).append(record)
        return found

    def _resolve_doc_number(self, candidate: Candidate, customers: dict) -> None:
        number = candidate.invoice["invoice_number"]
        existing = self._find_by_doc_numbers([number]).get(number, [])
        customer_qbo_id = customers[candidate.invoice["customer_id"]]["qbo_id"]
        match = next(
            (r for r in existing if same_invoice(r, candidate.invoice, customer_qbo_id)), None
        )
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            if match is not None:
                self._link(conn, candidate, match, linked=True)
                with self._lock:
                    self.counts.linked += 1
                return
            hold_for_review(
                conn,
                self.organization_id,
                PUSHES,
                qbo_push_queue.c.id == candidate.queue_id,
                "invoice",
                local_id=candidate.sales_invoice_id,
                qbo_id=str(existing[0]["Id"]) if existing else None,
                reason=f"DocNumber {number} already exists in QuickBooks for another customer "
                "or amount",
                local_version={
                    "invoice_number": number,
                    "customer_id": candidate.invoice["customer_id"],
                    "gross_total": candidate.invoice["gross_total"],
                },
                qbo_version=existing[0] if existing else None,
                error=f"DocNumber {number} exists in QuickBooks as another invoice",
                error_code="6140",
            )
        with self._lock:
            self.counts.conflicts += 1

    def reconcile_unknown(self) -> None:
        """Rows left `sending` by a dead run: a create is linked when QBO has it (by DocNumber),
        else pending again; a void is pending again (its requestid replays QBO's answer)."""
        # under the lease every such row is a dead run's; without it only rows older than any
        # batch can take (mark_dead_sending)
        dead = mark_dead_sending(
            self.engine,
            PUSHES,
            self.organization_id,
            self.lease,
            SENDING_STALE_AFTER,
            returning=("action",),
            # a credit note's rows (credit, apply) are settled by credit_memos.py
            where=qbo_push_queue.c.action.in_(INVOICE_ACTIONS),
        )
        if not dead:
            return
        voids = [queue_id for queue_id, action in dead if action == "void"]
        if voids:
            with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
                finish(conn, PUSHES, qbo_push_queue.c.id.in_(voids), "pending", error_code=None)
        creates = [queue_id for queue_id, action in dead if action == "create"]
        unknown, customers, _ = _load_pending(
            self.engine,
            self.organization_id,
            and_(qbo_push_queue.c.id.in_(creates), qbo_push_queue.c.status == "sending"),
        )
        if not unknown:
            return
        found = self._find_by_doc_numbers([c.invoice["invoice_number"] for c in unknown])
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            for candidate in unknown:
                records = found.get(candidate.invoice["invoice_number"], [])
                customer = customers.get(candidate.invoice["customer_id"])
                match = next(
                    (
                        r
                        for r in records
                        if customer and same_invoice(r, candidate.invoice, customer["qbo_id"])
                    ),
                    None,
                )
                if match is not None:
                    self._link(conn, candidate, match, linked=False)
                    self.counts.pushed += 1
                else:  # not in QBO: sent again by this run, with the same requestid
                    where = qbo_push_queue.c.id == candidate.queue_id
                    finish(conn, PUSHES, where, "pending", error_code=None)

    def push_voids(self) -> None:
        with tenant_transaction(self.engine, self.organization_id) as conn:
            rows = [
                dict(r)
                for r in conn.execute(
                    select(qbo_push_queue, qbo_mappings.c.qbo_id.label("mapped_id"))
                    .join(
                        qbo_mappings,
                        and_(
                            qbo_mappings.c.organization_id == qbo_push_queue.c.organization_id,
                            qbo_mappings.c.entity == "invoice",
                            qbo_mappings.c.local_id == qbo_push_queue.c.sales_invoice_id,
                        ),
                    )
                    .where(
                        qbo_push_queue.c.organization_id == self.organization_id,
                        qbo_push_queue.c.action == "void",
                        qbo_push_queue.c.status == "pending",
                    )
                ).mappings()
            ]
        if not rows:
            return
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            # committed before the requests: a void another run claimed first is left to it
            claimed = set(claim(conn, PUSHES, qbo_push_queue.c.id.in_([r["id"] for r in rows])))
        for row in (r for r in rows if r["id"] in claimed):
            try:
                current = self.client.get("Invoice", row["mapped_id"])
                try:
                    voided = self.client.void_invoice(
                        row["mapped_id"], current["SyncToken"], requestid=row["request_id"]
                    )
                except StaleObject:
                    current = self.client.get("Invoice", row["mapped_id"])
                    voided = self.client.void_invoice(
                        row["mapped_id"], current["SyncToken"], requestid=row["request_id"] + "-2"
                    )
            except QboError as exc:
                self.counts.failed += 1
                self.counts.errors.append(f"void of invoice {row['sales_invoice_id']}: {exc}")
                with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
                    finish(
                        conn,
                        PUSHES,
                        qbo_push_queue.c.id == row["id"],
                        "failed",
                        error=str(exc),
                        error_code=(exc.code or "error")[:16],
                        attempts=qbo_push_queue.c.attempts + 1,
                    )
                continue
            with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
                conn.execute(
                    update(qbo_mappings)
                    .where(
                        qbo_mappings.c.organization_id == self.organization_id,
                        qbo_mappings.c.entity == "invoice",
                        qbo_mappings.c.local_id == row["sales_invoice_id"],
                    )
                    .values(
                        qbo_state="voided",
                        sync_token=str(voided.get("SyncToken", "")),
                        updated_at=datetime.now(UTC),
                    )
                )
                finish(
                    conn,
                    PUSHES,
                    qbo_push_queue.c.id == row["id"],
                    "pushed",
                    qbo_id=row["mapped_id"],
                )
            self.counts.extra["voided"] += 1


# what the push counts besides the invoices it pushed (`pushed`: invoices created in QBO, or found
# there after a dead run created them), each its own figure: invoices voided, credit notes pushed
# as CreditMemos, early-payment discounts pushed as applied CreditMemos
OTHER_COUNTS = ("voided", "credit_memos_pushed", "discounts_pushed")


def push_invoices(
    engine: Engine, organization: Organization, client: QboClient, **kwargs
) -> SyncCounts:
    """The invoice queue, then the credit notes (after the invoices they correct, so a credit
    note of an invoice pushed in this run follows it in the same run), then the early-payment
    discounts the payment pull settled (after the credit notes, which they are computed after).

    `pushed` counts invoices; voids, credit memos and discounts pushed are counted apart
    (OTHER_COUNTS, in `extra`); what was linked, in conflict, held or failed is counted over all
    of them."""
    organization_id = organization.id
    limit, minutes = kwargs.pop("limit", None), kwargs.pop("minutes", None)
    waits = import_pending(engine, organization_id)
    if waits is not None:
        # the company was switched and the new one is not imported: the queue stays as it is
        # (new invoices are queued), nothing is sent; the check company_switch says why
        enqueue(engine, organization_id)
        counts = SyncCounts(errors=[waits])
        counts.extra = {name: 0 for name in OTHER_COUNTS}
        return counts
    pusher = InvoicePusher(engine, organization_id, client, **kwargs)
    counts = pusher.run(limit=limit, minutes=minutes)
    settings = kwargs.get("settings")
    for pushed, push in (
        ("credit_memos_pushed", push_credit_memos),
        ("discounts_pushed", push_discounts),
    ):
        more = push(engine, organization_id, client, settings=settings)
        counts.extra[pushed] = more.pushed
        for name in ("linked", "conflicts", "held", "failed"):
            setattr(counts, name, getattr(counts, name) + getattr(more, name))
        counts.errors.extend(more.errors)
    counts.extra = {name: counts.extra.get(name, 0) for name in OTHER_COUNTS}
    return counts


def queue_counts(engine: Engine, organization_id: int) -> dict[str, int]:
    with tenant_transaction(engine, organization_id) as conn:
        rows = conn.execute(
            select(qbo_push_queue.c.status, func.count())
            .where(qbo_push_queue.c.organization_id == organization_id)
            .group_by(qbo_push_queue.c.status)
        )
        return {status: count for status, count in rows}
