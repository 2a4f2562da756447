"""Benchmark: push N sales invoices to the QBO simulator at QBO's real limits on a compressed clock.

`invoice-pipelines bench qbo-push --n 5000 [--faults]` seeds one organization (customers and items
already linked to the simulated company, N invoices of two lines) in the database
INVOICE_PIPELINES_DB_URL names, as every bench (or `--db-url`; the organization is deleted
afterwards unless `--keep`), pushes them through the production path (queue, validation, batches
of 30, rate limiter, retries) and reports:

- `seconds`: wall time of the push; `simulated_minutes`: the same time on QBO's clock
- `ceiling_fraction`: invoices pushed / invoices the limits allow in that time. Each batch item
  counts toward the 500 requests a minute (the binding limit: 40 batches x 30 would be 1,200), and
  the window slides, so in T simulated seconds at most 500 x (floor(T / 60) + 1) can pass
- `steady_fraction`: the achieved rate / 500 a minute (ignores the first window's burst)
- `duplicates`: invoices in the simulator minus invoices pushed (must be 0)
- `simulated_minutes_by_phase`: before the first batch left, from then to the last batch's answer,
  and after it; `limiter_floor_minutes`: the least time our limiter allows for the invoices pushed
  (QBO's 500 a minute, counted for every process in the database, each window filled by a last
  batch as large as what is left of it: 500 a window, each window 60 s and its margin after the
  answers of the one before), so `simulated_minutes` minus it is what the push lost to set-up,
  latency and its tail (docs/quickbooks.md, "Benchmark")

`--faults` injects one fault per 20 requests (5 %): 429, 500, 503 or a connection dropped after
QBO committed the batch.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from datetime import date
from decimal import Decimal

from cryptography.fernet import Fernet
from sqlalchemy import delete, insert, select

from invoice_pipelines.cli_args import positive_int, positive_number
from invoice_pipelines.db.engine import database_url, make_engine, make_system_engine
from invoice_pipelines.db.migrate import ensure_migrated
from invoice_pipelines.db.tables import (
    customers,
    items,
    organizations,
    qbo_mappings,
    sales_invoice_lines,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines_devtools.bench.limit import current_database, limit_fields, per_second

D = Decimal
CUSTOMERS = 50
PRICES = (D("24.90"), D("39.95"), D("78.50"), D("100.00"), D("15.00"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=positive_int, default=5000, help="sales invoices to push")
    parser.add_argument("--faults", action="store_true", help="inject 5 %% 429/5xx/dropped")
    parser.add_argument(
        "--time-scale",
        type=positive_number,
        default=20.0,
        help="simulated seconds per real second (20: QBO's minute in 3 s; the simulator shares "
        "this process, so much higher scales measure Python's GIL rather than the limits)",
    )
    parser.add_argument("--workers", type=positive_int, default=6, help="batches in flight")
    parser.add_argument(
        "--db-url",
        default=None,
        help="application database (default: INVOICE_PIPELINES_DB_URL, as every bench)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark organization")


def seed(engine, organization_id: int, sim, realm: str, n: int) -> None:
    """Customers and items linked to QBO records, and `n` sales invoices of two lines each."""
    qbo_customers = [
        sim.create_as_user(realm, "Customer", {"DisplayName": f"Bench Kunde {i:03d}"})
        for i in range(CUSTOMERS)
    ]
    qbo_items = [
        sim.create_as_user(
            realm,
            "Item",
            {
                "Name": f"Bench Artikel {i}",
                "Type": "Service",
                "UnitPrice": str(price),
                "IncomeAccountRef": {"value": "1"},
            },
        )
        for i, price in enumerate(PRICES)
    ]
    with tenant_transaction(engine, organization_id, write=True) as conn:
        customer_ids = [
            conn.execute(
                insert(customers)
                .values(
                    organization_id=organization_id,
                    customer_number=f"K{i:05d}",
                    name=record["DisplayName"],
                )
                .returning(customers.c.id)
            ).scalar_one()
            for i, record in enumerate(qbo_customers)
        ]
        item_ids = [
            conn.execute(
                insert(items)
                .values(
                    organization_id=organization_id,
                    sku=f"A{i}",
                    name=record["Name"],
                    unit_price=PRICES[i],
                    vat_rate=D("19.00"),
                )
                .returning(items.c.id)
            ).scalar_one()
            for i, record in enumerate(qbo_items)
        ]
        conn.execute(
            insert(qbo_mappings),
            [
                {
                    "organization_id": organization_id,
                    "entity": entity,
                    "local_id": local_id,
                    "qbo_id": record["Id"],
                    "sync_token": record["SyncToken"],
                }
                for entity, ids, records in (
                    ("customer", customer_ids, qbo_customers),
                    ("item", item_ids, qbo_items),
                )
                for local_id, record in zip(ids, records, strict=True)
            ],
        )
        invoices, lines = [], []
        for number in range(1, n + 1):
            first, second = PRICES[number % 5], PRICES[(number + 2) % 5]
            net = first * 2 + second
            tax = (net * D("0.19")).quantize(D("0.01"))
            invoices.append(
                {
                    "organization_id": organization_id,
                    "invoice_number": f"B-{number:07d}",
                    "sequence_number": number,
                    "customer_id": customer_ids[number % CUSTOMERS],
                    "issue_date": date(2026, 11, 2),
                    "due_date": date(2026, 11, 16),
                    "currency": "EUR",
                    "net_total": net,
                    "tax_total": tax,
                    "gross_total": net + tax,
                    "amount_due": net + tax,
                }
            )
        conn.execute(insert(sales_invoices), invoices)
        ids = dict(
            conn.execute(
                select(sales_invoices.c.sequence_number, sales_invoices.c.id).where(
                    sales_invoices.c.organization_id == organization_id
                )
            ).all()
        )
        for number in range(1, n + 1):
            for line_no, (index, qty) in enumerate(((number % 5, 2), ((number + 2) % 5, 1)), 1):
                lines.append(
                    {
                        "organization_id": organization_id,
                        "sales_invoice_id": ids[number],
                        "line_no": line_no,
                        "item_id": item_ids[index],
                        "description": f"Bench Artikel {index}",
                        "quantity": D(qty),
                        "unit_price": PRICES[index],
                        "net_amount": PRICES[index] * qty,
                        "vat_rate": D("19.00"),
                    }
                )
        conn.execute(insert(sales_invoice_lines), lines)


class FaultInjector(threading.Thread):
    """One fault per `every` requests the client sends, the kinds in turn."""

    KINDS = ("429", "500", "503", "drop_after_commit")

    def __init__(self, sim, realm: str, client, every: int = 20) -> None:
        super().__init__(daemon=True)
        self.sim, self.realm, self.client, self.every = sim, realm, client, every
        self.injected: dict[str, int] = {kind: 0 for kind in self.KINDS}
        self.stop = threading.Event()

    def run(self) -> None:
        next_at = self.every // 2
        while not self.stop.wait(0.005):
            if self.client.stats["requests"] >= next_at:
                kind = self.KINDS[sum(self.injected.values()) % len(self.KINDS)]
                self.sim.inject(self.realm, kind, count=1, path_contains="batch")
                self.injected[kind] += 1
                next_at += self.every


class BatchTimes:
    """When the push sent its first batch and got its last answer (time.perf_counter)."""

    def __init__(self, client) -> None:
        self.started: float | None = None
        self.first_sent: float | None = None
        self.last_answer: float | None = None
        self.count = 0
        self._lock = threading.Lock()
        batch = client.batch

        def timed(items, **kwargs):
            with self._lock:
                if self.first_sent is None:
                    self.first_sent = time.perf_counter()
            answers = batch(items, **kwargs)
            with self._lock:
                self.last_answer = time.perf_counter()
                self.count += 1
            return answers

        client.batch = timed

    def phases(self, seconds: float, scale: float) -> dict:
        if self.started is None or self.first_sent is None or self.last_answer is None:
            return {}

        def minutes(real: float) -> float:
            return round(real * scale / 60, 3)

        return {
            "before_first_batch": minutes(self.first_sent - self.started),
            "batches": minutes(self.last_answer - self.first_sent),
            "after_last_answer": minutes(self.started + seconds - self.last_answer),
        }


def run(args: argparse.Namespace) -> dict:
    from invoice_pipelines.quickbooks.domain.client import MAX_BATCH
    from invoice_pipelines.quickbooks.domain.sync.common import (
        QboSettings,
        open_client,
        realm_lease,
    )
    from invoice_pipelines.quickbooks.domain.sync.invoices import InvoicePusher
    from invoice_pipelines.quickbooks.domain.tokens import save_connection, token_cipher
    from invoice_pipelines_devtools.qbo_simulator.server import QboSimulator

    url = database_url(args.db_url)
    ensure_migrated(make_engine(url, owner=True))
    engine = make_engine(url)
    system = make_system_engine(url)
    key = Fernet.generate_key().decode()
    with QboSimulator(port=0, time_scale=args.time_scale) as sim:
        # DocNumber checks off: only the requestid stands between a retried batch and duplicates
        company = sim.create_company(custom_txn_numbers=False)
        slug = f"bench-qbo-{uuid.uuid4().hex[:8]}"
        with system_transaction(system, write=True) as conn:
            org_id = conn.execute(
                insert(organizations)
                .values(slug=slug, name="Bench QBO")
                .returning(organizations.c.id)
            ).scalar_one()
        save_connection(
            engine,
            org_id,
            system=system,
            realm_id=company.realm_id,
            client_id=company.client_id,
            client_secret=company.client_secret,
            refresh_token=company.refresh_token,
            cipher=token_cipher(key),
            settings={"tax_codes": {"19.00": "TAX"}},
        )
        seed(engine, org_id, sim, company.realm_id, args.n)
        settings = QboSettings(
            base_url=sim.base_url,
            token_url=sim.token_url,
            token_key=key,
            time_scale=args.time_scale,
        )
        client = open_client(engine, org_id, settings)
        client.get("CompanyInfo", "1")  # the token refresh is not part of the measurement
        time.sleep(60 / args.time_scale + 0.1)  # and its request has left the minute window
        injector = FaultInjector(sim, company.realm_id, client) if args.faults else None
        if injector:
            injector.start()
        batches = BatchTimes(client)
        started = time.perf_counter()
        batches.started = started
        # under the organization's sync lease, as the asset runs push
        with realm_lease(engine, org_id, "bench-qbo-push"):
            pusher = InvoicePusher(engine, org_id, client, workers=args.workers)
            counts = pusher.run()
            # what a dead batch left `sending` is settled by the next run, as in production
            if counts.pushed < args.n:
                counts_again = InvoicePusher(engine, org_id, client, workers=args.workers).run()
                counts.pushed += counts_again.pushed
        seconds = time.perf_counter() - started
        if injector:
            injector.stop.set()
        client.close()
        in_qbo = sim.records(company.realm_id, "Invoice")
    doc_numbers = [r.get("DocNumber") for r in in_qbo]
    with tenant_transaction(engine, org_id) as conn:
        database_name = current_database(conn)
        mapped = len(
            conn.execute(
                select(qbo_mappings.c.id).where(
                    qbo_mappings.c.organization_id == org_id, qbo_mappings.c.entity == "invoice"
                )
            ).all()
        )
    if not args.keep:
        with system_transaction(system, write=True) as conn:
            # its invoices, mappings and connection go with it (ON DELETE CASCADE)
            conn.execute(delete(organizations).where(organizations.c.id == org_id))
    dialect = engine.dialect.name
    engine.dispose()
    system.dispose()
    simulated = seconds * args.time_scale
    allowed = 500 * (int(simulated // 60) + 1)
    limits = client.limiter.limits
    # our limiter's own floor: the first window's batches at once, then each window's worth one
    # window (60 s plus its margin, from the answers) after the one before. A window is filled
    # by a last batch as large as what is left of it, unless that is under the least a batch
    # is sent with while more wait
    per_minute = limits.effective(limits.per_minute)
    rest = per_minute % MAX_BATCH
    per_window = per_minute if rest == 0 or rest >= limits.least_batch else per_minute - rest
    windows_after_first = max(0, -(-mapped // per_window) - 1)
    floor_minutes = windows_after_first * (60 + limits.window_margin) / 60
    result = {
        "scenario": "qbo-push",
        "invoices": mapped,
        "requested": args.n,
        "seconds": round(seconds, 2),
        "simulated_minutes": round(simulated / 60, 2),
        "ceiling_fraction": round(mapped / allowed, 3),
        "steady_fraction": round((mapped / (simulated / 60)) / 500, 3) if simulated else None,
        # where the simulated minutes went: before the first batch was sent (lease, queue,
        # first page), from then until the last batch's answer, and after it (recording, voids)
        "simulated_minutes_by_phase": batches.phases(seconds, args.time_scale),
        "batches": batches.count,
        # what bounds the push at our limiter: the invoices of a window (500: 16 x 30 and 20)
        "limiter_invoices_per_window": per_window,
        "limiter_floor_minutes": round(floor_minutes, 3),
        "duplicates": len(in_qbo) - mapped,
        "duplicate_doc_numbers": len(doc_numbers) - len(set(doc_numbers)),
        "failed": counts.failed,
        "requests": client.stats["requests"],
        "retries": client.stats["retries"],
        "throttled": client.stats["throttled"],
        "faults": injector.injected if injector else {},
        "time_scale": args.time_scale,
        "workers": args.workers,
        "database": dialect,
        "db_url": database_url(url, redact=True),
        "database_name": database_name,
        "invoices_per_s": per_second(mapped, seconds),
        "organization": slug,
        "kept": bool(args.keep),
    }
    # the limit is QBO's own throttle, which the simulator enforces: a fixed rate on its clock,
    # not a measurement; in T simulated seconds at most 500 x (floor(T / 60) + 1) items pass
    return limit_fields(
        result,
        "invoices_per_s",
        allowed / seconds if seconds else None,
        LIMIT_METHOD.format(scale=args.time_scale),
        limit_invoices_allowed=allowed,
    )


LIMIT_METHOD = (
    "QBO's throttle as the simulator enforces it, over the push's own measured time: 500 requests "
    "a minute per company (each batch item counts; the binding limit), a sliding window on the "
    "simulator's clock at time scale {scale:g}, so 500 x (floor(T / 60) + 1) invoices in T "
    "simulated seconds; fraction_of_limit is ceiling_fraction"
)
