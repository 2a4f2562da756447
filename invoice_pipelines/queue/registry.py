"""The kinds this process knows, by name: the one registry. A kind becomes known only by
`register(name, loader)`: every area's kinds by `areas.register_kinds` (the console script and
definitions.py), and `queue.defs.build_defs` the kinds it builds a code location's queue from (so
a run knows them). `loader()` gives the kind when a lookup needs it, so a command that runs no
job does not import what the kinds need (Dagster among it). Apart from `queue/kinds.py` so that
the queue's state modules (`queue/jobs.py`, `queue/items.py`) can look a job's kind up without
the kinds' machinery."""

from __future__ import annotations

from collections.abc import Callable

from invoice_pipelines.queue.job_kind import JobKind


class UnknownKind(LookupError):
    pass


# every kind registered in this process: its name -> the loader that gives it
_KINDS: dict[str, Callable[[], JobKind]] = {}


def register(name: str, loader: Callable[[], JobKind]) -> None:
    """Make a kind known to this process; `loader()` gives it when a lookup needs it. Registering
    a name again replaces its loader."""
    _KINDS[name] = loader


def _load(name: str) -> JobKind:
    kind = _KINDS[name]()
    if kind.name != name:
        raise ValueError(f"the kind registered as {name!r} is {kind.name!r}")
    return kind


def registered() -> dict[str, JobKind]:
    """Every kind this process knows, loaded."""
    return {name: _load(name) for name in list(_KINDS)}


def described(name: str) -> JobKind | None:
    """The kind of that name (loaded); None for a kind this process has not heard of."""
    return _load(name) if name in _KINDS else None


def creates_invoices(name: str) -> bool:
    """Whether the kind of that name turns its items into sales invoices (invoicing: batch-stats
    counts its orders); False for a kind this process has not heard of."""
    kind = described(name)
    return kind is not None and kind.creates_invoices
