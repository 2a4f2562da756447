"""Throttling per realm with QBO's default limits (429 with the SERVICE fault, JSON or XML), and the
faults tests inject: 429/5xx, a request held past the client's patience, and a connection dropped
after the write was committed (the requestid then saves the client from a duplicate)."""

from __future__ import annotations

import threading

import httpx
import pytest

from invoice_pipelines_devtools.qbo_simulator import QboSimulator
from invoice_pipelines_devtools.qbo_simulator.wire import loads
from invoice_pipelines_tests.devtools.qbo_simulator.conftest import REALM, Qbo, customer


@pytest.fixture
def limited():
    """Real default limits, the clock frozen so windows move only with advance()."""
    with QboSimulator(port=0) as simulator:
        simulator.sim.clock.freeze()
        client = Qbo(simulator, simulator.create_company(realm_id=REALM))
        yield simulator, client
        client.close()


def _info(qbo: Qbo, **kw) -> httpx.Response:
    return qbo.get(f"companyinfo/{qbo.realm}", **kw)


def _throttled(response: httpx.Response) -> bool:
    if response.status_code != 429:
        return False
    fault = loads(response.content)["Fault"]
    assert fault["type"] == "SERVICE" and fault["Error"][0]["code"] == "3001"
    assert "ThrottleExceeded" in fault["Error"][0]["Message"]
    return True


def test_ten_requests_per_second(limited):
    sim, qbo = limited
    assert [_info(qbo).status_code for _ in range(10)] == [200] * 10
    assert _throttled(_info(qbo))
    sim.advance(1)
    assert _info(qbo).status_code == 200


def test_five_hundred_requests_per_minute_and_batch_items_count(limited):
    sim, qbo = limited
    for _ in range(16):  # 16 batches of 30 items = 480 requests' worth
        batch = [{"bId": f"q{n}", "Query": "select count(*) from Customer"} for n in range(30)]
        assert qbo.post("batch", {"BatchItemRequest": batch}).status_code == 200
        sim.advance(1)
    twenty_one = [{"bId": f"q{n}", "Query": "select * from Item"} for n in range(21)]
    assert _throttled(qbo.post("batch", {"BatchItemRequest": twenty_one}))
    assert qbo.post("batch", {"BatchItemRequest": twenty_one[:20]}).status_code == 200
    sim.advance(1)
    assert _throttled(_info(qbo))
    sim.advance(60)
    assert _info(qbo).status_code == 200
    assert sim.stats(qbo.realm)["throttled"] == 2


def test_forty_batch_requests_per_minute(limited):
    sim, qbo = limited
    one = {"BatchItemRequest": [{"bId": "1", "Query": "select count(*) from Customer"}]}
    for n in range(40):
        assert qbo.post("batch", one).status_code == 200
        if n % 10 == 9:
            sim.advance(1)
    assert _throttled(qbo.post("batch", one))
    assert _info(qbo).status_code == 200  # plain requests still pass


def test_ten_requests_in_flight(limited):
    sim, qbo = limited
    sim.inject(qbo.realm, "delay", count=10, seconds=5)
    answers: list[int] = []

    def call():
        with httpx.Client(timeout=30) as http:
            answers.append(
                http.get(f"{qbo.url}/companyinfo/{qbo.realm}", headers=qbo.headers()).status_code
            )

    threads = [threading.Thread(target=call) for _ in range(10)]
    for thread in threads:
        thread.start()
    for _ in range(3000):  # wait (up to 30 s on a busy machine) until all ten are held
        if sim.stats(qbo.realm)["in_flight"] == 10:
            break
        threading.Event().wait(0.01)
    assert sim.stats(qbo.realm)["in_flight"] == 10
    sim.advance(1)  # a new second: only the in-flight limit can refuse now
    assert _throttled(_info(qbo))
    sim.advance(5)
    for thread in threads:
        thread.join(10)
    assert answers == [200] * 10


