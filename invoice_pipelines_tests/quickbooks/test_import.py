"""Initial import of an existing QBO company: paged, interrupted, resumed, nothing twice."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from invoice_pipelines.db.tables import customers
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.quickbooks.domain.sync.common import read_cursor
from invoice_pipelines.quickbooks.domain.sync.customers import CustomerSync


class Interrupted(Exception):
    pass


def test_an_interrupted_import_resumes_after_its_last_page_and_imports_each_once(qbo):
    for n in range(25):
        qbo.sim.create_as_user(
            qbo.realm, "Customer", {"DisplayName": f"Bestand {n:02d}", "Active": n != 7}
        )
    seen: list[int] = []

    def stop_after_two_pages(done: int) -> None:
        seen.append(done)
        if len(seen) == 2:
            raise Interrupted  # the run dies here (after the page's commit)

    with qbo.client() as client, pytest.raises(Interrupted):
        CustomerSync(qbo.engine, qbo.org_id, client).initial_import(
            page_size=10, progress=stop_after_two_pages
        )
    state = read_cursor(qbo.engine, qbo.org_id, "customer")
    assert (state["imported"], state["import_done"]) == (20, False)

    with qbo.client() as client:
        sync = CustomerSync(qbo.engine, qbo.org_id, client)
        sync.initial_import(page_size=10, progress=seen.append)
        assert seen[-1] == 25 and sync.counts.pulled == 5
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        names = conn.execute(
            select(customers.c.name, func.count())
            .where(customers.c.organization_id == qbo.org_id)
            .group_by(customers.c.name)
        ).all()
        inactive = (
            conn.execute(
                select(customers.c.name).where(
                    customers.c.organization_id == qbo.org_id, customers.c.active.is_(False)
                )
            )
            .scalars()
            .all()
        )
    assert len(names) == 25 and {count for _, count in names} == {1}
    assert inactive == ["Bestand 07"]
    assert read_cursor(qbo.engine, qbo.org_id, "customer")["import_done"] is True
    # a customer created in QBO afterwards arrives with the next pull, not a second import
    qbo.sim.create_as_user(qbo.realm, "Customer", {"DisplayName": "Neu danach"})
    with qbo.client() as client:
        sync = CustomerSync(qbo.engine, qbo.org_id, client)
        sync.pull()
    assert sync.counts.pulled == 1
