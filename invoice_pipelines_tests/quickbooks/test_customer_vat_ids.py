"""Customers' VAT ids (BT-48) in QBO's tax registration field, PrimaryTaxIdentifier, where the
company's edition has one (UK, Canada, Australia, India), through the customers sync."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from invoice_pipelines.db.tables import customers
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.quickbooks.domain.sync.customers import CustomerSync, sync_customers
from invoice_pipelines_tests.quickbooks.conftest import connect


def _sync(qbo):
    with qbo.client() as client:
        return sync_customers(qbo.engine, qbo.organization, client)


def _stored(qbo, customer_id: int) -> dict:
    """What the simulated company keeps (the control shows it unmasked)."""
    qbo_id = qbo.mapping("customer", customer_id)["qbo_id"]
    return next(r for r in qbo.sim.records(qbo.realm, "Customer") if r["Id"] == qbo_id)


def _set_vat_id(qbo, customer_id: int, vat_id: str | None) -> None:
    with tenant_transaction(qbo.engine, qbo.org_id, write=True) as conn:
        conn.execute(update(customers).where(customers.c.id == customer_id).values(vat_id=vat_id))


@pytest.fixture
def uk(db, simulator):
    return connect(db, simulator, country="GB", currency="GBP", tz_offset="+00:00")


def test_vat_ids_are_written_to_the_tax_registration_field_of_a_uk_company(uk, qbo):
    with_vat = uk.add_customer("Brandt IT-Service", vat_id="DE 123 456 789")
    without = uk.add_customer("Privatkunde Meier", customer_number="P-1")
    counts = _sync(uk)
    assert counts.pushed == 2 and counts.failed == 0, counts.errors
    assert _stored(uk, with_vat)["PrimaryTaxIdentifier"] == "DE123456789"
    assert "PrimaryTaxIdentifier" not in _stored(uk, without)
    # a US company's Customer has no such field: nothing is sent there
    american = qbo.add_customer("Brandt IT-Service", vat_id="DE123456789")
    assert _sync(qbo).pushed == 1
    assert "PrimaryTaxIdentifier" not in _stored(qbo, american)
    assert _sync(uk).pushed == 0  # nothing changed: no second write

    _set_vat_id(uk, with_vat, "DE987654321")
    assert _sync(uk).pushed == 1
    assert _stored(uk, with_vat)["PrimaryTaxIdentifier"] == "DE987654321"
    _set_vat_id(uk, with_vat, None)
    assert _sync(uk).pushed == 1
    assert _stored(uk, with_vat)["PrimaryTaxIdentifier"] == ""


def test_a_customer_gaining_a_vat_id_after_it_was_synced_gets_it_written(uk):
    customer = uk.add_customer("Später GmbH")
    _sync(uk)
    assert "PrimaryTaxIdentifier" not in _stored(uk, customer)
    _set_vat_id(uk, customer, "ATU12345678")
    counts = _sync(uk)
    assert counts.pushed == 1 and counts.conflicts == 0
    assert _stored(uk, customer)["PrimaryTaxIdentifier"] == "ATU12345678"


def test_a_name_clash_is_the_same_party_when_qbos_masked_tax_id_shows_the_end_of_ours(uk):
    """QBO answers tax ids masked (XXXXXX56789): a DisplayName it has already is linked when the
    characters it shows are the end of our VAT id, and held when they are not."""
    for name, tax_id in (("Doppelt GmbH", "DE123456789"), ("Namensvetter AG", "GB123456789")):
        uk.sim.create_as_user(
            uk.realm, "Customer", {"DisplayName": name, "PrimaryTaxIdentifier": tax_id}
        )
    with uk.client() as client:
        assert client.get("Customer", "1")["PrimaryTaxIdentifier"] == "XXXXXX56789"
        sync = CustomerSync(uk.engine, uk.org_id, client)
        same = uk.add_customer("Doppelt GmbH", customer_number="D-1", vat_id="DE 123 456 789")
        other = uk.add_customer("Namensvetter AG", customer_number="D-2", vat_id="ATU56789")
        sync.push()
    assert uk.mapping("customer", same) is not None
    assert uk.mapping("customer", other) is None  # the same last five, another length
    assert len(uk.sim.records(uk.realm, "Customer")) == 2
