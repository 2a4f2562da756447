"""Credit notes through the batch jobs queue (kind `credit_notes`), on both databases: good and bad
items in one job, refusals recorded per item, a crashed run resumed and a finished job retried
without a credit note issued twice, two runners at once, cancel, the launchpad, the sensor and the
command line."""

from __future__ import annotations

import json
import threading
from decimal import Decimal

import pytest
from dagster import build_sensor_context
from sqlalchemy import insert, select

from invoice_pipelines.billing.domain import credit_note_jobs
from invoice_pipelines.billing.domain.check_queries import number_gaps, totals_problems
from invoice_pipelines.billing.domain.credit_note_jobs import (
    enqueue_credit_notes,
    run_credit_note_job,
)
from invoice_pipelines.cli import main
from invoice_pipelines.db.tables import batch_job_items, batch_jobs
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.queue.domain.items import ready_invoice_jobs
from invoice_pipelines.queue.domain.jobs import cancel_batch_job, get_batch_job, retry_failed
from invoice_pipelines.queue.domain.requests import BatchRequestError
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines_tests.billing.shop import make_shop
from invoice_pipelines_tests.billing.test_credit_notes import LATER, by_number, invoiced
from invoice_pipelines_tests.billing.test_defs import refusal
from invoice_pipelines_tests.delivery.test_batch_defs import _defs, _instance
from invoice_pipelines_tests.queue import kinds as queue

D = Decimal


def credit_notes_of(shop) -> list[dict]:
    """The organization's credit notes in number order."""
    return sorted(
        (i for i in shop.invoices() if i["type_code"] == "381"), key=lambda i: i["invoice_number"]
    )


def items_of(shop, job_id: int) -> list[tuple]:
    c = batch_job_items.c
    with tenant_transaction(shop.engine, shop.org_id) as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(c.position, c.status, c.error_code, c.sales_invoice_id)
                .where(c.batch_job_id == job_id)
                .order_by(c.position)
            )
        ]


def series(shop) -> dict:
    with tenant_transaction(shop.engine, shop.org_id) as conn:
        return number_gaps(conn, shop.org_id)["credit_notes"]


def four_invoices(shop) -> list[str]:
    """Four invoices of 2 x 24.90 at 19 % and 39.95 at 7 % (gross 102.01 each)."""
    return [i["invoice_number"] for i in invoiced(shop, *([[("TOOL", 2), ("BOOK", 1)]] * 4))]


def test_good_items_are_issued_and_bad_ones_recorded_with_their_reason(db):
    shop = make_shop(db)
    a, b, c, d = four_invoices(shop)
    items = [
        {"invoice_number": a, "reason": "Storno"},
        {"invoice_number": "RE-NOPE", "reason": "typo"},
        {"invoice_number": b, "reason": "Kulanz", "amounts": "19=10.00,7=5.00"},
        {
            "invoice_number": c,
            "reason": "zu viel",
            "amounts": [{"vat_rate": "7", "net_amount": "50"}],
        },
        {"invoice_number": a, "reason": "noch einmal"},  # item 1 credited it in full
        {"invoice_number": d, "reason": "ein Werkzeug zurück", "lines": "1:1"},
        {"invoice_number": c, "reason": "falscher Satz", "amounts": {"16": "1.00"}},
    ]
    job_id = enqueue_credit_notes(
        db.engine,
        find_organization(db.engine, shop.org["slug"]),
        items,
        issue_date=LATER,
        created_by="anna",
    )

    job = run_credit_note_job(db.engine, job_id, system=db.system_engine, chunk_size=3)

    assert (job.status, job.total_count, job.successful_count, job.failed_count) == (
        "completed_with_errors",
        7,
        3,
        4,
    )
    notes = credit_notes_of(shop)
    assert [(n["invoice_number"], n["gross_total"]) for n in notes] == [
        ("GS-2026-000001", D("102.01")),
        ("GS-2026-000002", D("17.25")),  # 10.00 + 1.90, 5.00 + 0.35
        ("GS-2026-000003", D("29.63")),  # 24.90 + 19 %
    ]
    assert {n["batch_job_id"] for n in notes} == {job_id}
    assert {n["created_by"] for n in notes} == {"anna"}
    assert [(p, s, code) for p, s, code, _ in items_of(shop, job_id)] == [
        (1, "succeeded", None),
        (2, "failed", "unknown_invoice"),
        (3, "succeeded", None),
        (4, "failed", "more_than_left"),
        (5, "failed", "credited_in_full"),
        (6, "succeeded", None),
        (7, "failed", "unknown_rate"),
    ]
    # each item points to the credit note it issued
    assert [n for _, s, _, n in items_of(shop, job_id) if s == "succeeded"] == [
        n["id"] for n in notes
    ]
    # what a user reads in the job's errors: which invoice, and what to do about it
    assert [(e["position"], e["invoice_number"], e["code"]) for e in job.errors] == [
        (2, "RE-NOPE", "unknown_invoice"),
        (4, c, "more_than_left"),
        (5, a, "credited_in_full"),
        (7, c, "unknown_rate"),
    ]
    assert job.errors[1]["message"].startswith(
        "7 %: net 50.00 EUR is more than the 39.95 EUR net left to credit at 7 %"
    )
    assert f"invoice {c} has no VAT rate 16 %" in job.errors[3]["message"]
    assert series(shop)["gaps"] == [] and series(shop)["highest"] == 3
    assert by_number(shop, a)["amount_due"] == D("0.00")
    with tenant_transaction(db.engine, shop.org_id) as conn:
        assert totals_problems(conn, shop.org_id)["wrong"] == []


