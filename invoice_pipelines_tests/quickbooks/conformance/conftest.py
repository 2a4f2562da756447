"""One simulator per test and, per test, one of three clients that plays a scenario group against
it and reports what its user would see: node-quickbooks + intuit-oauth (npm, one Node process per
group), python-quickbooks + intuit-oauth (PyPI) and our own client. The third-party clients are
used as their documentation shows, with nothing changed but their base URLs.

The simulator's clock is frozen: time moves only when a scenario advances it (token expiry, a day
for the superseded refresh token, a rate-limit window), never with real sleeps; our client's own
waits (rate limiter, backoff) advance it too (`with_our_client.SimulatorClock`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from invoice_pipelines_devtools.qbo_simulator import Limits, QboSimulator
from invoice_pipelines_tests.quickbooks.conformance.scenarios import Scenarios
from invoice_pipelines_tests.quickbooks.conformance.with_node_quickbooks import NodeQuickBooks
from invoice_pipelines_tests.quickbooks.conformance.with_our_client import OurClient
from invoice_pipelines_tests.quickbooks.conformance.with_python_quickbooks import PythonQuickBooks

CLIENTS = ("node-quickbooks", "python-quickbooks", "ours")


@pytest.fixture
def sim() -> Iterator[QboSimulator]:
    """QBO's limits off (the throttling scenario switches them on); the clock frozen."""
    with QboSimulator(port=0, limits=Limits(enabled=False)) as simulator:
        simulator.sim.clock.freeze()
        yield simulator


@pytest.fixture(params=CLIENTS)
def client(request, sim, monkeypatch) -> Iterator[Scenarios]:
    if request.param == "node-quickbooks":
        scenarios: Scenarios = NodeQuickBooks(sim, sim.create_company())
    elif request.param == "python-quickbooks":
        # requests-oauthlib refuses plain http without oauthlib's documented switch (loopback)
        monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
        scenarios = PythonQuickBooks(sim, sim.create_company())
    else:
        scenarios = OurClient(sim, request.getfixturevalue("sqlite_database"))
    yield scenarios
    scenarios.close()
