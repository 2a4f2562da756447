"""Credit notes on both databases: full and partial, their own gapless series, refusals, dunning."""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from dagster import Definitions
from sqlalchemy import select

from invoice_pipelines.areas import kinds
from invoice_pipelines.billing.checks import gapless_numbers_result
from invoice_pipelines.billing.defs import defs
from invoice_pipelines.billing.domain import credit_notes
from invoice_pipelines.billing.domain.check_queries import number_gaps, totals_problems
from invoice_pipelines.billing.domain.credit_notes import CreditNoteRefused, parse_lines
from invoice_pipelines.billing.domain.invoicing import process_batch_job
from invoice_pipelines.billing.domain.invoicing_kinds import enqueue_sales_orders
from invoice_pipelines.cli import main
from invoice_pipelines.core.datev import BOOKING_COLUMNS
from invoice_pipelines.db.tables import (
    audit_log,
    dunning_notices,
    invoice_number_sequences,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.exports.domain.pipeline import run_export
from invoice_pipelines.overdue.domain.pipeline import run_overdue
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.billing.shop import make_shop
from invoice_pipelines_tests.exports.books import DATEV
from invoice_pipelines_tests.exports.datev_reader import read_extf

D = Decimal
DAY = date(2026, 11, 30)
LATER = date(2026, 12, 3)


def issue_credit_note(engine, organization, number, **kwargs):
    """Dated after the invoices, never by the clock (the number carries the year)."""
    kwargs.setdefault("issue_date", LATER)
    return credit_notes.issue_credit_note(engine, organization, number, **kwargs)


def invoiced(shop, *orders) -> list[dict]:
    """Invoice `orders` (line specs per order); the invoices, in order."""
    ids = [shop.add_order(lines) for lines in orders]
    job_id = enqueue_sales_orders(
        shop.engine,
        find_organization(shop.engine, shop.org["slug"]),
        order_ids=ids,
        invoice_date=DAY,
        due_days=14,
    )
    process_batch_job(shop.engine, job_id, system=shop.engine)
    return [i for i in shop.invoices() if i["type_code"] == "380"]


def by_number(shop, number: str) -> dict:
    return next(i for i in shop.invoices() if i["invoice_number"] == number)


def test_full_credit_note_mirrors_the_invoice_in_its_own_series(db):
    shop = make_shop(db)
    (inv,) = invoiced(shop, [("TOOL", 2), ("BOOK", 1), ("ODD", 3)])

    note = issue_credit_note(
        db.engine,
        find_organization(db.engine, shop.org["id"]),
        inv["invoice_number"],
        reason="Order cancelled",
        issue_date=LATER,
    )

    row = by_number(shop, note.number)
    assert note.number == "GS-2026-000001"
    assert row["type_code"] == "381"
    assert row["corrects_invoice_id"] == inv["id"]
    assert row["credit_reason"] == "Order cancelled"
    # positive amounts, as EN 16931 wants them on a 381, equal to the invoice's
    assert (row["net_total"], row["tax_total"], row["gross_total"]) == (
        inv["net_total"],
        inv["tax_total"],
        inv["gross_total"],
    )
    assert shop.breakdown(row["id"]) == shop.breakdown(inv["id"])
    lines = shop.invoice_lines(row["id"])
    assert [(ln["line_no"], ln["quantity"], ln["net_amount"]) for ln in lines] == [
        (ln["line_no"], ln["quantity"], ln["net_amount"]) for ln in shop.invoice_lines(inv["id"])
    ]
    # the invoice is settled by the credit note: nothing open, and it keeps its invoice number
    assert by_number(shop, inv["invoice_number"])["amount_due"] == D("0.00")
    assert note.invoice_amount_due == D("0.00")
    # the invoice series is unaffected: still gapless, the credit note is not counted in it
    assert number_gaps_ok(shop)
    with tenant_transaction(db.engine, shop.org_id) as conn:
        logged = conn.execute(
            select(audit_log.c.action, audit_log.c.details).where(
                audit_log.c.organization_id == shop.org_id,
                audit_log.c.action == "credit_note.issue",
            )
        ).all()
    assert [(a, d["credit_note"], d["corrects"], d["reason"]) for a, d in logged] == [
        ("credit_note.issue", note.number, inv["invoice_number"], "Order cancelled")
    ]


def number_gaps_ok(shop) -> bool:
    with tenant_transaction(shop.engine, shop.org_id) as conn:
        found = number_gaps(conn, shop.org_id)
    return found["gaps"] == [] and found["duplicates"] == 0


def test_partial_credits_add_up_to_the_invoice_to_the_cent(db):
    shop = make_shop(db)
    # 3 x 0.3333 at 19 %: per-note VAT rounding would leave a cent open without the last note's
    # "what is left" rule
    (inv,) = invoiced(shop, [("ODD", 3), ("BOOK", 2)])
    first = issue_credit_note(
        db.engine,
        find_organization(db.engine, shop.org["id"]),
        inv["invoice_number"],
        reason="one broken",
        lines=parse_lines("1:1"),
    )
    second = issue_credit_note(
        db.engine,
        find_organization(db.engine, shop.org["id"]),
        inv["invoice_number"],
        reason="book returned",
        lines={2: D(1)},
    )
    assert (first.number, second.number) == ("GS-2026-000001", "GS-2026-000002")
    assert first.net_total == D("0.33") and first.tax_total == D("0.06")
    assert second.gross_total == D("42.75")  # 39.95 + 7 %
    left = inv["gross_total"] - first.gross_total - second.gross_total
    assert by_number(shop, inv["invoice_number"])["amount_due"] == left

    with pytest.raises(CreditNoteRefused, match="line 1: 3 is more than the 2 left"):
        issue_credit_note(
            db.engine,
            find_organization(db.engine, shop.org["id"]),
            inv["invoice_number"],
            reason="too much",
            lines={1: D(3)},
        )
    rest = issue_credit_note(
        db.engine,
        find_organization(db.engine, shop.org["id"]),
        inv["invoice_number"],
        reason="the rest",
    )
    assert rest.lines == ((1, D(2)), (2, D(1)))
    assert first.gross_total + second.gross_total + rest.gross_total == inv["gross_total"]
    assert first.tax_total + second.tax_total + rest.tax_total == inv["tax_total"]
    assert by_number(shop, inv["invoice_number"])["amount_due"] == D("0.00")
    with pytest.raises(CreditNoteRefused, match="credited in full already"):
        issue_credit_note(
            db.engine,
            find_organization(db.engine, shop.org["id"]),
            inv["invoice_number"],
            reason="again",
        )
    # the daily totals check accepts the last note's VAT of 2.79 on 39.95 at 7 % (2.80 computed
    # alone): it is what makes the invoice and its credit notes add up to zero at that rate
    assert rest.tax_total == D("0.13") + D("2.79")
    with tenant_transaction(db.engine, shop.org_id) as conn:
        assert totals_problems(conn, shop.org_id) == {"checked": 4, "wrong": []}


def test_refusals_say_why_and_change_nothing(db):
    shop = make_shop(db)
    inv, cancelled = invoiced(shop, [("TOOL", 1)], [("TOOL", 1)])
    with tenant_transaction(db.engine, shop.org_id, write=True) as conn:
        conn.execute(
            shop_invoices_update(cancelled["id"]),
        )
    note = issue_credit_note(
        db.engine,
        find_organization(db.engine, shop.org["id"]),
        inv["invoice_number"],
        reason="x",
        lines={1: D(1)},
    )
    before = shop.invoices()
    cases = [
        (inv["invoice_number"], "  ", None, "needs a reason"),
        ("RE-NOPE", "r", None, "there is no invoice 'RE-NOPE'"),
        (note.number, "r", None, "is a credit note"),
        (cancelled["invoice_number"], "r", None, "is cancelled"),
        (inv["invoice_number"], "r", None, "credited in full already"),
    ]
    for number, reason, lines, message in cases:
        with pytest.raises(CreditNoteRefused, match=message):
            issue_credit_note(
                db.engine,
                find_organization(db.engine, shop.org["id"]),
                number,
                reason=reason,
                lines=lines,
            )
    (other,) = [
        i for i in invoiced(shop, [("TOOL", 2)]) if i["id"] not in {inv["id"], cancelled["id"]}
    ]
    with pytest.raises(
        CreditNoteRefused, match="line 1: quantity -1 is not above 0; .* has no line 7"
    ):
        issue_credit_note(
            db.engine,
            find_organization(db.engine, shop.org["id"]),
            other["invoice_number"],
            reason="r",
            lines={7: D(1), 1: D(-1)},
        )
    (discounted,) = [
        i
        for i in invoiced(shop, [("TOOL", 2), ("discount", "5.00", "S", "19")])
        if i["invoice_number"]
        not in {j["invoice_number"] for j in before} | {other["invoice_number"]}
    ]
    with pytest.raises(CreditNoteRefused, match="come to -5.95 EUR; a credit note credits"):
        issue_credit_note(
            db.engine,
            find_organization(db.engine, shop.org["id"]),
            discounted["invoice_number"],
            reason="r",
            lines={2: D(1)},
        )
    with pytest.raises(CreditNoteRefused, match="is not LINE:QUANTITY"):
        parse_lines("1:2,x")
    assert [i for i in shop.invoices() if i["id"] not in {other["id"], discounted["id"]}] == before
    # no number was used up by the refusals
    assert issue_credit_note(
        db.engine, find_organization(db.engine, shop.org["id"]), other["invoice_number"], reason="r"
    ).number == ("GS-2026-000002")


def shop_invoices_update(invoice_id: int):
    return (
        sales_invoices.update().where(sales_invoices.c.id == invoice_id).values(status="cancelled")
    )


def test_number_format_comes_from_the_organizations_settings(db):
    shop = make_shop(db, settings={"credit_notes": {"number_format": "KR{year}-{counter:04d}"}})
    (inv,) = invoiced(shop, [("TOOL", 1)])
    note = issue_credit_note(
        db.engine, find_organization(db.engine, shop.org["id"]), inv["invoice_number"], reason="r"
    )
    assert note.number == "KR2026-0001"


def test_concurrent_credit_notes_get_consecutive_numbers(db):
    shop = make_shop(db)
    invoices = invoiced(shop, *([[("TOOL", 1), ("BOOK", 1)]] * 6))
    numbers: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def credit(number: str) -> None:
        try:
            start.wait()
            numbers.append(
                issue_credit_note(
                    db.engine, find_organization(db.engine, shop.org["id"]), number, reason="r"
                ).number
            )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=credit, args=(i["invoice_number"],)) for i in invoices]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(numbers) == [f"GS-2026-{n:06d}" for n in range(1, 7)]
    with tenant_transaction(db.engine, shop.org_id) as conn:
        found = number_gaps(conn, shop.org_id)
    assert found["credit_notes"] == {
        "invoices": 6,
        "highest": 6,
        "last_handed_out": 6,
        "gaps": [],
        "duplicates": 0,
    }


