"""The kinds this process knows, by name: declared (building a `queue.kinds.JobKind` declares it)
or registered for the command line (`register`, a loader). Apart from `queue/kinds.py` so that the
queue's state modules (`queue/jobs.py`) can look a job's kind up without importing the kinds'
machinery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

JobKind = Any  # queue.kinds.JobKind


class UnknownKind(LookupError):
    pass


# every kind declared in this process, by name (JobKind.__post_init__)
_DECLARED: dict[str, JobKind] = {}

# the kinds the command line knows (`batch-run`): each area's cli.py registers its own, as a
# loader, so a command that runs no job does not import what the kinds need (Dagster among it)
_LOADERS: dict[str, Callable[[], JobKind]] = {}


def register(name: str, loader: Callable[[], JobKind]) -> None:
    """Make a kind known to the queue's commands; `loader()` gives it when a command needs it."""
    _LOADERS[name] = loader


def registered() -> dict[str, JobKind]:
    """The kinds registered for the command line, loaded."""
    kinds = {}
    for name, loader in _LOADERS.items():
        kind = loader()
        if kind.name != name:
            raise ValueError(f"the kind registered as {name!r} is {kind.name!r}")
        kinds[name] = kind
    return kinds


def described(name: str) -> JobKind | None:
    """The kind of that name as this process knows it: declared, or registered (then loaded);
    None for a kind this process has not heard of."""
    kind = _DECLARED.get(name)
    if kind is None and name in _LOADERS:
        kind = _LOADERS[name]()
    return kind


def creates_invoices(name: str) -> bool:
    """Whether the kind of that name turns its items into sales invoices (invoicing: batch-stats
    counts its orders); False for a kind this process has not heard of."""
    kind = described(name)
    return kind is not None and kind.creates_invoices


def known() -> dict[str, JobKind]:
    """Every kind this process knows: the declared ones and the registered ones (loaded)."""
    return {**registered(), **_DECLARED}
