"""A separate process that calls QBO for an organization at a given moment (refresh race test).

Usage: python -m invoice_pipelines_tests.quickbooks.refresh_worker DB_URL ORG_ID BASE_URL
TOKEN_URL KEY START_EPOCH; prints "ok" or the error.
"""

from __future__ import annotations

import sys
import time

from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.quickbooks.domain.sync.common import QboSettings, open_client


def main(argv: list[str]) -> int:
    url, org_id, base_url, token_url, key, start = argv
    engine = make_engine(url)
    settings = QboSettings(base_url=base_url, token_url=token_url, token_key=key)
    client = open_client(engine, int(org_id), settings)
    time.sleep(max(0.0, float(start) - time.time()))
    try:
        client.get("CompanyInfo", "1")
    except Exception as exc:  # noqa: BLE001 - the parent test reads what happened
        print(f"error: {exc}")
        return 1
    finally:
        client.close()
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