def test_a_fully_credited_invoice_gets_no_dunning_notice(db):
    shop = make_shop(db)
    credited, open_one = invoiced(shop, [("TOOL", 1)], [("TOOL", 1)])
    issue_credit_note(
        db.engine,
        find_organization(db.engine, shop.org["id"]),
        credited["invoice_number"],
        reason="cancelled",
    )

    result = run_overdue(
        db.engine, find_organization(db.engine, shop.org["slug"]), on=DAY + timedelta(days=30)
    )

    with tenant_transaction(db.engine, shop.org_id) as conn:
        noticed = set(
            conn.execute(
                select(dunning_notices.c.sales_invoice_id).where(
                    dunning_notices.c.organization_id == shop.org_id
                )
            ).scalars()
        )
    assert noticed == {open_one["id"]}
    assert result.notices_created == 1


def test_credit_note_from_the_command_line(db, monkeypatch, capsys):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    shop = make_shop(db)
    (inv,) = invoiced(shop, [("TOOL", 2), ("BOOK", 1)])
    command = ["credit-note", "--org", shop.org["slug"], "--invoice", inv["invoice_number"]]

    assert (
        main([*command, "--lines", "1:1", "--reason", "one returned", "--date", "2026-12-03"]) == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert {k: printed[k] for k in ("number", "corrects", "gross_total", "reason")} == {
        "number": "GS-2026-000001",
        "corrects": inv["invoice_number"],
        "gross_total": "29.63",  # 24.90 + 19 %
        "reason": "one returned",
    }
    assert printed["lines"] == [{"line_no": 1, "quantity": "1"}]

    assert main([*command, "--lines", "1:5", "--reason", "x", "--date", "2026-12-03"]) == 2
    assert "line 1: 5 is more than the 1 left to credit of 2" in capsys.readouterr().err


def credit_note_job(db):
    """`credit_note_job` on the test's database."""
    return Definitions.merge(
        defs,
        Definitions(
            resources={
                "database": Database(url=db.url),
                "system_database": SystemDatabase(url=db.url),
                "batch_kinds": kinds(),
            }
        ),
    ).resolve_job_def("credit_note_job")


def test_credit_note_job_from_the_launchpad(db):
    shop = make_shop(db)
    (inv,) = invoiced(shop, [("TOOL", 2), ("BOOK", 1)])
    resolved = credit_note_job(db)
    config = {
        "organization": shop.org["slug"],
        "invoice_number": inv["invoice_number"],
        "reason": "book damaged",
        "lines": [{"line_no": 2, "quantity": "1"}],
        "issue_date": "2026-12-03",
    }
    result = resolved.execute_in_process(
        run_config={"ops": {"issue_credit_note_op": {"config": config}}}
    )
    assert result.success
    note = result.output_for_node("issue_credit_note_op")
    assert (note["number"], note["corrects"], note["gross_total"]) == (
        "GS-2026-000001",
        inv["invoice_number"],
        "42.75",
    )

    refused_run = resolved.execute_in_process(
        run_config={"ops": {"issue_credit_note_op": {"config": {**config, "reason": ""}}}},
        raise_on_error=False,
    )
    assert not refused_run.success
    [failure] = refused_run.get_step_failure_events()
    assert "needs a reason" in failure.event_specific_data.user_failure_data.description


def _bookings(path: str) -> list[tuple[str, ...]]:
    """(Umsatz, S/H, Konto, Gegenkonto, Belegfeld 1, Buchungstext) of a Buchungsstapel's rows."""
    columns = [
        "Umsatz (ohne Soll/Haben-Kz)",
        "Soll/Haben-Kennzeichen",
        "Konto",
        "Gegenkonto (ohne BU-Schlüssel)",
        "Belegfeld 1",
        "Buchungstext",
    ]
    return [
        tuple(row[BOOKING_COLUMNS.index(name)].value for name in columns)
        for row in read_extf(Path(path).read_bytes())[2:]
    ]


def test_datev_books_the_credit_note_against_its_invoice_with_the_sides_reversed(db, tmp_path):
    shop = make_shop(db, **DATEV)
    (inv,) = invoiced(shop, [("TOOL", 2), ("BOOK", 1)])  # 49.80 at 19 %, 39.95 at 7 %
    note = issue_credit_note(
        db.engine,
        find_organization(db.engine, shop.org["id"]),
        inv["invoice_number"],
        reason="tool returned",
        lines={1: D(1)},
    )
    store = LocalFiles(str(tmp_path))

    november = run_export(
        db.engine, store, find_organization(db.engine, shop.org["slug"]), "2026-11", "sales"
    )
    december = run_export(
        db.engine, store, find_organization(db.engine, shop.org["slug"]), "2026-12", "sales"
    )

    number = inv["invoice_number"]
    assert _bookings(november.files["datev"]) + _bookings(december.files["datev"]) == [
        ("42,75", "S", "10000", "8300", number, f"Customer 1 {number}"),
        ("59,26", "S", "10000", "8400", number, f"Customer 1 {number}"),
        # the credit note: 24.90 + 19 % on the same debtor and revenue account, the other side
        ("29,63", "H", "10000", "8400", note.number, f"{note.number} zu {number} Customer 1"),
    ]
    [row] = pd.read_csv(december.files["csv"], dtype=str).to_dict("records")
    assert (row["invoice_number"], row["type_code"], row["corrects_invoice_number"]) == (
        note.number,
        "381",
        number,
    )
    assert row["gross_total"] == "29.63"
    [invoice_row] = pd.read_csv(november.files["csv"], dtype=str).to_dict("records")
    assert pd.isna(invoice_row["corrects_invoice_number"])


def test_the_checks_report_gaps_in_the_credit_note_series(fresh_db):
    # its own database: the daily check looks at every organization, and this one has a gap
    db = fresh_db
    shop = make_shop(db)
    (inv,) = invoiced(shop, [("TOOL", 3)])
    for _ in range(3):
        issue_credit_note(
            db.engine,
            find_organization(db.engine, shop.org["id"]),
            inv["invoice_number"],
            reason="r",
            lines={1: D(1)},
        )
    # a credit note that disappeared is a gap
    with tenant_transaction(db.engine, shop.org_id, write=True) as conn:
        conn.execute(
            sales_invoices.delete().where(sales_invoices.c.invoice_number == "GS-2026-000002")
        )
        result = gapless_numbers_result(number_gaps(conn, shop.org_id))
    assert not result.passed
    assert result.metadata["first_credit_note_gaps"].value == [2]
    assert "credit notes: 1 missing numbers" in result.description
    # and so is a number handed out that no credit note carries
    with tenant_transaction(db.engine, shop.org_id, write=True) as conn:
        conn.execute(
            invoice_number_sequences.update()
            .where(
                invoice_number_sequences.c.organization_id == shop.org_id,
                invoice_number_sequences.c.name == "credit_notes",
            )
            .values(last_value=4)
        )
    audit = Definitions.merge(
        defs,
        Definitions(
            resources={
                "database": Database(url=db.url),
                "system_database": SystemDatabase(url=db.url),
                "batch_kinds": kinds(),
            }
        ),
    ).resolve_job_def("sales_invoices_checks_job")

    found = {e.check_name: e for e in audit.execute_in_process().get_asset_check_evaluations()}

    gaps = found["gapless_invoice_numbers_all_organizations"]
    assert not gaps.passed
    assert gaps.metadata["organizations_with_gaps"].value[shop.org["slug"]] == {
        "credit_notes": {"gaps": [2, 4], "duplicates": 0}
    }
