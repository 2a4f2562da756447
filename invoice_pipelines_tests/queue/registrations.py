"""The kinds of batch job a test's process knows (`queue.registry`), as the program's processes
know them: the areas' kinds, registered once for the whole session (`register_area_kinds`, which
the root conftest calls), and a test's own kinds, registered for that test only
(`register_each` inside `registry_restored`, the queue tests' `register_kinds` fixture)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from invoice_pipelines.queue import registry
from invoice_pipelines.queue.job_kind import JobKind

# the areas' kinds: name -> (module, attribute), loaded only when a test meets a job of the kind
AREA_KINDS = {
    "sales_orders": ("invoice_pipelines.billing.invoicing_kinds", "SALES_ORDERS_KIND"),
    "customer_lines": ("invoice_pipelines.billing.invoicing_kinds", "CUSTOMER_LINES_KIND"),
    "credit_notes": ("invoice_pipelines.billing.credit_note_jobs", "CREDIT_NOTES_KIND"),
    "documents": ("invoice_pipelines.documents.batch", "DOCUMENTS_KIND"),
    "communications": ("invoice_pipelines.delivery.batch", "COMMUNICATIONS_KIND"),
}


def _loader(module: str, attribute: str) -> Callable[[], JobKind]:
    return lambda: getattr(importlib.import_module(module), attribute)


def register_area_kinds() -> None:
    """Register the areas' kinds (lazily, by loader), as the console script and definitions.py
    do."""
    for name, (module, attribute) in AREA_KINDS.items():
        registry.register(name, _loader(module, attribute))


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
