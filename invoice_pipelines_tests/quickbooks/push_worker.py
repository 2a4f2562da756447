"""A QuickBooks push run in a process of its own, for the tests that kill one mid-push.

Usage: python -m invoice_pipelines_tests.quickbooks.push_worker DB_URL ORG_ID BASE_URL TOKEN_URL
KEY TIME_SCALE; runs `push_invoices` (invoices, credit notes, discounts) without the
organization's lease and prints its counts as JSON.
"""

from __future__ import annotations

import json
import sys

from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines.quickbooks.domain.sync.common import QboSettings, open_client
from invoice_pipelines.quickbooks.domain.sync.invoices import push_invoices


def main(argv: list[str]) -> int:
    url, org_id, base_url, token_url, key, time_scale = argv
    engine = make_engine(url)
    settings = QboSettings(
        base_url=base_url, token_url=token_url, token_key=key, time_scale=float(time_scale)
    )
    with open_client(engine, int(org_id), settings) as client:
        counts = push_invoices(engine, find_organization(engine, int(org_id)), client)
    print(json.dumps(counts.as_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
