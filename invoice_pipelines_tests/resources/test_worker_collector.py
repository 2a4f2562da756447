"""A pool's worker sets what it holds after its warm-up aside from Python's cyclic collector: a
full collection in a renderer or parse worker then walks what its items left, not the modules,
fonts and compiled rules the warm-up loaded (a walk of all that took 140-150 ms, twice in a
renderer worker's first 100 documents). Asked of real workers, from inside them."""

from __future__ import annotations

import gc

import pytest

from invoice_pipelines.documents.domain.build import WARM_UP as RENDERER_WARM_UP
from invoice_pipelines.einvoice.verdict import WARM_UP as PARSER_WARM_UP
from invoice_pipelines.resources.workers.worker_pool import WorkerPool


def collector_counts(data: bytes, filename: str, **_options) -> tuple[int, int]:
    """Worker target: (objects frozen, objects a full collection would walk) in this worker."""
    return gc.get_freeze_count(), len(gc.get_objects(generation=2))


@pytest.mark.parametrize("warm_up", [RENDERER_WARM_UP, PARSER_WARM_UP], ids=["renderer", "parser"])
def test_a_warm_worker_leaves_what_it_loaded_out_of_full_collections(warm_up) -> None:
    with WorkerPool(
        workers=1,
        target=f"{__name__}:collector_counts",
        warm_up=warm_up,
        memory_bytes=0,
    ) as pool:
        assert pool.wait_ready() == []
        frozen, walked = pool.parse(b"-", "probe")
    assert frozen > 50_000
    assert walked < frozen // 20


def test_a_worker_without_a_warm_up_freezes_nothing() -> None:
    with WorkerPool(workers=1, target=f"{__name__}:collector_counts", memory_bytes=0) as pool:
        frozen, _ = pool.parse(b"-", "probe")
    assert frozen == 0
