"""What the queue's tests share: the console script handing its commands a test's own kinds (and
resources) beside the areas', for one test only."""

from __future__ import annotations

import pytest

from invoice_pipelines.queue.job_kind import JobKind


@pytest.fixture
def commands_given(monkeypatch):
    """`commands_given(KIND, ..., name=factory)`: for this test, every command gets the areas'
    kinds and these (`args.resources.batch_kinds`, as if an area brought them) and the resources
    named beside the areas' table (`args.resources.<name>`)."""
    from invoice_pipelines import areas
    from invoice_pipelines.queue.known_kinds import KINDS_RESOURCE

    def given(*kinds: JobKind, **factories) -> None:
        table = areas.command_resources()
        known = areas.kinds().with_kinds(kinds)
        monkeypatch.setattr(
            areas,
            "command_resources",
            lambda: {**table, **factories, KINDS_RESOURCE: lambda: known},
        )

    return given
