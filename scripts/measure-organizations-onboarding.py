"""Onboarding N organizations from one CSV on PostgreSQL (issue 75): `invoice-pipelines
organizations add --csv` timed as a person runs it (a process of its own, its partitions written
into a Dagster instance on the same server), the same file a second time, `organizations list`,
then `organizations_sensor`'s ticks over the N organizations (the first one on an instance
without their partitions, a quiet one, one without cursor). Scratch databases, dropped at the
end. Prints one JSON line. A measurement for the docs, not a test.

    .venv/bin/python scripts/measure-organizations-onboarding.py --orgs 10000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PG = os.environ.get("INVOICE_PIPELINES_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
HEADER = "slug,name,country,vat_id,tax_number,datev_berater_nr,datev_mandant_nr,datev_chart,invoice_number_format"


def _scratch(stack: ExitStack, admin, name: str) -> str:
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    stack.callback(drop)
    return PG.rsplit("/", 1)[0] + f"/{name}"


def _timed_command(argv: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "invoice_pipelines.cli", *argv],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return round(time.perf_counter() - start, 2), done.stdout.strip().splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orgs", type=int, default=10000)
    args = parser.parse_args()

    from dagster import build_sensor_context
    from sqlalchemy import create_engine

    from invoice_pipelines.db.engine import make_engine
    from invoice_pipelines.db.migrate import upgrade
    from invoice_pipelines.resources.database.engines import Database, SystemDatabase
    from invoice_pipelines.tenants.sensors import organizations_sensor
    from invoice_pipelines_devtools.demo.invoices import german_vat_id

    work = Path(tempfile.mkdtemp(prefix="onboarding-"))
    csv = work / "organizations.csv"
    csv.write_text(
        "\n".join(
            [HEADER]
            + [
                # each its own VAT id: two organizations may not share one (issue 83)
                f"mandant-{i:05d},Mandant {i} GmbH,DE,{german_vat_id(f'{10_000_000 + i:08d}')},"
                f"201/113/{40000 + i},29098,"
                f"{i % 99999 + 1},SKR0{3 + i % 2},RE-{{year}}-{{counter:06d}}"
                for i in range(args.orgs)
            ]
        )
        + "\n"
    )
    figures: dict = {"orgs": args.orgs}
    admin = create_engine(PG, isolation_level="AUTOCOMMIT")
    with ExitStack() as stack:
        tag = uuid.uuid4().hex[:8]
        app_url = _scratch(stack, admin, f"onboarding_{tag}")
        dagster_url = _scratch(stack, admin, f"onboarding_{tag}_dagster")
        upgrade(make_engine(app_url, owner=True))
        home = work / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text(
            json.dumps({"storage": {"postgres": {"postgres_url": dagster_url}}})
        )
        env = {
            **os.environ,
            "INVOICE_PIPELINES_DB_URL": app_url,
            "INVOICE_PIPELINES_ALLOW_OWNER_RUNTIME": "true",
            "INVOICE_PIPELINES_DAGSTER_URL": "",
            "DAGSTER_HOME": str(home),
        }
        figures["add_s"], figures["add_says"] = _timed_command(
            ["organizations", "add", "--csv", str(csv)], env
        )
        figures["add_again_s"], figures["add_again_says"] = _timed_command(
            ["organizations", "add", "--csv", str(csv)], env
        )
        figures["list_s"], figures["list_says"] = _timed_command(["organizations", "list"], env)

        # the sensor on an instance of its own without the partitions (the worst tick), then
        # a quiet tick and one without cursor
        from invoice_pipelines_devtools.bench.tenants import _instance

        os.environ["INVOICE_PIPELINES_ALLOW_OWNER_RUNTIME"] = "true"
        instance = _instance(stack, app_url, work)
        cursor = None
        for name, given in (
            ("tick_adding_all_s", None),
            ("quiet_tick_s", "cursor"),
            ("tick_in_step_s", None),
        ):
            start = time.perf_counter()
            with build_sensor_context(
                instance=instance,
                cursor=cursor if given else None,
                resources={
                    "database": Database(url=app_url),
                    "system_database": SystemDatabase(url=app_url),
                },
            ) as context:
                organizations_sensor(context)
            figures[name] = round(time.perf_counter() - start, 3)
            cursor = context.cursor
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
