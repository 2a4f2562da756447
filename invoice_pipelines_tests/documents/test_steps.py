"""How a run's invoices are cut into build and record steps and into messages to the workers:
every invoice once, in order; small first and last steps; smaller messages at a step's end."""

from __future__ import annotations

import logging

import pytest

from invoice_pipelines.documents.domain import build
from invoice_pipelines.documents.domain.pipeline import EDGE_BATCH, steps_of
from invoice_pipelines.documents.domain.renderer import GROUP, groups_of


@pytest.mark.parametrize("count", [0, 1, 8, 16, 17, 49, 50, 51, 120, 200, 1001])
@pytest.mark.parametrize("batch_size", [1, 8, 50])
def test_every_invoice_is_in_one_step_in_order(count: int, batch_size: int) -> None:
    todo = list(range(100, 100 + count))
    steps = steps_of(todo, batch_size)
    assert [i for step in steps for i in step] == todo
    assert all(0 < len(step) <= batch_size for step in steps)


def test_a_run_of_several_steps_starts_and_ends_small() -> None:
    sizes = [len(step) for step in steps_of(list(range(200)), 50)]
    assert sizes == [EDGE_BATCH, 50, 50, 50, 200 - 150 - 2 * EDGE_BATCH, EDGE_BATCH]
    # one step (a queue job's chunk) stays one step
    assert [len(step) for step in steps_of(list(range(40)), 40)] == [40]


@pytest.mark.parametrize("count", [0, 1, 3, 10, 50, 200])
@pytest.mark.parametrize("workers", [1, 2, 4])
def test_messages_get_smaller_towards_the_end(count: int, workers: int) -> None:
    sizes = groups_of(count, workers)
    assert sum(sizes) == count
    assert all(1 <= size <= GROUP for size in sizes)
    assert sizes == sorted(sizes, reverse=True)
    if count >= 2 * workers * GROUP:
        assert sizes[0] == GROUP and sizes[-workers:] == [1] * workers


def test_the_warm_up_document_proves(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger=build.__name__):
        build.warm_up()
    assert "warm-up document" not in caplog.text


def test_a_warm_up_document_that_cannot_be_built_does_not_stop_the_worker(
    monkeypatch, caplog
) -> None:
    """The worker starts anyway; each real document meets the problem and fails on its own."""

    def broken(source, **_):
        raise FileNotFoundError("no font here")

    monkeypatch.setattr(build, "build_document", broken)
    with caplog.at_level(logging.WARNING, logger=build.__name__):
        build.warm_up()
    assert "warm-up document could not be built: FileNotFoundError: no font here" in caplog.text
