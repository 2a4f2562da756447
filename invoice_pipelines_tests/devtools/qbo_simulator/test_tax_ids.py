"""A customer's tax registration number as QBO keeps it (Intuit's Customer reference):
PrimaryTaxIdentifier exists in the UK, Canadian, Australian and Indian editions, and every answer
masks all but its last five characters."""

from __future__ import annotations

from invoice_pipelines_tests.devtools.qbo_simulator.conftest import Qbo


def test_tax_ids_are_kept_where_the_edition_has_them_and_answered_masked(sim):
    uk = Qbo(sim, sim.create_company(country="GB", currency="GBP"))
    created = uk.create(
        "Customer", {"DisplayName": "Brandt IT-Service", "PrimaryTaxIdentifier": "DE123456789"}
    )
    assert created["PrimaryTaxIdentifier"] == "XXXXXX56789"
    read = uk.ok(uk.get("customer/1"))["Customer"]
    assert read["PrimaryTaxIdentifier"] == "XXXXXX56789"
    queried = uk.query("select * from customer where Id = '1'")["Customer"][0]
    assert queried["PrimaryTaxIdentifier"] == "XXXXXX56789"
    # read, change a field, send the whole object back: the masked value keeps the stored one
    read["Notes"] = "full update"
    uk.create("Customer", read)
    assert sim.records(uk.realm, "Customer")[0]["PrimaryTaxIdentifier"] == "DE123456789"
    uk.create(
        "Customer",
        {"Id": "1", "SyncToken": "1", "sparse": True, "PrimaryTaxIdentifier": "ATU12345678"},
    )
    assert sim.records(uk.realm, "Customer")[0]["PrimaryTaxIdentifier"] == "ATU12345678"

    us = Qbo(sim, sim.create_company(country="US"))
    american = us.create(
        "Customer", {"DisplayName": "Brandt IT-Service", "PrimaryTaxIdentifier": "DE123456789"}
    )
    assert "PrimaryTaxIdentifier" not in american
    assert "PrimaryTaxIdentifier" not in sim.records(us.realm, "Customer")[0]
    uk.close()
    us.close()
