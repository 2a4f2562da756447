"""Change data capture (changes since a moment, inactive records and deletion stubs included, the
30-day look-back, the silent 1,000-object cap) and batch (at most 30 items, each answered on its
own, no item sees what an earlier one created, requestid replay)."""

from __future__ import annotations

from datetime import UTC, datetime

from invoice_pipelines_devtools.qbo_simulator.wire import loads
from invoice_pipelines_tests.devtools.qbo_simulator.conftest import (
    customer,
    fault_code,
    invoice_body,
    item,
)

DAY = 86400


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _cdc(qbo, entities: str, since: float):
    return qbo.get("cdc", params={"entities": entities, "changedSince": _iso(since)})


def _by_entity(response) -> dict[str, list[dict]]:
    body = qbo_body = loads(response.content)
    assert "time" in qbo_body
    out = {}
    for part in body["CDCResponse"][0]["QueryResponse"]:
        for key, value in part.items():
            if isinstance(value, list):
                out[key] = value
    return out


def test_cdc_returns_changes_since_the_moment_with_inactive_records_and_deletion_stubs(qbo, sim):
    customer(qbo, "Old")
    item(qbo, "Consulting")
    sim.advance(600)
    since = sim.now()
    customer(qbo, "New")
    qbo.create("Customer", {"Id": "1", "SyncToken": "0", "sparse": True, "Active": False})
    qbo.create("Invoice", invoice_body("2", "1", "10.00"))
    qbo.post("invoice", {"Id": "1", "SyncToken": "0"}, params={"operation": "delete"})
    changes = _by_entity(_cdc(qbo, "Customer,Item,Invoice", since))
    assert sorted(c["DisplayName"] for c in changes["Customer"]) == ["New", "Old"]
    assert [c["Active"] for c in changes["Customer"] if c["Id"] == "1"] == [False]
    assert "Item" not in changes  # unchanged since
    assert changes["Invoice"] == [
        {
            "Id": "1",
            "status": "Deleted",
            "domain": "QBO",
            "MetaData": {"LastUpdatedTime": changes["Invoice"][0]["MetaData"]["LastUpdatedTime"]},
        }
    ]


def test_cdc_looks_back_30_days_at_most(qbo, sim):
    customer(qbo, "A")
    start = sim.now()
    sim.advance(30 * DAY - 60)
    qbo.renew()
    assert _cdc(qbo, "Customer", start).status_code == 200
    sim.advance(120)
    too_old = _cdc(qbo, "Customer", start)
    assert too_old.status_code == 400
    assert "older than fixed days is not supported" in too_old.text


def test_cdc_cuts_at_1000_objects_without_paging_or_error(qbo, sim):
    since = sim.now()
    for n in range(1, 1101):
        sim.create_as_user(qbo.realm, "Customer", {"DisplayName": f"C{n}"})
        if n % 100 == 0:
            sim.advance(1)
    response = _cdc(qbo, "Customer", since)
    changes = _by_entity(response)["Customer"]
    assert response.status_code == 200 and len(changes) == 1000
    assert {c["DisplayName"] for c in changes} == {f"C{n}" for n in range(1, 1001)}  # oldest first


def _batch(qbo, items, **params):
    return qbo.post("batch", {"BatchItemRequest": items}, params=params)


def test_batch_answers_each_item_on_its_own_with_http_200(qbo, sim):
    customer(qbo, "Taken")
    response = _batch(
        qbo,
        [
            {"bId": "b1", "operation": "create", "Customer": {"DisplayName": "Fresh"}},
            {"bId": "b2", "operation": "create", "Customer": {"DisplayName": "Taken"}},
            {"bId": "b3", "Query": "select count(*) from Customer"},
            {
                "bId": "b4",
                "operation": "update",
                "Customer": {"Id": "1", "SyncToken": "0", "sparse": True, "Notes": "n"},
            },
        ],
    )
    answers = {a["bId"]: a for a in qbo.ok(response)["BatchItemResponse"]}
    assert answers["b1"]["Customer"]["DisplayName"] == "Fresh"
    assert answers["b2"]["Fault"]["Error"][0]["code"] == "6240"
    # an item does not see what an earlier item of the same batch created
    assert answers["b3"]["QueryResponse"] == {"totalCount": 1}
    assert answers["b4"]["Customer"]["SyncToken"] == "1"
    assert len(sim.records(qbo.realm, "Customer")) == 2


def test_an_item_cannot_use_an_object_created_earlier_in_the_same_batch(qbo):
    item(qbo, "Consulting")
    response = _batch(
        qbo,
        [
            {"bId": "1", "operation": "create", "Customer": {"DisplayName": "New"}},
            {"bId": "2", "operation": "create", "Invoice": invoice_body("1", "1", "5.00")},
        ],
    )
    answers = qbo.ok(response)["BatchItemResponse"]
    assert answers[0]["Customer"]["Id"] == "1"
    assert answers[1]["Fault"]["Error"][0]["code"] == "2500"


def test_batch_size_limit_duplicate_bids_and_void(qbo, sim):
    customer(qbo, "Acme")
    item(qbo, "Consulting")
    qbo.create("Invoice", invoice_body("1", "1", "5.00"))
    thirty = [
        {"bId": f"c{n}", "operation": "create", "Customer": {"DisplayName": f"N{n}"}}
        for n in range(30)
    ]
    assert len(qbo.ok(_batch(qbo, thirty))["BatchItemResponse"]) == 30
    over = [dict(i, bId=f"x{n}") for n, i in enumerate(thirty)] + [
        {"bId": "x30", "Query": "select * from Customer"}
    ]
    refused = _batch(qbo, over)
    assert refused.status_code == 400 and "Fault" in loads(refused.content)
    assert len(sim.records(qbo.realm, "Customer")) == 31  # nothing of the refused batch
    assert _batch(qbo, [{"bId": "a", "Query": "x"}, {"bId": "a", "Query": "y"}]).status_code == 400
    void = _batch(
        qbo,
        [
            {
                "bId": "v",
                "operation": "update",
                "optionsData": "void",
                "Invoice": {"Id": "1", "SyncToken": "0"},
            }
        ],
    )
    assert str(qbo.ok(void)["BatchItemResponse"][0]["Invoice"]["TotalAmt"]) == "0"


def test_batch_requestid_replays_and_is_at_most_36_characters(qbo, sim):
    items = [{"bId": "1", "operation": "create", "Customer": {"DisplayName": "Once"}}]
    first = _batch(qbo, items, requestid="batch-1")
    again = _batch(qbo, items, requestid="batch-1")
    assert first.content == again.content
    assert len(sim.records(qbo.realm, "Customer")) == 1
    assert fault_code(_batch(qbo, items, requestid="b" * 37)) == "2010"
