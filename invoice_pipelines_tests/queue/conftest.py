"""What the queue's tests share: kinds of their own registered for one test only, so that a kind
a test registers (or a `build_defs` of its kinds registers) is gone after it."""

from __future__ import annotations

import pytest

from invoice_pipelines_tests.queue.registrations import register_each, registry_restored


@pytest.fixture
def register_kinds():
    """`register_kinds(KIND, ...)`: the kinds are known to the process during the test only; what
    else the test registers (`register`, `build_defs`) is forgotten after it too."""
    with registry_restored():
        yield register_each