def test_a_request_that_cannot_be_read_is_refused_before_anything_is_queued(db):
    shop = make_shop(db)
    (number,) = four_invoices(shop)[:1]
    cases = [
        ([], "no credit notes given"),
        (
            [{"invoice_number": number, "reason": " "}],
            "credit note 1: a credit note needs a reason",
        ),
        (
            [
                {"invoice_number": number, "reason": "r"},
                {"invoice_number": number, "reason": "r", "lines": "1:1", "amounts": "19=1"},
            ],
            "credit note 2: give lines or amounts per VAT rate, not both",
        ),
        (
            [{"invoice_number": number, "reason": "r", "amounts": "19"}],
            "credit note 1: amounts '19'",
        ),
        ([{"invoice_number": number, "reason": "r", "quantity": 2}], "unknown field quantity"),
        (
            [{"invoice_number": number, "reason": "r", "issue_date": "3.12.2026"}],
            "issue_date must be a date",
        ),
    ]
    for items, message in cases:
        with pytest.raises(BatchRequestError, match=message):
            enqueue_credit_notes(db.engine, find_organization(db.engine, shop.org["slug"]), items)
    with tenant_transaction(db.engine, shop.org_id) as conn:
        kinds = conn.execute(
            select(batch_jobs.c.kind).where(batch_jobs.c.organization_id == shop.org_id)
        ).scalars()
        assert "credit_notes" not in set(kinds)


def test_an_item_inserted_by_another_application_that_cannot_be_read_fails_alone(db):
    shop = make_shop(db)
    a, b, *_ = four_invoices(shop)
    with tenant_transaction(db.engine, shop.org_id, write=True) as conn:
        job_id = conn.execute(
            insert(batch_jobs)
            .values(
                organization_id=shop.org_id,
                kind="credit_notes",
                request={
                    "items": [
                        {
                            "invoice_number": a,
                            "reason": "r",
                            "amounts": [{"vat_rate": 19, "net_amount": 1.5}],
                        },
                        "RE-2026-000002",
                        {
                            "invoice_number": b,
                            "reason": "r",
                            "lines": [{"line_no": 2, "quantity": "1"}],
                        },
                    ]
                },
                invoice_date=LATER,
                created_by="erp",
            )
            .returning(batch_jobs.c.id)
        ).scalar_one()

    job = run_credit_note_job(db.engine, job_id, system=db.system_engine)

    assert [(p, s, code) for p, s, code, _ in items_of(shop, job_id)] == [
        (1, "failed", "invalid_amounts"),  # a JSON number is a float: amounts are text
        (2, "failed", "invalid_item"),
        (3, "succeeded", None),
    ]
    assert "money must be Decimal, int or str" in job.errors[0]["message"]
    assert [n["gross_total"] for n in credit_notes_of(shop)] == [D("42.75")]


