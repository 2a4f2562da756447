"""What the three clients of the conformance suite share: a client of one simulated company plays
a scenario group (`run`) and returns a report of what its user sees, compared in the tests."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from invoice_pipelines_devtools.qbo_simulator import CompanyHandle, QboSimulator

CENT = Decimal("0.01")
# the supplier's document the payables group uploads to a bill: CR LF, NUL bytes and a line that
# starts like a multipart delimiter, as binary files have them
DOCUMENT = b"%PDF-1.7\r\n%\xe2\xe3\xcf\xd3\n--\r\n\x00\x01\xff trailer" * 300


def money(value) -> str:
    """An amount as any client reports it (JS number, Decimal, numeric string) to two places."""
    return str(Decimal(str(value)).quantize(CENT))


def outcome(call: Callable[[], object], error: type[Exception], describe) -> str | dict:
    """ "ok" when `call()` succeeds, else what `describe` reads off the client's `error`."""
    try:
        call()
    except error as exc:
        return describe(exc)
    return "ok"


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

    def throttle(self, info: Callable[[], str | dict]) -> dict:
        """The throttling group for a Python client, `info` one call's outcome: eleven calls in
        one (frozen) second, one after the window moved, then an injected 429, 500 and 503, each
        followed by a plain call."""
        burst = [info() for _ in range(11)]
        self.sim.advance(1)
        report = {"burst": burst, "after_wait": info()}
        for fault in ("429", "500", "503"):
            self.sim.inject(self.realm, fault)
            report[fault] = info()
            report[f"after_{fault}"] = info()
        return report
