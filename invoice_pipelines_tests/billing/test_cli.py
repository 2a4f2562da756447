"""`invoice-pipelines batch-invoice`, `batch-status` and the batch-invoicing benchmark, end to end."""

import argparse
import json

import pytest

from invoice_pipelines.billing.cli import run_batch_cancel, run_batch_retry
from invoice_pipelines.billing.queue import enqueue_sales_orders, get_batch_job
from invoice_pipelines.cli import main
from invoice_pipelines.db.tables import items
from invoice_pipelines_tests.billing.shop import make_shop


@pytest.fixture
def cli_db(db, monkeypatch):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    return db


def test_batch_invoice_wait_shows_progress_and_a_summary(cli_db, capsys):
    shop = make_shop(cli_db)
    orders = shop.add_orders(3)
    draft = shop.add_order([("TOOL", 1)], status="draft")
    ids = ",".join(str(o) for o in [*orders, draft])
    code = main(
        ["batch-invoice", "--org", shop.org["slug"], "--orders", ids, "--due-days", "14", "--wait"]
    )
    out, err = capsys.readouterr()
    job_id = int(out.splitlines()[0])  # the id comes first, at once
    assert code == 1  # finished, but one order failed
    assert "4/4 orders (100%) 3 invoiced, 1 failed" in err
    assert f"batch job {job_id} (sales orders) for {shop.org['slug']}: completed_with_errors" in out
    assert f"order {draft}: wrong_status: order status is draft" in out
    assert f"invoice-pipelines batch-retry {job_id}" in out
    job = get_batch_job(cli_db.engine, job_id)
    assert (job.successful_count, job.due_days) == (3, 14)
    assert job.runner.startswith("cli:")


def test_batch_invoice_without_wait_only_enqueues(cli_db, capsys):
    shop = make_shop(cli_db)
    shop.add_orders(2)
    assert (
        main(
            ["batch-invoice", "--org", str(shop.org_id), "--all-reviewed", "--up-to", "2026-12-31"]
        )
        == 0
    )
    out, err = capsys.readouterr()
    job = get_batch_job(cli_db.engine, int(out.strip()))
    assert (job.status, job.runner) == ("pending", None)  # for the sensor
    assert "batch-status" in err

    assert main(["batch-status", str(job.id)]) == 0
    assert ": pending" in capsys.readouterr().out


def test_clear_messages_for_bad_requests(cli_db, capsys):
    shop = make_shop(cli_db)
    assert main(["batch-invoice", "--org", "no-such-org", "--orders", "1"]) == 2
    assert "no organization 'no-such-org'" in capsys.readouterr().err
    assert main(["batch-invoice", "--org", shop.org["slug"], "--orders", "1,x"]) == 2
    assert "positive integers" in capsys.readouterr().err
    assert (
        main(
            [
                "batch-invoice",
                "--org",
                shop.org["slug"],
                "--all-reviewed",
                "--invoice-date",
                "1.12.",
            ]
        )
        == 2
    )
    assert "date like" in capsys.readouterr().err
    assert main(["batch-status", "999999999"]) == 2
    assert "no batch job 999999999" in capsys.readouterr().err


def test_cancel_and_retry_commands(cli_db, capsys):
    shop = make_shop(cli_db)
    job_id = enqueue_sales_orders(cli_db.engine, shop.org_id, order_ids=shop.add_orders(1))
    assert run_batch_cancel(argparse.Namespace(job_id=job_id, created_by="me")) == 0
    assert ": cancelled" in capsys.readouterr().out

    blocked = shop.add_order([("BOOK", 1)])
    shop.set_active(items, shop.item_ids["BOOK"], False)
    main(["batch-invoice", "--org", shop.org["slug"], "--orders", str(blocked), "--wait"])
    failed_id = int(capsys.readouterr().out.splitlines()[0])
    assert run_batch_retry(argparse.Namespace(job_id=failed_id, created_by="me")) == 0
    retry = get_batch_job(cli_db.engine, int(capsys.readouterr().out.strip()))
    assert (retry.retry_of_job_id, retry.total_count, retry.status) == (failed_id, 1, "pending")


def test_benchmark_prints_one_json_line(cli_db, capsys):
    assert main(["bench", "batch-invoicing", "--orders", "40", "--chunk-size", "15"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    assert result["orders"] == result["invoices_created"] == 40
    assert (
        result["gapless"] is True
        and result["exactly_once"] is True
        and result["totals_consistent"] is True
    )
    assert result["db"] == cli_db.kind
    assert result["orders_per_s"] > 0 and result["seed_seconds"] >= 0


def test_legacy_loop_benchmark_reproduces_the_old_design(pg_database, monkeypatch, capsys):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", pg_database.url)
    assert main(["bench", "batch-invoicing", "--orders", "25", "--legacy-loop"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["mode"] == "legacy-loop"
    assert (
        result["invoices_created"] == 25
        and result["gapless"] is True
        and result["totals_consistent"] is True
    )