def test_a_run_that_dies_mid_item_is_resumed_and_issues_nothing_twice(db, monkeypatch):
    shop = make_shop(db)
    numbers = four_invoices(shop)
    items = [{"invoice_number": n, "reason": "Storno"} for n in numbers]
    job_id = enqueue_credit_notes(
        db.engine, find_organization(db.engine, shop.org["slug"]), items, issue_date=LATER
    )
    real = credit_note_jobs.issue_credit_note_in
    calls = []

    def dies_on_the_third(conn, *args, **kwargs):
        note = real(conn, *args, **kwargs)  # written, in the item's transaction
        calls.append(note.number)
        if len(calls) == 3:
            raise ConnectionError("server closed the connection unexpectedly")
        return note

    monkeypatch.setattr(credit_note_jobs, "issue_credit_note_in", dies_on_the_third)
    with pytest.raises(ConnectionError):
        run_credit_note_job(db.engine, job_id, system=db.system_engine, chunk_size=10)
    job = get_batch_job(db.engine, job_id)
    assert job.status == "failed"
    assert "ConnectionError" in job.failure_reason and "none is issued twice" in job.failure_reason
    # the third credit note was written but never committed: only the first two exist
    assert [n["invoice_number"] for n in credit_notes_of(shop)] == [
        "GS-2026-000001",
        "GS-2026-000002",
    ]
    assert [s for _, s, _, _ in items_of(shop, job_id)] == [
        "succeeded",
        "succeeded",
        "pending",
        "pending",
    ]

    monkeypatch.setattr(credit_note_jobs, "issue_credit_note_in", real)
    job = run_credit_note_job(
        db.engine, job_id, system=db.system_engine
    )  # the resume: Dagster's retry, the sensor, batch-run
    again = run_credit_note_job(
        db.engine, job_id, system=db.system_engine
    )  # and once more, after it finished

    assert (job.status, job.successful_count, job.failed_count) == ("completed", 4, 0)
    assert (again.status, again.successful_count) == ("completed", 4)
    notes = credit_notes_of(shop)
    assert [n["invoice_number"] for n in notes] == [f"GS-2026-{n:06d}" for n in range(1, 5)]
    assert sorted(n["corrects_invoice_id"] for n in notes) == sorted(
        by_number(shop, n)["id"] for n in numbers
    )
    assert series(shop) == {
        "invoices": 4,
        "highest": 4,
        "last_handed_out": 4,
        "gaps": [],
        "duplicates": 0,
    }
    assert {by_number(shop, n)["amount_due"] for n in numbers} == {D("0.00")}


def test_retrying_the_failed_items_issues_only_those(db, batch_kinds):
    shop = make_shop(db)
    a, b, *_ = four_invoices(shop)
    items = [
        {"invoice_number": a, "reason": "Kulanz", "amounts": "19=10.00"},
        {
            "invoice_number": b,
            "reason": "zu früh",
            "issue_date": "2026-11-01",
        },  # before the invoice
    ]
    job_id = enqueue_credit_notes(
        db.engine, find_organization(db.engine, shop.org["slug"]), items, issue_date=LATER
    )
    first = run_credit_note_job(db.engine, job_id, system=db.system_engine)
    assert (first.successful_count, first.failed_count) == (1, 1)
    assert first.errors[0]["code"] == "date_before_invoice"

    retry_id = retry_failed(
        db.engine, job_id, batch_kinds, system=db.system_engine, created_by="anna"
    )
    retried = run_credit_note_job(db.engine, retry_id, system=db.system_engine)

    # the retry asks for the failed credit note only, as it was asked for: refused again, and the
    # first one is not issued a second time
    assert (retried.total_count, retried.successful_count, retried.failed_count) == (1, 0, 1)
    assert [n["invoice_number"] for n in credit_notes_of(shop)] == ["GS-2026-000001"]
    with pytest.raises(BatchRequestError, match="already retried"):
        retry_failed(db.engine, job_id, batch_kinds, system=db.system_engine)


