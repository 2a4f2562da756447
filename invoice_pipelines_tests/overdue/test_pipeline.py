"""Overdue runs on both databases: what is noticed, once, at which level, with which fees."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from invoice_pipelines.db.tables import audit_log, dunning_runs
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.overdue.domain.pipeline import run_overdue, set_dunning_block
from invoice_pipelines_tests.overdue.helpers import (
    customer,
    invoice,
    levels_by_invoice,
    notices,
    pay,
    set_settings,
)

TODAY = date(2026, 11, 20)
# interest from the due date at one fixed rate: the rules outside Germany (law none); the German
# rules are tested in test_german_law.py
WITH_INTEREST = {"law": "none", "interest": {"base_rate_percent": "1.27", "margin_percent": "9"}}


def _log(db, org) -> list[dict]:
    with tenant_transaction(db.engine, org["id"]) as conn:
        rows = conn.execute(
            select(dunning_runs)
            .where(dunning_runs.c.organization_id == org["id"])
            .order_by(dunning_runs.c.id)
        ).mappings()
        return [dict(r) for r in rows]


def test_only_what_is_past_due_unpaid_and_not_held_is_noticed(db):
    org = db.new_organization(timezone="Europe/Berlin")
    kunde, blocked = customer(db, org), customer(db, org, blocked=True)
    yesterday = TODAY - timedelta(days=1)
    noticed = {
        invoice(db, org, kunde, yesterday),
        invoice(db, org, kunde, yesterday, amount_due="19.00", status="partially_paid"),
    }
    for values in (
        {"due": TODAY},  # due today: not yet overdue
        {"due": TODAY + timedelta(days=3)},
        {"due": yesterday, "amount_due": "0.00", "status": "paid"},
        {"due": yesterday, "status": "cancelled"},
        {"due": yesterday, "amount_due": "0.00"},  # open but nothing left to pay
        {"due": yesterday, "deleted_at": utcnow()},
        {"due": yesterday, "disputed": True},
    ):
        invoice(db, org, kunde, values.pop("due"), **values)
    invoice(db, org, blocked, yesterday)

    result = run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=TODAY)

    assert set(levels_by_invoice(db, org)) == noticed
    assert result.status == "SUCCESS"
    assert result.notices_created == 2
    assert result.created_by_level == {"reminder": 2}
    assert result.scanned == 8  # the unpaid ones (open or partially paid)


@pytest.mark.parametrize(
    ("zone", "moment", "due", "noticed"),
    [
        # 12:00 UTC is already the 23rd in Auckland: an invoice due on the 22nd is a day late there
        ("Pacific/Auckland", datetime(2026, 11, 22, 12, 0, tzinfo=UTC), date(2026, 11, 22), True),
        ("UTC", datetime(2026, 11, 22, 12, 0, tzinfo=UTC), date(2026, 11, 22), False),
        # Berlin leaves summer time on 2026-10-25: 22:30 UTC is 00:30 on the 25th before (+02:00)
        ("Europe/Berlin", datetime(2026, 10, 24, 22, 30, tzinfo=UTC), date(2026, 10, 24), True),
        # ... and 23:30 on the 25th after it (+01:00): an invoice due that day is not late yet
        ("Europe/Berlin", datetime(2026, 10, 25, 22, 30, tzinfo=UTC), date(2026, 10, 25), False),
        ("Europe/Berlin", datetime(2026, 10, 25, 23, 30, tzinfo=UTC), date(2026, 10, 25), True),
    ],
)
def test_overdue_is_counted_in_the_organizations_timezone(db, zone, moment, due, noticed):
    org = db.new_organization(timezone=zone)
    invoice_id = invoice(db, org, customer(db, org), due)

    result = run_overdue(db.engine, find_organization(db.engine, org["slug"]), at=moment)

    assert (invoice_id in levels_by_invoice(db, org)) is noticed
    assert result.as_of == due + timedelta(days=1 if noticed else 0)


def test_levels_escalate_once_each_and_a_jump_gets_only_the_highest(db):
    org = db.new_organization(timezone="UTC")
    kunde = customer(db, org)
    slow = invoice(db, org, kunde, TODAY - timedelta(days=2))
    ancient = invoice(db, org, kunde, TODAY - timedelta(days=45))
    set_settings(db, org, {"dunning": {"law": "none"}})

    first = run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=TODAY)
    again = run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=TODAY)
    later = run_overdue(
        db.engine, find_organization(db.engine, org["slug"]), on=TODAY + timedelta(days=13)
    )

    assert first.created_by_level == {"reminder": 1, "final_notice": 1}
    assert again.notices_created == 0  # a re-run creates nothing twice
    assert later.created_by_level == {"first_dunning": 1}
    assert levels_by_invoice(db, org) == {
        slow: ["reminder", "first_dunning"],
        ancient: ["final_notice"],
    }
    by_level = {(n["sales_invoice_id"], n["level_name"]): n for n in notices(db, org)}
    # default fees outside Germany: reminder 0.00, first dunning 5.00, final notice 10.00; they
    # add up per invoice
    assert by_level[(slow, "first_dunning")]["fee"] == Decimal("5.00")
    assert by_level[(slow, "first_dunning")]["fees_total"] == Decimal("5.00")
    assert by_level[(ancient, "final_notice")]["fees_total"] == Decimal("10.00")
    assert by_level[(ancient, "final_notice")]["total_claimed"] == Decimal("129.00")


def test_catch_up_after_missed_days_charges_each_interest_day_once(db):
    org = db.new_organization(timezone="UTC")
    set_settings(db, org, {"dunning": WITH_INTEREST})
    due = TODAY - timedelta(days=1)
    invoice_id = invoice(db, org, customer(db, org), due, amount_due="3650.00", gross="3650.00")

    run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=TODAY)
    # the schedule was down for 30 days: the next run notices the level due now (final notice)
    caught_up = run_overdue(
        db.engine, find_organization(db.engine, org["slug"]), on=TODAY + timedelta(days=30)
    )

    assert caught_up.created_by_level == {"final_notice": 1}
    reminder, final = notices(db, org)
    assert (reminder["level_name"], final["level_name"]) == ("reminder", "final_notice")
    # the reminder charges no interest; the final notice charges all 31 days since the due date
    # at 10.27 % a year: 3650.00 x 10.27 % x 31 / 365 = 31.837 -> 31.84
    assert reminder["interest"] == Decimal("0.00")
    assert (final["interest_from"], final["interest_until"]) == (due, TODAY + timedelta(days=30))
    assert final["interest"] == Decimal("31.84")
    assert final["total_claimed"] == Decimal("3650.00") + Decimal("10.00") + Decimal("31.84")
    assert invoice_id == final["sales_invoice_id"]


def test_interest_after_a_partial_payment_runs_on_the_balance_of_each_span(db):
    """Before issue 46 interest ran from the payment on the rest only (10.27): the 10 days in
    default before the payment were never charged."""
    org = db.new_organization(timezone="UTC")
    set_settings(db, org, {"dunning": WITH_INTEREST})
    due = TODAY - timedelta(days=20)
    invoice_id = invoice(db, org, customer(db, org), due, amount_due="7300.00", gross="7300.00")
    pay(db, org, invoice_id, "3650.00", on=TODAY - timedelta(days=10))

    run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=TODAY)

    (notice,) = notices(db, org)
    assert notice["level_name"] == "first_dunning"
    assert notice["amount_open"] == Decimal("3650.00")
    assert (notice["interest_from"], notice["interest_until"]) == (due, TODAY)
    # 7300.00 x 10.27 % x 10 / 365 + 3650.00 x 10.27 % x 10 / 365 = 20.54 + 10.27
    assert notice["interest"] == Decimal("30.81")


def test_interest_after_an_earlier_notice_and_a_partial_payment_charges_the_days_between(db):
    """Issue 46: a notice charged up to its day; the next one, after a partial payment, charges
    the days from there to the payment on what was open then, the rest on what is open now."""
    org = db.new_organization(timezone="UTC")
    set_settings(db, org, {"dunning": WITH_INTEREST})
    due = TODAY - timedelta(days=14)
    kunde = customer(db, org)
    invoice_id = invoice(db, org, kunde, due, amount_due="7300.00", gross="7300.00")
    unknown = invoice(db, org, kunde, due, amount_due="7300.00", gross="7300.00")
    first = run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=TODAY)
    pay(db, org, invoice_id, "3650.00", on=TODAY + timedelta(days=10))
    # a payment whose day and amount were never read: every day on what is open now
    pay(db, org, unknown, "3650.00", on=TODAY + timedelta(days=10), recorded=False)

    final = run_overdue(
        db.engine, find_organization(db.engine, org["slug"]), on=TODAY + timedelta(days=20)
    )

    assert first.created_by_level == {"first_dunning": 2}
    assert final.created_by_level == {"final_notice": 2}
    by_level = {(n["sales_invoice_id"], n["level_name"]): n for n in notices(db, org)}
    earlier = by_level[(invoice_id, "first_dunning")]
    # 7300.00 x 10.27 % x 14 / 365 = 28.756 -> 28.76
    assert (earlier["interest_until"], earlier["interest"]) == (TODAY, Decimal("28.76"))
    notice = by_level[(invoice_id, "final_notice")]
    assert (notice["interest_from"], notice["interest_until"]) == (
        TODAY,
        TODAY + timedelta(days=20),
    )
    # 7300.00 x 10.27 % x 10 / 365 + 3650.00 x 10.27 % x 10 / 365 = 20.54 + 10.27
    assert notice["interest"] == Decimal("30.81")
    assert notice["interest_total"] == Decimal("59.57")
    assert notice["total_claimed"] == Decimal("3650.00") + Decimal("15.00") + Decimal("59.57")
    # without the payment's row: 3650.00 x 10.27 % x 20 / 365 = 20.54, never more than owed
    assert by_level[(unknown, "final_notice")]["interest"] == Decimal("20.54")


def test_paid_in_full_between_runs_gets_no_further_notice(db):
    org = db.new_organization(timezone="UTC")
    invoice_id = invoice(db, org, customer(db, org), TODAY - timedelta(days=2))
    run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=TODAY)
    pay(db, org, invoice_id, "119.00", on=TODAY + timedelta(days=1), status="paid")

    later = run_overdue(
        db.engine, find_organization(db.engine, org["slug"]), on=TODAY + timedelta(days=20)
    )

    assert later.notices_created == 0
    assert levels_by_invoice(db, org) == {invoice_id: ["reminder"]}


def test_blocks_hold_notices_until_lifted_and_are_audited(db):
    org = db.new_organization(timezone="UTC")
    kunde = customer(db, org)
    late = TODAY - timedelta(days=3)
    held, disputed = invoice(db, org, kunde, late), invoice(db, org, customer(db, org), late)

    changed, unknown = set_dunning_block(
        db.engine, org["id"], customer_ids=[kunde, 999999], blocked=True, reason="Ratenzahlung",
        requested_by="anna",
    )  # fmt: skip
    set_dunning_block(
        db.engine, org["id"], invoice_ids=[disputed], blocked=True, reason="Reklamation",
        requested_by="anna",
    )  # fmt: skip
    assert (changed, unknown) == ([kunde], [999999])
    assert (
        run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=TODAY).notices_created
        == 0
    )

    set_dunning_block(
        db.engine, org["id"], customer_ids=[kunde], blocked=False, reason="bezahlt nicht",
        requested_by="bob",
    )  # fmt: skip
    run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=TODAY)

    assert set(levels_by_invoice(db, org)) == {held}
    with tenant_transaction(db.engine, org["id"]) as conn:
        audit = conn.execute(
            select(audit_log.c.action, audit_log.c.entity_id, audit_log.c.created_by)
            .where(audit_log.c.organization_id == org["id"])
            .order_by(audit_log.c.id)
        ).all()
    assert [tuple(a) for a in audit] == [
        ("dunning.block", str(kunde), "anna"),
        ("dunning.dispute", str(disputed), "anna"),
        ("dunning.unblock", str(kunde), "bob"),
    ]


def test_the_execution_log_records_success_partial_and_failure(db):
    org = db.new_organization(timezone="UTC", currency="EUR")
    kunde = customer(db, org)
    late = TODAY - timedelta(days=20)
    invoice(db, org, kunde, late)
    dollars = invoice(db, org, kunde, late, currency="USD")

    before = utcnow()
    partial = run_overdue(
        db.engine, find_organization(db.engine, org["slug"]), on=TODAY, run_id="run-1"
    )
    after = utcnow()
    set_settings(db, org, {"dunning": {"levels": [{"name": "x", "days": "ten"}]}})
    failed = run_overdue(
        db.engine, find_organization(db.engine, org["slug"]), on=TODAY + timedelta(days=1)
    )
    set_settings(db, org, {})
    set_dunning_block(
        db.engine, org["id"], invoice_ids=[dollars], blocked=True, reason="USD", requested_by="t"
    )
    success = run_overdue(
        db.engine, find_organization(db.engine, org["slug"]), on=TODAY + timedelta(days=2)
    )

    assert [r.status for r in (partial, failed, success)] == ["PARTIAL", "FAILED", "SUCCESS"]
    log = _log(db, org)
    assert [r["status"] for r in log] == ["PARTIAL", "FAILED", "SUCCESS"]
    first = log[0]
    assert first["dagster_run_id"] == "run-1"
    assert first["notices_created"] == 1 and first["notices_by_level"] == {"first_dunning": 1}
    assert first["fees_charged"] == Decimal("2.50")  # German default for a consumer
    assert first["invoices_scanned"] == 2
    # when it ran, as UTC instants of this very run, and how long it took in seconds (not ms)
    assert before <= first["started_at"] <= first["finished_at"] <= after
    assert 0 <= first["duration_seconds"] <= (after - before).total_seconds()
    assert first["errors"][0]["invoice_id"] == dollars
    assert "is in USD" in first["errors"][0]["message"]
    assert log[1]["errors"] == [
        {"message": "settings.dunning.levels[1].days must be a whole number of days, got 'ten'."}
    ]
    assert log[2]["notices_created"] == 0 and log[2]["errors"] == []


def test_dry_run_counts_without_writing(db):
    org = db.new_organization(timezone="UTC")
    invoice(db, org, customer(db, org), TODAY - timedelta(days=40))

    result = run_overdue(
        db.engine, find_organization(db.engine, org["slug"]), on=TODAY, dry_run=True
    )

    assert result.created_by_level == {"final_notice": 1}
    assert notices(db, org) == []
    assert _log(db, org)[0]["dry_run"] is True


def test_two_runs_at_once_create_each_notice_once(pg_database):
    db = pg_database
    org = db.new_organization(timezone="UTC")
    kunde = customer(db, org)
    ids = [invoice(db, org, kunde, TODAY - timedelta(days=1 + i % 40)) for i in range(60)]
    results, barrier = [], threading.Barrier(2)

    def work():
        barrier.wait()
        results.append(
            run_overdue(
                db.engine, find_organization(db.engine, org["slug"]), on=TODAY, chunk_size=7
            )
        )

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sum(r.notices_created for r in results) == 60
    assert all(r.status == "SUCCESS" for r in results)
    assert sorted(levels_by_invoice(db, org)) == ids
    assert all(len(levels) == 1 for levels in levels_by_invoice(db, org).values())


def test_notices_and_the_log_are_tenant_rows(pg_database):
    """Row-level security: another organization's transaction sees none of them."""
    from sqlalchemy import func, text

    from invoice_pipelines.db.tables import dunning_notices

    db = pg_database
    org, stranger = db.new_organization(timezone="UTC"), db.new_organization(timezone="UTC")
    invoice(db, org, customer(db, org), TODAY - timedelta(days=3))
    run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=TODAY)
    for table in (dunning_notices, dunning_runs):
        with tenant_transaction(db.engine, stranger["id"]) as conn:
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0
        with tenant_transaction(db.engine, org["id"]) as conn:
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 1
    with db.owner_engine.connect() as conn:
        forced = conn.execute(
            text(
                "SELECT relname FROM pg_class WHERE relname IN ('dunning_notices', 'dunning_runs') "
                "AND relrowsecurity AND relforcerowsecurity ORDER BY relname"
            )
        ).scalars()
        assert list(forced) == ["dunning_notices", "dunning_runs"]
