"""A credit note's date is plausible: not before 2000 nor more than a month after today.

`credit-note --date 9999-12-31` once issued GS-9999-000001.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from invoice_pipelines.billing.domain import credit_notes
from invoice_pipelines.billing.domain.credit_note_jobs import enqueue_credit_notes
from invoice_pipelines.billing.domain.credit_notes import CreditNoteRefused
from invoice_pipelines.cli import main
from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines.queue.domain.requests import BatchRequestError, organization_today
from invoice_pipelines_tests.billing.shop import make_shop
from invoice_pipelines_tests.billing.test_credit_notes import invoiced


def test_a_credit_note_dated_9999_is_refused_in_one_sentence(db, monkeypatch, capsys) -> None:
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    shop = make_shop(db)
    (inv,) = invoiced(shop, [("TOOL", 2)])
    command = ["credit-note", "--org", shop.org["slug"], "--invoice", inv["invoice_number"]]
    today = organization_today(shop.org.get("timezone") or "Europe/Berlin")

    assert main([*command, "--reason", "typo", "--date", "9999-12-31"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "invoice-pipelines credit-note: credit note date 9999-12-31 is more than 31 days after "
        f"today ({today.isoformat()}).\n"
    )
    with pytest.raises(CreditNoteRefused, match="is more than 31 days after today") as caught:
        credit_notes.issue_credit_note(
            db.engine,
            find_organization(db.engine, shop.org["id"]),
            inv["invoice_number"],
            reason="typo",
            issue_date=today + timedelta(days=32),
        )
    assert caught.value.code == "implausible_date"
    assert [i for i in shop.invoices() if i["type_code"] == "381"] == []


def test_a_batch_of_credit_notes_dated_9999_is_not_queued(db) -> None:
    shop = make_shop(db)
    (inv,) = invoiced(shop, [("TOOL", 2)])
    items = [{"invoice_number": inv["invoice_number"], "reason": "r"}]

    with pytest.raises(BatchRequestError, match=r"^credit note date 9999-12-31 is more than 31"):
        enqueue_credit_notes(
            db.engine,
            find_organization(db.engine, shop.org["slug"]),
            items,
            issue_date=date(9999, 12, 31),
        )
    dated = [{**items[0], "issue_date": "1999-12-31"}]
    with pytest.raises(BatchRequestError) as caught:
        enqueue_credit_notes(db.engine, find_organization(db.engine, shop.org["slug"]), dated)
    assert str(caught.value) == (
        "credit note 1: credit note date 1999-12-31 is before 2000-01-01, "
        "earlier than anything this system keeps."
    )


def test_a_credit_note_within_the_month_ahead_is_issued(db, monkeypatch, capsys) -> None:
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    shop = make_shop(db)
    (inv,) = invoiced(shop, [("TOOL", 2)])
    command = ["credit-note", "--org", shop.org["slug"], "--invoice", inv["invoice_number"]]

    assert main([*command, "--reason", "returned", "--date", "2026-12-03"]) == 0
    assert json.loads(capsys.readouterr().out)["issue_date"] == "2026-12-03"