def test_two_runners_of_one_job_issue_each_credit_note_once(db):
    shop = make_shop(db)
    numbers = [i["invoice_number"] for i in invoiced(shop, *([[("TOOL", 2)]] * 8))]
    items = [
        {"invoice_number": n, "reason": "Preisminderung", "amounts": "19=1.00"} for n in numbers
    ]
    job_id = enqueue_credit_notes(
        db.engine, find_organization(db.engine, shop.org["slug"]), items, issue_date=LATER
    )
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def runner() -> None:
        try:
            start.wait()
            run_credit_note_job(db.engine, job_id, system=db.system_engine, chunk_size=2)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    job = get_batch_job(db.engine, job_id)
    assert (job.status, job.processed_count, job.successful_count) == ("completed", 8, 8)
    notes = credit_notes_of(shop)
    assert sorted(n["corrects_invoice_id"] for n in notes) == sorted(
        by_number(shop, n)["id"] for n in numbers
    )
    assert series(shop)["highest"] == 8 and series(shop)["gaps"] == []
    assert series(shop)["duplicates"] == 0


def test_a_cancel_stops_the_job_before_the_next_credit_note(db):
    shop = make_shop(db)
    numbers = four_invoices(shop)
    items = [{"invoice_number": n, "reason": "Storno"} for n in numbers]
    job_id = enqueue_credit_notes(
        db.engine, find_organization(db.engine, shop.org["slug"]), items, issue_date=LATER
    )

    def cancel_after_the_first(job) -> None:
        cancel_batch_job(db.engine, job.id, system=db.system_engine, cancelled_by="anna")

    job = run_credit_note_job(
        db.engine, job_id, system=db.system_engine, chunk_size=1, on_progress=cancel_after_the_first
    )

    assert (job.status, job.processed_count, job.successful_count) == ("cancelled", 1, 1)
    assert len(credit_notes_of(shop)) == 1
    assert [s for _, s, _, _ in items_of(shop, job_id)] == ["succeeded"] + ["pending"] * 3


def test_the_sensor_launches_a_queued_credit_notes_job(fresh_db, tmp_path, batch_kinds):
    db = fresh_db  # its own database: the sensor looks at every organization's queue
    shop = make_shop(db)
    (number,) = four_invoices(shop)[:1]
    job_id = enqueue_credit_notes(
        db.engine,
        find_organization(db.engine, shop.org["slug"]),
        [{"invoice_number": number, "reason": "r"}],
        issue_date=LATER,
    )
    assert [q.id for q in ready_invoice_jobs(db.engine, kinds=batch_kinds.run_by_the_queue())] == [
        job_id
    ]
    with build_sensor_context(
        instance=_instance(shop.org["slug"]),
        resources={"database": Database(url=db.url), "system_database": SystemDatabase(url=db.url)},
    ) as context:
        result = queue.invoice_batch_jobs_sensor(context)
    [request] = [r for r in result.run_requests if r.run_key == f"batch-job-{job_id}"]
    assert request.run_config["ops"][queue.OP]["config"]["request"] == {
        "queued_job": {"batch_job_id": job_id}
    }
    # the run it requests issues the credit note
    run = _defs(db, tmp_path).resolve_job_def("invoice_batch_job")
    result = run.execute_in_process(
        run_config=request.run_config, instance=_instance(shop.org["slug"]), tags=request.tags
    )
    assert result.success
    assert get_batch_job(db.engine, job_id).status == "completed"
    assert [n["invoice_number"] for n in credit_notes_of(shop)] == ["GS-2026-000001"]


