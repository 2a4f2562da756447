"""What the queue's tests share: the console script handing its commands a test's own kinds (and
resources) beside the areas', for one test only."""

from __future__ import annotations

import pytest

from invoice_pipelines.queue.domain.job_kind import JobKind


@pytest.fixture
def commands_given(monkeypatch):
    """`commands_given(KIND, ..., name=factory)`: for this test, every command gets the areas'
    kinds and these (`args.resources.batch_kinds`, as if an area brought them) and the resources
    named beside the areas' table (`args.resources.<name>`)."""
    from invoice_pipelines import areas, cli
    from invoice_pipelines.queue.domain.known_kinds import KINDS_RESOURCE

    def given(*kinds: JobKind, **factories) -> None:
        table = areas.command_resources()
        known = areas.kinds().with_kinds(kinds)

        def with_these() -> dict:
            return {**table, **factories, KINDS_RESOURCE: lambda: known}

        # areas.py's table, and the name the console script imported it by (cli.py's top)
        monkeypatch.setattr(areas, "command_resources", with_these)
        monkeypatch.setattr(cli, "command_resources", with_these)

    return given