def test_throttle_body_can_be_xml_whatever_the_client_accepts_and_retry_after(limited):
    sim, qbo = limited
    sim.configure(qbo.realm, throttle_xml=True)
    sim.configure(retry_after=True)
    for _ in range(10):
        _info(qbo)
    response = _info(qbo)
    assert response.status_code == 429
    assert response.headers["Content-Type"].startswith("application/xml")
    assert b'<Fault type="SERVICE">' in response.content and b'code="3001"' in response.content
    assert response.headers["Retry-After"] == "1"


def test_time_scale_compresses_the_wait_a_client_is_told(limited):
    with QboSimulator(port=0, time_scale=60) as fast:
        fast.sim.clock.freeze()
        fast.configure(retry_after=True)
        client = Qbo(fast, fast.create_company(realm_id=REALM))
        for n in range(500):
            if n % 10 == 0:
                fast.advance(1)
            assert _info(client).status_code == 200
        refused = _info(client)
        # the minute frees up in ~10 simulated seconds: under a second at 60x
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
        client.close()


def test_injected_429_500_503_and_401_then_normal_service(qbo, sim):
    sim.inject(qbo.realm, "429", count=2)
    sim.inject(qbo.realm, "503")
    sim.inject(qbo.realm, "500", xml=True)
    sim.inject(qbo.realm, "401")
    statuses = [_info(qbo).status_code for _ in range(6)]
    assert statuses == [429, 429, 503, 500, 401, 200]
    assert [r.get("injected") for r in sim.requests(qbo.realm)][:5] == [
        "429",
        "429",
        "503",
        "500",
        "401",
    ]


def test_faults_can_target_a_path(qbo, sim):
    sim.inject(qbo.realm, "500", path_contains="/invoice")
    assert customer(qbo, "Acme")["Id"] == "1"
    assert qbo.get("invoice/1").status_code == 500
    assert qbo.get("invoice/1").status_code == 400  # 610: the fault was used up


def test_a_held_request_is_never_executed_and_the_client_gives_up(qbo, sim):
    sim.inject(qbo.realm, "timeout", seconds=120)
    with pytest.raises(httpx.TimeoutException):
        qbo.post("customer", {"DisplayName": "Never"}, timeout=0.5)
    sim.advance(120)  # the server gives up too and closes the connection
    assert sim.records(qbo.realm, "Customer") == []


def test_connection_dropped_after_commit_and_the_requestid_retry(qbo, sim):
    sim.inject(qbo.realm, "drop_after_commit")
    with pytest.raises(httpx.TransportError):
        qbo.post("customer", {"DisplayName": "Acme"}, params={"requestid": "c-1"})
    stored = sim.records(qbo.realm, "Customer")
    assert [c["DisplayName"] for c in stored] == ["Acme"]  # committed though unanswered
    retry = qbo.ok(qbo.post("customer", {"DisplayName": "Acme"}, params={"requestid": "c-1"}))
    assert retry["Customer"]["Id"] == stored[0]["Id"]
    assert len(sim.records(qbo.realm, "Customer")) == 1
    # without a requestid the same retry is refused as a duplicate name (no second record)
    sim.inject(qbo.realm, "drop_after_commit")
    with pytest.raises(httpx.TransportError):
        qbo.post("customer", {"DisplayName": "Beta"})
    assert qbo.post("customer", {"DisplayName": "Beta"}).status_code == 400


def test_a_dropped_connection_before_anything_happened(qbo, sim):
    sim.inject(qbo.realm, "drop")
    with pytest.raises(httpx.TransportError):
        qbo.post("customer", {"DisplayName": "Acme"})
    assert sim.records(qbo.realm, "Customer") == []


def test_token_endpoint_faults_only_when_aimed_at_it(qbo, sim):
    sim.inject(qbo.realm, "503", path_contains="/oauth2/")
    assert _info(qbo).status_code == 200  # API calls are not hit
    data = {"grant_type": "refresh_token", "refresh_token": qbo.company.refresh_token}
    auth = (qbo.company.client_id, qbo.company.client_secret)
    assert httpx.post(sim.token_url, data=data, auth=auth).status_code == 503
    assert httpx.post(sim.token_url, data=data, auth=auth).status_code == 200
