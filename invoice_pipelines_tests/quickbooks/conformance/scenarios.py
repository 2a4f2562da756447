"""What the three clients of the conformance suite share: a client of one simulated company plays
a scenario group (`run`) and returns a report of what its user sees, compared in the tests."""

from __future__ import annotations

from decimal import Decimal

from invoice_pipelines.quickbooks.simulator import CompanyHandle, QboSimulator

CENT = Decimal("0.01")


def money(value) -> str:
    """An amount as any client reports it (JS number, Decimal, numeric string) to two places."""
    return str(Decimal(str(value)).quantize(CENT))


class Scenarios:
    """A client of one simulated company; `run(group)` plays a scenario group, returns its report.
    The Python clients implement each group as a method of that name."""

    name: str

    def __init__(self, sim: QboSimulator, company: CompanyHandle) -> None:
        self.sim = sim
        self.company = company

    @property
    def realm(self) -> str:
        return self.company.realm_id

    def run(self, group: str) -> dict:
        return getattr(self, group)()

    def close(self) -> None:
        pass
