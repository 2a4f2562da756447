"""German VAT ids no other organization of the test database has: two organizations may not
share one (issue 83), and the test database outlives a test."""

from __future__ import annotations

import uuid

from invoice_pipelines.core.vat_ids import vat_id_problem


def fresh_vat_id() -> str:
    """A well-formed DE VAT id (its check digit right) from a random base."""
    base = f"{uuid.uuid4().int % 10**8:08d}"
    return next(
        f"DE{base}{digit}"
        for digit in range(10)
        if vat_id_problem(f"DE{base}{digit}", "DE") is None
    )
