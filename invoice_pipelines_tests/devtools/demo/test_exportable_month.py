"""The demo has a month a newcomer can export from the UI (issue 56).

The export assets' month partitions end with the last complete month, and the demo's supplier
invoices were all dated in the days before the seeding, mostly in the running month: picking the
organization and the month the UI offers exported nothing. Now the demo dates some of its supplier
invoices, and some of its sales invoices, in the last closed month, relative to the day it is
seeded. PostgreSQL and SQLite.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance, MultiPartitionKey
from sqlalchemy import select

from invoice_pipelines.db.tables import incoming_invoices, uploads
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.definitions import build_definitions
from invoice_pipelines.exports.partitions import MONTH_DIMENSION
from invoice_pipelines.intake.domain.pipeline import process_documents
from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME, organization_tags
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines_devtools.demo.invoices import demo_invoice_set, in_last_closed_month
from invoice_pipelines_devtools.demo.seed import (
    DEMO_OVERDUE,
    DEMO_UPLOAD_ORGANIZATION,
    seed_demo,
    seed_demo_uploads,
)
from invoice_pipelines_tests.exports.datev_reader import read_extf
from invoice_pipelines_tests.exports.test_intake_to_export import InProcessParser

ORGANIZATION = DEMO_UPLOAD_ORGANIZATION  # mueller-werkzeugbau: German, books with DATEV
EXPORTS = ("incoming_invoice_exports", "sales_invoice_exports")


def _month(day: date) -> str:
    return f"{day:%Y-%m}"


def _month_before(day: date) -> str:
    return _month(day.replace(day=1) - timedelta(days=1))


def test_every_day_of_the_year_the_demo_dates_invoices_in_the_last_closed_month():
    """Whatever day `make run` seeds the demo (leap years and month ends included), the month
    before holds demo supplier invoices and one of the overdue sales invoices."""
    day = date(2027, 1, 1)
    while day < date(2029, 1, 1):
        closed = _month_before(day)
        supplier = [_month(d.invoice.issue_date) for d in demo_invoice_set(day)]
        assert supplier.count(closed) >= 2, day
        sales = [_month(day - timedelta(days=days_ago)) for days_ago, _, _ in DEMO_OVERDUE]
        assert closed in sales, day
        day += timedelta(days=1)
    with pytest.raises(ValueError):
        in_last_closed_month(date(2027, 3, 31), 29)


def _intake_the_demo_uploads(db, root: Path) -> None:
    """What upload_sensor and intake_job do with the demo's supplier invoices of
    mueller-werkzeugbau (the scan left out: OCR has tests of its own)."""
    keys = seed_demo_uploads(root)
    settled = time.time() - 120  # as if seed-demo ran a while ago
    for key in keys:
        os.utime(root / key, (settled, settled))
    store = LocalUploads(str(root))
    scan = scan_uploads(
        db.engine, store, ScanState(), system=db.system_engine, only_organizations={ORGANIZATION}
    )
    org = find_organization(db.engine, ORGANIZATION)
    with tenant_transaction(db.engine, org.id) as conn:
        ids = list(
            conn.execute(
                select(incoming_invoices.c.id)
                .join(uploads, uploads.c.id == incoming_invoices.c.upload_id)
                .where(
                    incoming_invoices.c.organization_id == org.id,
                    incoming_invoices.c.id.in_([i for b in scan.batches for i in b.document_ids]),
                    ~uploads.c.filename.like("%.png"),
                )
            ).scalars()
        )
    assert len(ids) == 3
    summary = process_documents(db.engine, store, org, ids, parser=InProcessParser(), ocr=None)
    assert summary.outcomes == {"VALIDATED": 3}, summary


def test_a_newcomer_exports_the_demo_month_the_ui_offers(fresh_db, tmp_path, monkeypatch):
    db = fresh_db
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    monkeypatch.setenv("INVOICE_PIPELINES_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("INVOICE_PIPELINES_EXPORT_RUNNING_MONTH", raising=False)
    seed_demo(db.engine, system=db.system_engine)
    _intake_the_demo_uploads(db, tmp_path / "data" / "uploads")

    defs = build_definitions()
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(
        ORGANIZATIONS_PARTITIONS_NAME,
        ["mueller-werkzeugbau", "acme-office-supplies", "brandt-it-service"],
    )
    # the newest month the UI offers for the organization: the last closed one
    graph = defs.resolve_asset_graph()
    partitions = graph.get(AssetKey(EXPORTS[0])).partitions_def
    offered = [
        key.keys_by_dimension[MONTH_DIMENSION]
        for key in partitions.get_partition_keys(dynamic_partitions_store=instance)
        if key.keys_by_dimension[ORGANIZATIONS_PARTITIONS_NAME] == ORGANIZATION
    ]
    month = max(offered)
    assert month == _month_before(datetime.now(UTC).date())

    key = MultiPartitionKey({ORGANIZATIONS_PARTITIONS_NAME: ORGANIZATION, MONTH_DIMENSION: month})
    result = defs.resolve_job_def("export_job").execute_in_process(
        instance=instance, partition_key=str(key), tags=organization_tags(ORGANIZATION)
    )

    assert result.success
    for asset in EXPORTS:
        [event] = [
            e for e in result.get_asset_materialization_events() if e.asset_key == AssetKey(asset)
        ]
        shown = {k: v.value for k, v in event.materialization.metadata.items()}
        assert shown["invoices"] > 0 and shown["bookings"] > 0, (asset, shown)
        assert shown["skipped"] == 0, (asset, shown)
        # the files a person downloads: an invoices CSV and a DATEV Buchungsstapel, both with rows
        invoices = pd.read_csv(shown["csv_file"], dtype=str)
        assert len(invoices) == shown["invoices"], asset
        lines = read_extf(Path(shown["datev_file"]).read_bytes())
        header, columns, bookings = lines[0], lines[1], lines[2:]
        assert header and columns and len(bookings) == shown["bookings"], asset
