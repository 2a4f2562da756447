"""What the queue's tests share: a registry of the command line's kinds of their own, so that a
kind a test registers (`register`) is gone after it."""

from __future__ import annotations

import pytest

from invoice_pipelines.queue import registry


@pytest.fixture
def own_registrations(monkeypatch):
    """The kinds registered for the command line during the test are forgotten after it
    (`register` writes `queue.registry._LOADERS`)."""
    monkeypatch.setattr(registry, "_LOADERS", dict(registry._LOADERS))
