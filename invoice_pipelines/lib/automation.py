"""Which organizations the automatic work (sensors, schedules, backfills) requests runs for: those
with a partition, less the suspended ones (tenants/domain/lifecycle.py), each left out with its reason in
the tick's message. A suspended organization's data and partitions stay; nothing is requested for
it until it is resumed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine

from invoice_pipelines.db.tenancy import suspended_organizations
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME

NAMED = 5  # suspended organizations a message names before "and N more"


@dataclass(frozen=True)
class Automatic:
    """The partition keys in the instance's order, those to work for, and the suspended ones
    left out (slug -> reason)."""

    keys: list[str]
    suspended: Mapping[str, str] = field(default_factory=dict)

    @property
    def working(self) -> list[str]:
        return [key for key in self.keys if key not in self.suspended]

    @property
    def known(self) -> set[str]:
        return set(self.working)

    def note(self, among: Iterable[str] | None = None) -> str:
        """`; suspended, nothing requested: a (why), b (why)` for the suspended organizations
        (those of `among`, when given), or "" when none."""
        left = sorted(self.suspended if among is None else set(among) & set(self.suspended))
        if not left:
            return ""
        named = ", ".join(f"{slug} ({self.suspended[slug]})" for slug in left[:NAMED])
        more = f" and {len(left) - NAMED} more" if len(left) > NAMED else ""
        return f"; suspended, nothing requested: {named}{more}"

    def ranges(self, per_run: int) -> list[list[str]]:
        """The working keys in batches of at most `per_run`, each a run of consecutive keys of
        the instance's order with no suspended organization inside it (a run over a range of
        partitions does every partition of the range)."""
        batches: list[list[str]] = []
        current: list[str] = []
        for key in self.keys:
            if key in self.suspended or len(current) == per_run:
                if current:
                    batches.append(current)
                current = []
            if key not in self.suspended:
                current.append(key)
        if current:
            batches.append(current)
        return batches


def automatic_organizations(instance, system: Engine) -> Automatic:
    """The organizations' partition keys of `instance` (a DagsterInstance) and the suspended
    organizations among them: one read of each (`system`: the system engine)."""
    keys: Sequence[str] = instance.get_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME)
    suspended = suspended_organizations(system)
    present = set(keys)
    return Automatic(list(keys), {k: v for k, v in suspended.items() if k in present})
