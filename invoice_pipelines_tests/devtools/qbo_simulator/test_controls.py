"""The /_sim controls over HTTP, the state kept in a data directory across a restart, and the
simulator in a process of its own (python -m ..., as the benchmark and the demo run it)."""

from __future__ import annotations

import httpx
import pytest

from invoice_pipelines_devtools.qbo_simulator import (
    Limits,
    QboSimulator,
    SimulatorControl,
    SimulatorProcess,
)
from invoice_pipelines_devtools.qbo_simulator.wire import loads
from invoice_pipelines_tests.devtools.qbo_simulator.conftest import (
    Qbo,
    customer,
    invoice_body,
    item,
)


def test_http_controls_do_what_the_python_methods_do(sim):
    control = SimulatorControl(sim.base_url)
    company = control.create_company(realm_id="777")
    qbo = Qbo(sim, company)
    created = control.create_as_user("777", "Customer", {"DisplayName": "From the UI"})
    edited = control.edit_as_user("777", "Customer", created["Id"], {"Notes": "edited"})
    assert edited["SyncToken"] == "1"
    assert [c["Notes"] for c in control.records("777", "Customer")] == ["edited"]
    control.inject("777", "503", count=1)
    assert qbo.get("customer/1").status_code == 503
    assert qbo.get("customer/1").status_code == 200
    assert [r["status"] for r in control.requests("777")] == [503, 200]
    before = control.now()
    assert control.advance(30) == pytest.approx(before + 30)
    with pytest.raises(ValueError, match="unknown simulator setting"):
        control.configure(bogus=1)
    assert control.configure("777", per_minute=100)["per_minute"] == 100
    control.reset("777")
    assert control.records("777", "Customer") == []
    qbo.close()


def test_state_survives_a_restart_with_a_data_dir(tmp_path):
    with QboSimulator(data_dir=tmp_path, limits=Limits(enabled=False)) as first:
        company = first.create_company(realm_id="555")
        qbo = Qbo(first, company)
        customer(qbo, "Acme")
        item(qbo, "Consulting")
        qbo.create("Invoice", invoice_body("1", "1", "19.99", DocNumber="K-1"))
        qbo.close()
    with QboSimulator(data_dir=tmp_path, limits=Limits(enabled=False)) as second:
        qbo = Qbo(second, company)
        invoice = qbo.ok(qbo.get("invoice/1"))["Invoice"]  # the old access token still works
        assert str(invoice["TotalAmt"]) == "19.99" and invoice["DocNumber"] == "K-1"
        assert loads(qbo.post("customer", {"DisplayName": "acme"}).content)["Fault"]
        assert (
            qbo.post("invoice", invoice_body("1", "1", "1.00", DocNumber="K-1")).status_code == 400
        )
        assert customer(qbo, "Beta")["Id"] == "2"
        qbo.renew()  # and the refresh token
        qbo.close()


def test_the_simulator_in_its_own_process_with_known_demo_credentials(tmp_path):
    spec = "888:demo-client:demo-secret:demo-refresh-888"
    with SimulatorProcess(limits=False, data_dir=tmp_path, companies=[spec]) as sim:
        tokens = httpx.post(
            sim.token_url,
            data={"grant_type": "refresh_token", "refresh_token": "demo-refresh-888"},
            auth=("demo-client", "demo-secret"),
        ).json()
        response = httpx.post(
            f"{sim.api_url}/company/888/customer",
            params={"minorversion": 75},
            json={"DisplayName": "Remote"},
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
        assert response.status_code == 200 and response.headers["intuit_tid"]
    # stopped (SIGTERM) and started again on the same data dir: nothing lost, nothing doubled
    with SimulatorProcess(limits=False, data_dir=tmp_path, companies=[spec]) as again:
        assert [c["DisplayName"] for c in again.records("888", "Customer")] == ["Remote"]
        rotated = httpx.post(
            again.token_url,
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            auth=("demo-client", "demo-secret"),
        )
        assert rotated.status_code == 200
