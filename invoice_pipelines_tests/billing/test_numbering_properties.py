"""Property: any mix of chunk sizes, failed chunks and concurrent jobs leaves gapless numbers, once per order."""

import random
import threading
from contextlib import ExitStack

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from invoice_pipelines.billing.domain.chunk_transaction import SEQUENCE_NAME
from invoice_pipelines.billing.domain.invoicing import process_batch_job
from invoice_pipelines.billing.domain.invoicing_kinds import enqueue_sales_orders
from invoice_pipelines.db.tables import invoice_number_sequences
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.queue.domain.jobs import get_batch_job
from invoice_pipelines_tests.billing.shop import hook_chunk_writes, make_shop

ORDERS = 10

job_specs = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=4),  # chunk size
        st.integers(min_value=0, max_value=2**16),  # which orders the job asks for
        st.one_of(st.none(), st.integers(min_value=1, max_value=3)),  # chunk that fails, if any
    ),
    min_size=1,
    max_size=3,
)


class InjectedFailure(RuntimeError):
    pass


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(specs=job_specs, concurrent=st.booleans(), workers=st.sampled_from([1, 2, 3]))
def test_numbers_stay_gapless_and_orders_are_invoiced_once(db, specs, concurrent, workers):
    shop = make_shop(db)
    orders = shop.add_orders(ORDERS - 2) + [
        shop.add_order([("TOOL", 1)], status="draft"),  # never eligible
        shop.add_order([]),
    ]
    jobs = []
    for chunk_size, seed, fail_at in specs:
        wanted = random.Random(seed).sample(orders, k=random.Random(seed + 1).randint(1, ORDERS))
        jobs.append(
            (
                enqueue_sales_orders(
                    shop.engine, find_organization(shop.engine, shop.org_id), order_ids=wanted
                ),
                chunk_size,
                fail_at,
                wanted,
            )
        )

    # the n-th chunk of a job (by position) fails once, after its writes
    failing = {
        job_id: (fail_at - 1) * chunk_size for job_id, chunk_size, fail_at, _ in jobs if fail_at
    }
    failed: set[int] = set()
    lock = threading.Lock()

    def sometimes_fails(ctx):
        with lock:
            if failing.get(ctx.job_id) == ctx.after_position and ctx.job_id not in failed:
                failed.add(ctx.job_id)
                raise InjectedFailure(f"chunk after {ctx.after_position} of job {ctx.job_id}")

    def run(job_id, chunk_size):
        try:
            process_batch_job(
                shop.engine, job_id, system=shop.engine, chunk_size=chunk_size, workers=workers
            )
        except InjectedFailure:
            pass  # the job is failed, its chunk rolled back; re-run below

    with ExitStack() as stack:
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        patch.setattr(*hook_chunk_writes(db.kind, sometimes_fails))
        if concurrent:
            threads = [
                threading.Thread(target=run, args=(job_id, size)) for job_id, size, _, _ in jobs
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
        else:
            for job_id, size, _, _ in jobs:
                run(job_id, size)
    for job_id, size, _, _ in jobs:
        # a re-run (no failures now) continues every failed job where its last commit ended
        assert process_batch_job(
            shop.engine, job_id, system=shop.engine, chunk_size=size, workers=workers
        ).status in (
            "completed",
            "completed_with_errors",
        )

    invoices = shop.invoices()
    numbers = [i["sequence_number"] for i in invoices]
    assert numbers == list(range(1, len(numbers) + 1))
    with tenant_transaction(shop.engine, shop.org_id) as conn:
        last_value = conn.execute(
            select(invoice_number_sequences.c.last_value).where(
                invoice_number_sequences.c.organization_id == shop.org_id,
                invoice_number_sequences.c.name == SEQUENCE_NAME,
            )
        ).scalar()
    assert (last_value or 0) == len(numbers)
    eligible = set(orders[: ORDERS - 2])
    requested = {o for _, _, _, wanted in jobs for o in wanted}
    assert shop.invoice_count_per_order() == {o: 1 for o in requested & eligible}
    # across the jobs, each requested eligible order was invoiced by one job and skipped by the others
    finished = [get_batch_job(shop.engine, job_id) for job_id, _, _, _ in jobs]
    assert sum(j.successful_count for j in finished) == len(requested & eligible)
