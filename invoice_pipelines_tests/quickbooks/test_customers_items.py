"""Customers and items both ways against the simulator: who wins, conflicts, holds, links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from invoice_pipelines.db.tables import customers, items, sync_conflicts
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.quickbooks.domain.client import parse_qbo_time
from invoice_pipelines.quickbooks.domain.sync.customers import resolve_conflict, sync_customers
from invoice_pipelines.quickbooks.domain.sync.items import sync_items

D = Decimal


def _customer(qbo, customer_id: int) -> dict:
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        return dict(
            conn.execute(select(customers).where(customers.c.id == customer_id)).mappings().one()
        )


def _qbo_customer(qbo, customer_id: int) -> dict:
    qbo_id = qbo.mapping("customer", customer_id)["qbo_id"]
    return next(r for r in qbo.sim.records(qbo.realm, "Customer") if r["Id"] == qbo_id)


def _edit_locally(qbo, customer_id: int, at: datetime, **values) -> None:
    with tenant_transaction(qbo.engine, qbo.org_id, write=True) as conn:
        conn.execute(
            update(customers).where(customers.c.id == customer_id).values(updated_at=at, **values)
        )


def _conflicts(qbo) -> list[dict]:
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        return [
            dict(r)
            for r in conn.execute(
                select(sync_conflicts)
                .where(sync_conflicts.c.organization_id == qbo.org_id)
                .order_by(sync_conflicts.c.id)
            ).mappings()
        ]


def _sim_now(qbo) -> datetime:
    return datetime.fromtimestamp(qbo.sim.now(), UTC)


def _sync(qbo):
    with qbo.client() as client:
        return sync_customers(qbo.engine, qbo.organization, client)


def test_new_customers_travel_both_ways_and_our_own_writes_do_not_bounce_back(qbo):
    ours = qbo.add_customer("Brandt IT-Service", email="info@brandt.example", city="Köln")
    qbo.sim.create_as_user(qbo.realm, "Customer", {"DisplayName": "Theirs Inc"})
    counts = _sync(qbo)
    assert counts.pushed == 1 and counts.pulled == 1
    assert _qbo_customer(qbo, ours)["BillAddr"]["City"] == "Köln"
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        names = set(
            conn.execute(
                select(customers.c.name).where(customers.c.organization_id == qbo.org_id)
            ).scalars()
        )
    assert names == {"Brandt IT-Service", "Theirs Inc"}
    again = _sync(qbo)
    assert (again.pushed, again.pulled, again.conflicts) == (0, 0, 0)


def test_a_change_on_one_side_is_copied_without_a_conflict(qbo):
    ours = qbo.add_customer("Einseitig GmbH", email="alt@einseitig.example")
    _sync(qbo)
    qbo.sim.edit_as_user(
        qbo.realm,
        "Customer",
        qbo.mapping("customer", ours)["qbo_id"],
        {"PrimaryEmailAddr": {"Address": "neu@einseitig.example"}},
    )
    _sync(qbo)
    assert _customer(qbo, ours)["email"] == "neu@einseitig.example"
    _edit_locally(qbo, ours, datetime.now(UTC), phone="+49 221 123")
    _sync(qbo)
    assert _qbo_customer(qbo, ours)["PrimaryPhone"]["FreeFormNumber"] == "+49 221 123"
    assert _conflicts(qbo) == []


def test_both_sides_changed_the_later_change_wins_and_the_conflict_is_logged(qbo):
    early = qbo.add_customer("Früh KG", customer_number="C-1")
    late = qbo.add_customer("Spät KG", customer_number="C-2")
    _sync(qbo)
    for customer_id in (early, late):
        qbo.sim.edit_as_user(
            qbo.realm,
            "Customer",
            qbo.mapping("customer", customer_id)["qbo_id"],
            {"BillAddr": {"City": "QBO-Stadt"}},
        )
    qbo_time = _sim_now(qbo)
    _edit_locally(qbo, early, qbo_time - timedelta(hours=1), city="Unsere Stadt")  # QBO later
    _edit_locally(qbo, late, qbo_time + timedelta(hours=1), city="Unsere Stadt")  # ours later
    counts = _sync(qbo)
    assert counts.conflicts == 2
    assert _customer(qbo, early)["city"] == "QBO-Stadt"
    assert _qbo_customer(qbo, late)["BillAddr"]["City"] == "Unsere Stadt"
    decisions = {c["local_id"]: c for c in _conflicts(qbo)}
    assert decisions[early]["decision"] == "qbo_won" and decisions[early]["status"] == "resolved"
    assert decisions[late]["decision"] == "local_won"
    assert decisions[late]["local_version"]["city"] == "Unsere Stadt"
    assert decisions[late]["qbo_version"]["BillAddr"]["City"] == "QBO-Stadt"


def test_a_tie_within_the_skew_is_held_for_review_until_someone_resolves_it(qbo):
    tied = qbo.add_customer("Gleichzeitig AG", email="a@gleich.example")
    _sync(qbo)
    qbo.sim.edit_as_user(
        qbo.realm,
        "Customer",
        qbo.mapping("customer", tied)["qbo_id"],
        {"PrimaryPhone": {"FreeFormNumber": "QBO 1"}},
    )
    # one second after QBO's change as QBO states it (LastUpdatedTime, whole seconds): within the
    # 2-s skew whatever the clock read since (the simulator's clock, read after the edit, could be
    # almost a second past the stated time, and a busy machine adds its own delay)
    stated = parse_qbo_time(_qbo_customer(qbo, tied)["MetaData"]["LastUpdatedTime"])
    _edit_locally(qbo, tied, stated + timedelta(seconds=1), phone="ours 1")
    counts = _sync(qbo)
    assert counts.held == 1
    (conflict,) = _conflicts(qbo)
    assert conflict["decision"] == "manual_review" and conflict["status"] == "open"
    # held: further syncs change neither side
    _sync(qbo)
    assert _customer(qbo, tied)["phone"] == "ours 1"
    assert _qbo_customer(qbo, tied)["PrimaryPhone"]["FreeFormNumber"] == "QBO 1"
    with qbo.client() as client:
        resolve_conflict(
            qbo.engine, qbo.org_id, conflict["id"], keep="local", resolved_by="anna", client=client
        )
    assert _qbo_customer(qbo, tied)["PrimaryPhone"]["FreeFormNumber"] == "ours 1"
    (closed,) = _conflicts(qbo)
    assert (closed["status"], closed["decision"], closed["resolved_by"]) == (
        "resolved",
        "kept_local",
        "anna",
    )


def test_deactivated_in_qbo_is_deactivated_here_and_never_resurrected(qbo):
    gone = qbo.add_customer("Geschlossen GmbH")
    _sync(qbo)
    qbo.sim.edit_as_user(
        qbo.realm, "Customer", qbo.mapping("customer", gone)["qbo_id"], {"Active": False}
    )
    _sync(qbo)
    assert _customer(qbo, gone)["active"] is False
    _sync(qbo)
    assert _customer(qbo, gone)["active"] is False
    assert _qbo_customer(qbo, gone)["Active"] is False


def test_a_duplicate_display_name_links_the_same_party_and_holds_another(qbo):
    for name, email in (
        ("Doppelt GmbH", "x@doppelt.example"),
        ("Namensvetter AG", "a@one.example"),
    ):
        qbo.sim.create_as_user(
            qbo.realm, "Customer", {"DisplayName": name, "PrimaryEmailAddr": {"Address": email}}
        )
    # the sync already knows these QBO customers' ids are not ours: start from our side only
    with qbo.client() as client:
        from invoice_pipelines.quickbooks.domain.sync.customers import CustomerSync

        sync = CustomerSync(qbo.engine, qbo.org_id, client)
        same = qbo.add_customer("Doppelt GmbH", customer_number="D-1", email="x@doppelt.example")
        other = qbo.add_customer("Namensvetter AG", customer_number="D-2", email="b@two.example")
        sync.push()
    assert qbo.mapping("customer", same) is not None
    assert qbo.mapping("customer", other) is None
    decisions = {c["local_id"]: (c["decision"], c["status"]) for c in _conflicts(qbo)}
    assert decisions == {same: ("linked", "resolved"), other: ("manual_review", "open")}
    assert len(qbo.sim.records(qbo.realm, "Customer")) == 2


def test_items_qbo_owns_price_and_active_we_own_the_description(qbo):
    item = qbo.add_item("TOOL", "24.90", "Drehmomentschlüssel 1/2 Zoll")
    with qbo.client() as client:
        sync_items(qbo.engine, qbo.organization, client)
    qbo_id = qbo.mapping("item", item)["qbo_id"]
    qbo.sim.edit_as_user(
        qbo.realm,
        "Item",
        qbo_id,
        {"UnitPrice": "27.50", "Description": "changed in QBO", "Active": False},
    )
    with qbo.client() as client:
        sync_items(qbo.engine, qbo.organization, client)
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        ours = conn.execute(select(items).where(items.c.id == item)).mappings().one()
    assert ours["unit_price"] == D("27.50") and ours["active"] is False
    assert ours["description"] == "Drehmomentschlüssel 1/2 Zoll"
    theirs = next(r for r in qbo.sim.records(qbo.realm, "Item") if r["Id"] == qbo_id)
    assert theirs["Description"] == "Drehmomentschlüssel 1/2 Zoll"
    assert D(str(theirs["UnitPrice"])) == D("27.50") and theirs["Active"] is False


def test_an_item_whose_name_exists_in_qbo_is_linked_not_created_twice(qbo):
    qbo.sim.create_as_user(
        qbo.realm,
        "Item",
        {
            "Name": "Item HOUR",
            "Type": "Service",
            "UnitPrice": "80",
            "IncomeAccountRef": {"value": "1"},
        },
    )
    item = qbo.add_item("HOUR", "78.50", "Stunde Montage")
    with qbo.client() as client:
        from invoice_pipelines.quickbooks.domain.sync.items import ItemSync

        ItemSync(qbo.engine, qbo.org_id, client).push()
    names = [r["Name"] for r in qbo.sim.records(qbo.realm, "Item")]
    assert names.count("Item HOUR") == 1
    assert qbo.mapping("item", item) is not None


def test_deactivated_here_is_deactivated_in_qbo_and_stays_so(qbo):
    closed = qbo.add_customer("Aufgelöst KG")
    _sync(qbo)
    _edit_locally(qbo, closed, datetime.now(UTC), active=False)
    _sync(qbo)
    assert _qbo_customer(qbo, closed)["Active"] is False
    counts = _sync(qbo)
    assert (counts.pushed, counts.pulled) == (0, 0)
    assert _customer(qbo, closed)["active"] is False


def test_names_qbo_refuses_are_written_as_names_it_takes(qbo):
    """QBO refuses a colon, tab or line break in a DisplayName or an item Name (2040); the sync
    writes the name cleaned, keeps ours as it is, and the next sync sees nothing to do."""
    from invoice_pipelines.quickbooks.domain.errors import QboError

    raw = "Müller: Werkzeug\tund\nMaschinen GmbH"
    ours = qbo.add_customer(raw)
    item = qbo.add_item("COLON", "10.00")
    with tenant_transaction(qbo.engine, qbo.org_id, write=True) as conn:
        conn.execute(update(items).where(items.c.id == item).values(name="Set: 3 Teile\t(rot)"))
    with qbo.client() as client:
        with pytest.raises(QboError) as refused:
            client.create("Customer", {"DisplayName": raw}, requestid="raw-name-1")
        assert refused.value.code == "2040"
        counts = sync_customers(qbo.engine, qbo.organization, client)
        item_counts = sync_items(qbo.engine, qbo.organization, client)
    assert counts.pushed == 1 and not counts.errors
    assert not item_counts.errors
    assert _qbo_customer(qbo, ours)["DisplayName"] == "Müller - Werkzeug und Maschinen GmbH"
    assert _customer(qbo, ours)["name"] == raw
    qbo_item = qbo.mapping("item", item)["qbo_id"]
    theirs = next(r for r in qbo.sim.records(qbo.realm, "Item") if r["Id"] == qbo_item)
    assert theirs["Name"] == "Set - 3 Teile (rot)"
    again = _sync(qbo)
    assert (again.pushed, again.pulled, again.conflicts) == (0, 0, 0)


def test_a_customer_linked_by_its_cleaned_name(qbo):
    """A customer QBO already has under the cleaned form of our name (same e-mail) is linked,
    not refused as a duplicate nor created twice."""
    qbo.sim.create_as_user(
        qbo.realm,
        "Customer",
        {"DisplayName": "Kraus - Bau", "PrimaryEmailAddr": {"Address": "bau@kraus.example"}},
    )
    ours = qbo.add_customer("Kraus: Bau", email="bau@kraus.example")
    counts = _sync(qbo)
    assert not counts.errors and counts.conflicts == 0
    assert len(qbo.sim.records(qbo.realm, "Customer")) == 1
    assert _qbo_customer(qbo, ours)["DisplayName"] == "Kraus - Bau"
