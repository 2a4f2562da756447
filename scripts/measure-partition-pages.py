"""How usable the UI's partition pages are with many organizations: a Dagster instance (SQLite, as
`make run`) with N organization partitions, the project's webserver, and the system Chromium timing
how long the `incoming_invoices` partitions page and the batch invoicing launchpad's partition picker
take to show. Prints one JSON line. A measurement for the README, not a test.

    .venv/bin/python scripts/measure-partition-pages.py --orgs 10000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from invoice_pipelines_devtools.browser import local_ui  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orgs", type=int, default=10000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="partition-pages-"))
    os.environ["INVOICE_PIPELINES_DB_URL"] = local_ui.migrated_sqlite(work / "app.sqlite3")
    home = work / "dagster_home"
    env = dict(os.environ)
    local_ui.write_instance(home)

    from dagster import DagsterInstance

    os.environ["DAGSTER_HOME"] = str(home)
    keys = [f"org-{i:05d}" for i in range(args.orgs)]
    with DagsterInstance.get() as instance:
        start = time.perf_counter()
        instance.add_dynamic_partitions("organizations", keys)
        added = time.perf_counter() - start
    out = {"organizations": args.orgs, "partitions_add_seconds": round(added, 2)}
    with local_ui.webserver(home, env, work / "webserver.log") as server:
        server.wait_until_up()
        with local_ui.browser_page() as page:
            page.goto(f"{server.base}/assets/incoming_invoices?view=partitions")
            local_ui.skip_community_dialog(page)
            start = time.perf_counter()
            page.goto(f"{server.base}/assets/incoming_invoices?view=partitions")
            # the list is virtualized: the first keys are drawn, the count says how many there are
            page.get_by_text(keys[0], exact=True).first.wait_for(timeout=120_000)
            out["partitions_page_seconds"] = round(time.perf_counter() - start, 2)
            out["count_shown"] = page.get_by_text(f"{args.orgs:,}").count() > 0
            page.screenshot(path=str(work / "partitions.png"))
            start = time.perf_counter()
            page.get_by_placeholder("Filter by name").first.fill(keys[-1], timeout=30_000)
            page.get_by_text(keys[-1], exact=True).first.wait_for(timeout=60_000)
            out["filter_to_last_seconds"] = round(time.perf_counter() - start, 2)
            start = time.perf_counter()
            page.goto(f"{server.base}/assets/incoming_invoices")
            page.get_by_text("Materialize").first.wait_for(timeout=120_000)
            out["asset_page_seconds"] = round(time.perf_counter() - start, 2)
    out["screenshot"] = str(work / "partitions.png")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
