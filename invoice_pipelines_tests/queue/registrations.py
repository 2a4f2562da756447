"""The kinds of batch job a test's process knows (`queue.registry`), as the program's processes
know them: the areas' kinds, registered once for the whole session (`register_area_kinds`, which
the root conftest calls), and a test's own kinds, registered for that test only
(`register_each` inside `registry_restored`, the queue tests' `register_kinds` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from invoice_pipelines.queue import registry
from invoice_pipelines.queue.job_kind import JobKind


def register_area_kinds() -> None:
    """Register every area's kinds (by their loaders), as the console script and definitions.py
    do (`areas.register_kinds`: the one place the program registers them)."""
    from invoice_pipelines.areas import register_kinds

    register_kinds()


def register_each(*kinds: JobKind) -> None:
    """Register kinds a test built (`register(name, loader)`, the kind's one registration line)."""
    for kind in kinds:
        registry.register(kind.name, lambda kind=kind: kind)


@contextmanager
def registry_restored() -> Iterator[None]:
    """Whatever is registered inside the block (`register`, `build_defs`) is forgotten after it:
    the registry is then as it was before."""
    before = dict(registry._KINDS)
    try:
        yield
    finally:
        registry._KINDS.clear()
        registry._KINDS.update(before)
