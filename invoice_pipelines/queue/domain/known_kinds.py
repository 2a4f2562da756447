"""The kinds a process knows, by name, as a value (`Kinds`): a read-only mapping the assembly
builds once from every area's kinds (`areas.kinds()`) and hands over: to the queue's Dagster
objects (`queue.defs.build_defs`), to every run as the `batch_kinds` resource, and to every
command as `args.resources.batch_kinds`. Nothing here is filled at import, and nothing looks a
kind up but through the value it is given.

A kind is loaded when it is first looked up (`Kinds` holds each kind's loader), so a command that
meets no job does not import what the kinds need (Dagster among it). Apart from
`queue/domain/kinds.py` so that the queue's state modules (`queue/domain/jobs.py`, `queue/domain/items.py`) can name
the type without the kinds' machinery."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType

from invoice_pipelines.core.batch_kinds import KINDS_RESOURCE as KINDS_RESOURCE
from invoice_pipelines.queue.domain.job_kind import JobKind


class UnknownKind(LookupError):
    pass


class Kinds(Mapping[str, JobKind]):
    """Every kind a process knows: its name -> the kind, loaded when first looked up. Read-only;
    built from the kinds' loaders (`Kinds(loaders)`) or from kinds built already
    (`Kinds.of(kind, ...)`, a test's own)."""

    def __init__(self, loaders: Mapping[str, Callable[[], JobKind]]) -> None:
        self._loaders = MappingProxyType(dict(loaders))
        # a cache of what the loaders gave, not a registry: the names are fixed above
        self._loaded: dict[str, JobKind] = {}

    @classmethod
    def of(cls, *kinds: JobKind) -> Kinds:
        names = [k.name for k in kinds]
        if len(set(names)) != len(names):
            raise ValueError(f"a kind is given twice: {names}")
        return cls({k.name: (lambda k=k: k) for k in kinds})

    def __getitem__(self, name: str) -> JobKind:
        kind = self._loaded.get(name)
        if kind is None:
            kind = self._loaders[name]()  # KeyError: a kind this process has not heard of
            if kind.name != name:
                raise ValueError(f"the kind listed as {name!r} is {kind.name!r}")
            self._loaded[name] = kind
        return kind

    def __contains__(self, name: object) -> bool:
        return name in self._loaders

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaders)

    def __len__(self) -> int:
        return len(self._loaders)

    def __repr__(self) -> str:
        return f"Kinds({', '.join(self._loaders)})"

    def with_kinds(self, kinds: Iterable[JobKind]) -> Kinds:
        """These kinds and the given ones (which replace a kind of the same name): a new value."""
        given = {k.name: (lambda k=k: k) for k in kinds}
        return Kinds({**self._loaders, **given})

    def described(self, name: str) -> JobKind | None:
        """The kind of that name (loaded); None for a kind this process has not heard of."""
        return self[name] if name in self else None

    def creates_invoices(self, name: str) -> bool:
        """Whether the kind of that name turns its items into sales invoices (invoicing:
        batch-stats counts its orders); False for a kind this process has not heard of."""
        kind = self.described(name)
        return kind is not None and kind.creates_invoices

    def over_invoices(self) -> list[str]:
        """The names of the kinds whose items are sales invoices (documents, communications)."""
        return [name for name in self if self[name].over_invoices]

    def run_by_the_queue(self) -> list[str]:
        """The names of the kinds the queue's own jobs run (not a Dagster job of their area)."""
        return [name for name in self if self[name].own_job is None]
