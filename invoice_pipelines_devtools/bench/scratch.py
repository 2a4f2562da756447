"""Fresh organizations for a benchmark: `count` of them named `<prefix>-<tag>-<i>`, added in one
statement through the system login. They stay (benchmarks run on a scratch database)."""

from __future__ import annotations

import uuid


def scratch_organizations(system, prefix: str, count: int) -> tuple[list[str], list[int], str]:
    """(slugs, ids, the pattern naming them all) of `count` new organizations."""
    from invoice_pipelines.db.tables import organizations
    from invoice_pipelines.db.tenancy import system_transaction

    tag = uuid.uuid4().hex[:8]
    slugs = [f"{prefix}-{tag}-{i}" for i in range(count)]
    with system_transaction(system, write=True) as conn:
        ids = conn.scalars(
            organizations.insert()
            .values([{"slug": s, "name": s} for s in slugs])
            .returning(organizations.c.id)
        ).all()
    return slugs, list(ids), f"{prefix}-{tag}-*"