def test_credit_notes_from_the_launchpad(db, tmp_path):
    shop = make_shop(db)
    a, b, *_ = four_invoices(shop)
    job = _defs(db, tmp_path).resolve_job_def("invoice_batch_job")
    request = {
        "credit_notes": {
            "items": [
                {
                    "invoice_number": a,
                    "reason": "Kulanz",
                    "amounts": [{"vat_rate": "19", "net_amount": "10.00"}],
                },
                {
                    "invoice_number": b,
                    "reason": "Rücksendung",
                    "lines": [{"line_no": 2, "quantity": "1"}],
                },
                {"invoice_number": "RE-NOPE", "reason": "Tippfehler"},
            ],
            "issue_date": "2026-12-03",
            "requested_by": "anna",
        }
    }
    run_config = {
        "ops": {queue.OP: {"config": {"organization": shop.org["slug"], "request": request}}}
    }

    result = job.execute_in_process(run_config=run_config, instance=_instance(shop.org["slug"]))

    assert result.success
    [event] = [
        e.event_specific_data.materialization
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
    ]
    assert event.asset_key.to_user_string() == "sales_invoices"
    metadata = {k: v.value for k, v in event.metadata.items()}
    assert (metadata["kind"], metadata["status"], metadata["succeeded"], metadata["failed"]) == (
        "credit_notes",
        "completed_with_errors",
        2,
        1,
    )
    assert metadata["credit_notes"] == [
        {"position": 1, "credit_note": "GS-2026-000001", "invoice": a, "gross_total": "11.90 EUR"},
        {"position": 2, "credit_note": "GS-2026-000002", "invoice": b, "gross_total": "42.75 EUR"},
    ]
    [failed] = metadata["failed_items"]
    assert (failed["position"], failed["invoice_number"], failed["code"]) == (
        3,
        "RE-NOPE",
        "unknown_invoice",
    )
    assert {n["created_by"] for n in credit_notes_of(shop)} == {"anna"}

    bad = {
        **request["credit_notes"],
        "items": [
            {
                "invoice_number": a,
                "reason": "x",
                "lines": [{"line_no": 1, "quantity": "1"}],
                "amounts": [{"vat_rate": "7", "net_amount": "1"}],
            }
        ],
    }
    refused_run = job.execute_in_process(
        run_config={
            "ops": {
                queue.OP: {
                    "config": {"organization": shop.org["slug"], "request": {"credit_notes": bad}}
                }
            }
        },
        instance=_instance(shop.org["slug"]),
        raise_on_error=False,
    )
    assert refusal(refused_run) == (
        "Credit note 1: give lines or amounts per VAT rate, not both (two credit notes if you "
        "need both)."
    )


def test_credit_notes_from_the_command_line(db, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    shop = make_shop(db)
    a, b, *_ = four_invoices(shop)
    path = tmp_path / "credit-notes.json"
    path.write_text(
        json.dumps(
            [
                {"invoice_number": a, "reason": "Storno"},
                {"invoice_number": b, "reason": "Kulanz", "amounts": "7=10.00"},
                {"invoice_number": "RE-NOPE", "reason": "Tippfehler"},
            ]
        )
    )
    command = ["batch-credit-notes", "--org", shop.org["slug"], "--items", str(path)]

    assert main([*command, "--date", "2026-12-03", "--wait", "--created-by", "anna"]) == 1

    out = capsys.readouterr().out
    job_id = int(out.splitlines()[0])
    assert "credit notes: 3 requested, 3 processed, 2 issued, 1 refused" in out
    assert "#3 invoice RE-NOPE: unknown_invoice: there is no invoice 'RE-NOPE'" in out
    assert f"#1 GS-2026-000001 for invoice {a}: 102.01 EUR" in out
    assert f"retry the failed items: invoice-pipelines batch-retry {job_id}" in out

    # queued without --wait: the id, then batch-run issues it here
    path.write_text(json.dumps([{"invoice_number": b, "reason": "Rest"}]))
    assert main([*command, "--date", "2026-12-03"]) == 0
    queued = int(capsys.readouterr().out.strip())
    assert main(["batch-run", str(queued)]) == 0
    assert "1 issued, 0 refused" in capsys.readouterr().out
    assert by_number(shop, b)["amount_due"] == D("0.00")

    path.write_text(json.dumps([{"invoice_number": a}]))
    assert main(command) == 2
    assert "credit note 1: a credit note needs a reason" in capsys.readouterr().err
