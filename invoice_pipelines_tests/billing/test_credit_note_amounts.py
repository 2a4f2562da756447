"""Credit notes of a net amount per VAT rate (a price reduction or goodwill credit without lines),
on both databases: lines and VAT, what is left per rate, refusals, the rest, CLI and launchpad."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from invoice_pipelines.billing.domain.check_queries import totals_problems
from invoice_pipelines.billing.domain.credit_notes import CreditNoteRefused, parse_amounts
from invoice_pipelines.cli import main
from invoice_pipelines.db.tables import customers
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.exports.domain.pipeline import run_export
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.billing.shop import make_shop
from invoice_pipelines_tests.billing.test_credit_notes import (
    _bookings,
    by_number,
    credit_note_job,
    invoiced,
    issue_credit_note,
)
from invoice_pipelines_tests.exports.books import DATEV

D = Decimal


def consistent(shop) -> dict:
    with tenant_transaction(shop.engine, shop.org_id) as conn:
        return totals_problems(conn, shop.org_id)


def test_an_amount_per_rate_becomes_one_line_per_rate_with_its_vat(db):
    shop = make_shop(db)
    # 2 x 24.90 at 19 % (49.80) and 39.95 at 7 %
    (inv,) = invoiced(shop, [("TOOL", 2), ("BOOK", 1)])
    number = inv["invoice_number"]

    note = issue_credit_note(
        db.engine,
        find_organization(db.engine, shop.org["id"]),
        number,
        reason="Kratzer am Gehäuse",
        amounts=parse_amounts("19=20.00,7=10.00"),
    )

    assert (note.net_total, note.tax_total, note.gross_total) == (D("30.00"), D("4.50"), D("34.50"))
    lines = shop.invoice_lines(note.id)
    assert [
        (ln["line_no"], ln["line_type"], ln["description"], ln["quantity"], ln["net_amount"])
        for ln in lines
    ] == [
        # numbered after the invoice's lines 1 and 2: they are no credit of an invoice line
        (3, "credit_amount", f"Preisminderung/Gutschrift zu {number} (19 %)", D(1), D("20.00")),
        (4, "credit_amount", f"Preisminderung/Gutschrift zu {number} (7 %)", D(1), D("10.00")),
    ]
    assert [(ln["vat_category"], ln["vat_rate"]) for ln in lines] == [
        ("S", D("19.00")),
        ("S", D("7.00")),
    ]
    assert sorted(shop.breakdown(note.id)) == [
        ("S", D("7.00"), D("10.00"), D("0.70")),
        ("S", D("19.00"), D("20.00"), D("3.80")),
    ]
    assert by_number(shop, number)["amount_due"] == inv["gross_total"] - D("34.50")
    assert note.lines == ()
    assert note.to_json_dict()["amounts"] == [
        {"vat_category": "S", "vat_rate": "19", "net_amount": "20.00"},
        {"vat_category": "S", "vat_rate": "7", "net_amount": "10.00"},
    ]
    # no invoice line counts as credited, but a line credit may take only what is left at its rate
    more = issue_credit_note(
        db.engine, find_organization(db.engine, shop.org["id"]), number, reason="r", lines={1: D(1)}
    )
    assert more.gross_total == D("29.63")
    with pytest.raises(
        CreditNoteRefused, match="come to 39.95 EUR net at 7 %, more than the 29.95"
    ):
        issue_credit_note(
            db.engine,
            find_organization(db.engine, shop.org["id"]),
            number,
            reason="r",
            lines={2: D(1)},
        )
    assert consistent(shop) == {"checked": 3, "wrong": []}


def test_never_more_than_is_left_per_rate_and_the_rest_nets_to_zero(db):
    shop = make_shop(db)
    (inv,) = invoiced(shop, [("TOOL", 2), ("BOOK", 1)])
    number = inv["invoice_number"]
    issue_credit_note(
        db.engine,
        find_organization(db.engine, shop.org["id"]),
        number,
        reason="a",
        amounts=parse_amounts("19=20.00"),
    )
    # a line credit counts against what is left at its rate too
    issue_credit_note(
        db.engine, find_organization(db.engine, shop.org["id"]), number, reason="b", lines={1: D(1)}
    )  # 24.90

    with pytest.raises(
        CreditNoteRefused,
        match=r"19 %: net 5.00 EUR is more than the 4.90 EUR net left to credit at 19 % on "
        rf"invoice {number} \(net 49.80 at that rate, credited before 44.90\)",
    ):
        issue_credit_note(
            db.engine,
            find_organization(db.engine, shop.org["id"]),
            number,
            reason="c",
            amounts=parse_amounts("19=5"),
        )
    with pytest.raises(
        CreditNoteRefused,
        match="the chosen lines come to 24.90 EUR net at 19 %, more than the 4.90 left",
    ):
        issue_credit_note(
            db.engine,
            find_organization(db.engine, shop.org["id"]),
            number,
            reason="c",
            lines={1: D(1)},
        )

    # the rest of 19 %: the rest of its VAT (9.46 - 3.80 - 4.73)
    rest_19 = issue_credit_note(
        db.engine,
        find_organization(db.engine, shop.org["id"]),
        number,
        reason="d",
        amounts=parse_amounts("19=4.90"),
    )
    assert rest_19.tax_total == inv_vat_at(shop, inv, "19.00") - D("3.80") - D("4.73")
    # everything left: the book, and the tool's last unit less the amounts credited at 19 %
    rest = issue_credit_note(
        db.engine, find_organization(db.engine, shop.org["id"]), number, reason="e"
    )
    lines = shop.invoice_lines(rest.id)
    assert [(ln["line_no"], ln["line_type"], ln["quantity"], ln["net_amount"]) for ln in lines] == [
        (1, "item", D(1), D("24.90")),
        (2, "item", D(1), D("39.95")),
        (3, "credit_amount", D(1), D("-24.90")),
    ]
    assert lines[2]["description"] == "Abzüglich bereits gutgeschriebener Beträge (19 %)"
    # 19 % is settled: its row stays at 0.00 beside lines that add up to 0.00
    assert sorted(shop.breakdown(rest.id)) == [
        ("S", D("7.00"), D("39.95"), D("2.80")),
        ("S", D("19.00"), D("0.00"), D("0.00")),
    ]
    assert by_number(shop, number)["amount_due"] == D("0.00")
    with pytest.raises(CreditNoteRefused, match="credited in full already"):
        issue_credit_note(
            db.engine,
            find_organization(db.engine, shop.org["id"]),
            number,
            reason="f",
            amounts=parse_amounts("7=1"),
        )
    with pytest.raises(CreditNoteRefused, match="credited in full already"):
        issue_credit_note(
            db.engine, find_organization(db.engine, shop.org["id"]), number, reason="f"
        )
    assert consistent(shop) == {"checked": 5, "wrong": []}


def inv_vat_at(shop, inv, rate: str) -> Decimal:
    return next(a for c, r, _b, a in shop.breakdown(inv["id"]) if r == D(rate))


def test_amount_refusals_say_what_to_fix_and_change_nothing(db):
    shop = make_shop(db)
    (inv,) = invoiced(shop, [("TOOL", 2), ("BOOK", 1)])
    number = inv["invoice_number"]
    before = shop.invoices()
    cases = [
        ("16=10", f"invoice {number} has no VAT rate 16 % \\(its rates: 19 %, 7 %\\)"),
        ("19=0", "19 %: net 0.00 is not above 0"),
        ("19=-5.00", "19 %: net -5.00 is not above 0"),
        ("7=40.00", "7 %: net 40.00 EUR is more than the 39.95 EUR net left"),
        ("19=1.005", "19 %: net 1.005 has more than 2 decimals"),
        ("AE:19=1.00", "has no VAT rate AE 19 %"),
    ]
    for spec, message in cases:
        with pytest.raises(CreditNoteRefused, match=message):
            issue_credit_note(
                db.engine,
                find_organization(db.engine, shop.org["id"]),
                number,
                reason="r",
                amounts=parse_amounts(spec),
            )
    with pytest.raises(CreditNoteRefused, match="give lines or amounts per VAT rate, not both"):
        issue_credit_note(
            db.engine,
            find_organization(db.engine, shop.org["id"]),
            number,
            reason="r",
            lines={1: D(1)},
            amounts={"19": D(1)},
        )
    for spec, message in [
        ("19", "'19' is not RATE=NET"),
        ("19=1,19=2", "VAT rate 19 % is given twice"),
        ("x=1", "VAT rate 'x'"),
        ("19=ten", "net amount of '19=ten'"),
    ]:
        with pytest.raises(CreditNoteRefused, match=message):
            parse_amounts(spec)
    assert shop.invoices() == before
    # no credit note number was used up
    note = issue_credit_note(
        db.engine,
        find_organization(db.engine, shop.org["id"]),
        number,
        reason="r",
        amounts={"7": D("1.00")},
    )
    assert note.number == "GS-2026-000001"


def test_an_english_customer_reads_english_amount_lines(db):
    shop = make_shop(db)
    with tenant_transaction(db.engine, shop.org_id, write=True) as conn:
        conn.execute(
            customers.update().where(customers.c.id == shop.customer_ids[0]).values(language="en")
        )
    (inv,) = invoiced(shop, [("TOOL", 2)])
    note = issue_credit_note(
        db.engine,
        find_organization(db.engine, shop.org["id"]),
        inv["invoice_number"],
        reason="r",
        amounts={"19": D("5.00")},
    )
    [line] = shop.invoice_lines(note.id)
    assert line["description"] == f"Price reduction/credit for {inv['invoice_number']} (19 %)"


def test_amounts_from_the_command_line(db, monkeypatch, capsys):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    shop = make_shop(db)
    (inv,) = invoiced(shop, [("TOOL", 2), ("BOOK", 1)])
    command = ["credit-note", "--org", shop.org["slug"], "--invoice", inv["invoice_number"]]
    command += ["--date", "2026-12-03"]

    assert main([*command, "--amounts", "19=10.00,7=5.00", "--reason", "Preisnachlass"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["number"], printed["net_total"], printed["gross_total"]) == (
        "GS-2026-000001",
        "15.00",
        "17.25",  # 10.00 + 1.90, 5.00 + 0.35
    )
    assert printed["lines"] == []
    assert [a["vat_rate"] for a in printed["amounts"]] == ["19", "7"]

    assert main([*command, "--amounts", "19=40.00", "--reason", "x"]) == 2
    assert "net 40.00 EUR is more than the 39.80 EUR net left" in capsys.readouterr().err
    assert main([*command, "--amounts", "19=1", "--lines", "1:1", "--reason", "x"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main([*command, "--amounts", "19:1", "--reason", "x"]) == 2
    assert "is not RATE=NET (e.g. 19=100.00,7=20.00)" in capsys.readouterr().err


def test_amounts_from_the_launchpad(db):
    shop = make_shop(db)
    (inv,) = invoiced(shop, [("TOOL", 2), ("BOOK", 1)])
    resolved = credit_note_job(db)
    config = {
        "organization": shop.org["slug"],
        "invoice_number": inv["invoice_number"],
        "reason": "Kulanz",
        "amounts": [{"vat_rate": "7", "net_amount": "10.00"}],
        "issue_date": "2026-12-03",
    }
    result = resolved.execute_in_process(
        run_config={"ops": {"issue_credit_note_op": {"config": config}}}
    )
    assert result.success
    note = result.output_for_node("issue_credit_note_op")
    assert (note["number"], note["gross_total"], note["amounts"]) == (
        "GS-2026-000001",
        "10.70",
        [{"vat_category": "S", "vat_rate": "7", "net_amount": "10.00"}],
    )
    too_much = {**config, "amounts": [{"vat_rate": "7", "net_amount": "30.00"}]}
    refused_run = resolved.execute_in_process(
        run_config={"ops": {"issue_credit_note_op": {"config": too_much}}}, raise_on_error=False
    )
    assert not refused_run.success
    [failure] = refused_run.get_step_failure_events()
    assert "more than the 29.95 EUR net left to credit at 7 %" in (
        failure.event_specific_data.user_failure_data.description
    )


def test_datev_books_an_amount_credit_per_rate_on_the_other_side(db, tmp_path):
    shop = make_shop(db, **DATEV)
    (inv,) = invoiced(shop, [("TOOL", 2), ("BOOK", 1)])
    note = issue_credit_note(
        db.engine,
        find_organization(db.engine, shop.org["id"]),
        inv["invoice_number"],
        reason="r",
        amounts=parse_amounts("19=20,7=10"),
    )
    store = LocalFiles(str(tmp_path))

    december = run_export(
        db.engine, store, find_organization(db.engine, shop.org["slug"]), "2026-12", "sales"
    )

    number = inv["invoice_number"]
    text = f"{note.number} zu {number} Customer 1"
    assert sorted(_bookings(december.files["datev"])) == [
        ("10,70", "H", "10000", "8300", note.number, text),
        ("23,80", "H", "10000", "8400", note.number, text),
    ]
    assert Path(december.files["csv"]).read_text().count(note.number) == 1
