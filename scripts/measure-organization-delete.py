"""How long deleting one organization takes (`DELETE FROM organizations WHERE id = ...`, which
cascades to every row of it), with N uploads, incoming invoices, sales invoices and export items.
A measurement for the README and migration 0011, not a test. Prints one JSON line.

Needs an empty scratch database (it is migrated to --revision first):

    createdb -h 127.0.0.1 -U postgres orgdelete
    INVOICE_PIPELINES_DB_URL=postgresql+psycopg2://postgres@127.0.0.1:5432/orgdelete \\
        .venv/bin/python scripts/measure-organization-delete.py --n 20000 --revision 0010

Two organizations get the same data (the other one stays, so the tables are not only the deleted
organization's rows); one of them is deleted and the delete is timed, then rolled back and repeated
(--repeat), so the same database can be timed again after `--revision head`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import text  # noqa: E402

from invoice_pipelines.db.engine import make_engine  # noqa: E402
from invoice_pipelines.db.migrate import current_revision, upgrade  # noqa: E402

# one organization's rows; :org is its id, :n the number of uploads and invoices of each kind
FILL = [
    """INSERT INTO uploads (organization_id, filename, storage_key, size_bytes, content_hash, status)
       SELECT :org, 'f' || g || '.pdf', 'k/' || g, 1000, md5(g::text), 'registered'
       FROM generate_series(1, :n) g""",
    """INSERT INTO incoming_invoices (organization_id, upload_id, status, content_hash)
       SELECT :org, u.id, 'EXPORTED', u.content_hash FROM uploads u WHERE u.organization_id = :org""",
    """UPDATE uploads u SET incoming_invoice_id = i.id FROM incoming_invoices i
       WHERE i.upload_id = u.id AND u.organization_id = :org""",
    # every tenth upload a duplicate of another one
    """INSERT INTO uploads (organization_id, filename, storage_key, size_bytes, content_hash, status,
                            duplicate_of_upload_id, incoming_invoice_id)
       SELECT :org, 'dup' || u.id, 'd/' || u.id, 1000, u.content_hash, 'duplicate', u.id,
              u.incoming_invoice_id
       FROM uploads u WHERE u.organization_id = :org AND u.id % 10 = 0""",
    """INSERT INTO customers (organization_id, customer_number, name)
       SELECT :org, 'C' || g, 'Customer ' || g FROM generate_series(1, 100) g""",
    """INSERT INTO items (organization_id, sku, name, unit_price, vat_rate)
       SELECT :org, 'SKU' || g, 'Item ' || g, 10, 19 FROM generate_series(1, 500) g""",
    """INSERT INTO batch_jobs (organization_id, status)
       SELECT :org, 'completed' FROM generate_series(1, 200) g""",
    """INSERT INTO sales_orders (organization_id, order_number, customer_id, order_date, status)
       SELECT :org, 'SO' || g, (SELECT min(id) FROM customers WHERE organization_id = :org),
              DATE '2026-01-15', 'invoiced'
       FROM generate_series(1, :n) g""",
    """INSERT INTO sales_order_lines (organization_id, sales_order_id, line_no, item_id, description,
                                     quantity, unit_price, vat_rate)
       SELECT :org, o.id, 1, (SELECT min(id) FROM items WHERE organization_id = :org) + o.id % 500,
              'line', 1, 10, 19
       FROM sales_orders o WHERE o.organization_id = :org""",
    """INSERT INTO sales_invoices (organization_id, invoice_number, sequence_number, sales_order_id,
                                  customer_id, batch_job_id, issue_date, due_date, currency,
                                  net_total, tax_total, gross_total, amount_due)
       SELECT :org, 'RE' || o.id, row_number() OVER (ORDER BY o.id), o.id, o.customer_id,
              (SELECT min(id) FROM batch_jobs WHERE organization_id = :org) + o.id % 200,
              DATE '2026-01-15', DATE '2026-01-29', 'EUR', 10, 1.9, 11.9, 11.9
       FROM sales_orders o WHERE o.organization_id = :org""",
    """INSERT INTO exports (organization_id, direction, period, version, fingerprint)
       VALUES (:org, 'incoming', '2026-01', 1, 'x'), (:org, 'sales', '2026-01', 1, 'y')""",
    """INSERT INTO export_items (organization_id, export_id, incoming_invoice_id, status)
       SELECT :org, e.id, i.id, 'exported' FROM incoming_invoices i
       JOIN exports e ON e.organization_id = :org AND e.direction = 'incoming'
       WHERE i.organization_id = :org""",
    """INSERT INTO export_items (organization_id, export_id, sales_invoice_id, status)
       SELECT :org, e.id, s.id, 'exported' FROM sales_invoices s
       JOIN exports e ON e.organization_id = :org AND e.direction = 'sales'
       WHERE s.organization_id = :org""",
]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--revision", default="head", help="migrate the database to this first")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if "INVOICE_PIPELINES_DB_URL" not in os.environ:
        parser.error("set INVOICE_PIPELINES_DB_URL to a scratch PostgreSQL database")
    engine = make_engine(owner=True)
    upgrade(engine, args.revision)
    with engine.begin() as conn:
        orgs = (
            conn.execute(
                text("SELECT id FROM organizations WHERE slug LIKE 'orgdelete-%' ORDER BY id")
            )
            .scalars()
            .all()
        )
        if not orgs:
            for name in ("orgdelete-a", "orgdelete-b"):
                org = conn.execute(
                    text("INSERT INTO organizations (slug, name) VALUES (:s, :s) RETURNING id"),
                    {"s": name},
                ).scalar_one()
                for statement in FILL:
                    conn.execute(text(statement), {"org": org, "n": args.n})
                orgs.append(org)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    victim = orgs[0]
    with engine.connect() as conn:
        counts = {
            table: conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE organization_id = :o"), {"o": victim}
            ).scalar_one()
            for table in ("uploads", "incoming_invoices", "sales_invoices", "export_items")
        }
    seconds = []
    for _ in range(args.repeat):
        with engine.connect() as conn:
            transaction = conn.begin()
            start = time.perf_counter()
            conn.execute(text("DELETE FROM organizations WHERE id = :o"), {"o": victim})
            seconds.append(round(time.perf_counter() - start, 3))
            transaction.rollback()
    print(
        json.dumps(
            {
                "revision": current_revision(engine),
                "rows_of_the_deleted_organization": counts,
                "delete_seconds": seconds,
                "load": os.getloadavg(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
