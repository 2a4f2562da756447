"""Dunning by German law (issue 23): § 286 default, § 288 interest and flat fee, § 247 base rates."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoice_pipelines.cli import main
from invoice_pipelines.core.base_rates import BaseRates, accrue
from invoice_pipelines.core.dunning import (
    Candidate,
    DunningSettingsError,
    notice_for,
    parse_settings,
)
from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines.overdue.domain.pipeline import run_overdue
from invoice_pipelines_tests.overdue.helpers import customer, invoice, notices

CENT = Decimal("0.01")


def _candidate(amount: str, due: date, **values) -> Candidate:
    base = {
        "invoice_id": 1, "invoice_number": "RE-1", "currency": "EUR", "due_date": due,
        "amount_due": Decimal(amount), "last_payment_date": None, "previous_level": 0,
        "previous_interest_until": None, "previous_fees_total": Decimal("0.00"),
        "previous_interest_total": Decimal("0.00"),
    }  # fmt: skip
    return Candidate(**{**base, **values})


def _after(candidate: Candidate, figures) -> Candidate:
    """The candidate as the next run reads it, after `figures` was noticed."""
    return _candidate(
        str(candidate.amount_due),
        candidate.due_date,
        kind=candidate.kind,
        previous_level=figures.level.number,
        previous_interest_until=figures.interest_until,
        previous_fees_total=figures.fees_total,
        previous_interest_total=figures.interest_total,
        previous_costs_total=figures.costs_total,
    )


def test_the_issues_example_a_business_invoice_45_days_overdue(db):
    """1,000.00 EUR, a business customer (VAT id), 45 days overdue, base rate 1.27 % throughout
    (2025-09-01 .. 2025-10-16 lies in the half-year from 2025-07-01): EUR 40 flat fee (the 2.50 of
    the final notice offset against it) + 10.27 % x 1000 x 45/365 = 12.66 -> 1,052.66.
    The old defaults claimed 1,015.00 (fees 15, interest 0)."""
    org = db.new_organization(timezone="Europe/Berlin")
    firma = customer(db, org, vat_id="DE123456789")
    due = date(2025, 9, 1)
    invoice(db, org, firma, due, amount_due="1000.00", gross="1000.00")

    result = run_overdue(
        db.engine, find_organization(db.engine, org["slug"]), on=due + timedelta(days=45)
    )

    assert result.status == "SUCCESS"
    (notice,) = notices(db, org)
    assert notice["level_name"] == "final_notice"
    assert (notice["fee"], notice["interest"]) == (Decimal("40.00"), Decimal("12.66"))
    assert notice["interest_rate_percent"] == Decimal("10.27")
    assert (notice["interest_from"], notice["interest_until"]) == (due, due + timedelta(days=45))
    assert notice["total_claimed"] == Decimal("1052.66")
    assert notice["dunning_costs_total"] == Decimal("2.50")


def test_a_consumer_is_in_default_from_the_first_reminder_at_five_points(db):
    """A customer without a VAT id is a consumer: no interest before the reminder, 1.27 + 5
    points after it, no flat fee; the level fees are the letters' 2.50."""
    org = db.new_organization(timezone="UTC")
    kunde = customer(db, org)
    due = date(2025, 9, 1)
    invoice(db, org, kunde, due, amount_due="1000.00", gross="1000.00")

    for day in (1, 14, 30):
        run_overdue(
            db.engine, find_organization(db.engine, org["slug"]), on=due + timedelta(days=day)
        )

    reminder, first, final = notices(db, org)
    assert (reminder["fee"], reminder["interest"]) == (Decimal("0.00"), Decimal("0.00"))
    assert reminder["interest_until"] == due + timedelta(days=1)  # default begins with it
    # 13 days after the reminder at 6.27 %: 1000 x 6.27 % x 13 / 365 = 2.233 -> 2.23
    assert (first["fee"], first["interest"]) == (Decimal("2.50"), Decimal("2.23"))
    assert first["interest_from"] == due + timedelta(days=1)
    # 16 more days: 2.748 -> 2.75; every day after the reminder charged once
    assert (final["fee"], final["interest"]) == (Decimal("2.50"), Decimal("2.75"))
    assert final["total_claimed"] == Decimal("1000.00") + Decimal("5.00") + Decimal("4.98")


def test_a_consumer_invoice_with_the_286_sentence_is_in_default_30_days_after_the_due_date():
    due = date(2025, 9, 1)
    plain = parse_settings(None)
    sentence = parse_settings({"invoice_default_sentence": True})
    candidate = _candidate("1000.00", due, kind="consumer")
    today = due + timedelta(days=45)  # the first notice comes late: the final notice

    without = notice_for(candidate, plain, today, "EUR")
    with_it = notice_for(candidate, sentence, today, "EUR")

    assert without.interest == Decimal("0.00")  # the notice itself puts the consumer in default
    assert with_it.interest_from == due + timedelta(days=30)
    # 15 days at 6.27 %: 2.577 -> 2.58
    assert with_it.interest == Decimal("2.58")
    assert with_it.fees_total == Decimal("2.50")  # no flat fee from a consumer


def test_a_business_not_on_agreed_terms_is_in_default_at_the_reminder_or_after_30_days():
    due = date(2025, 9, 1)
    settings_ = parse_settings({"due_date_agreed": False})
    candidate = _candidate("1000.00", due, kind="business")

    reminder = notice_for(candidate, settings_, due + timedelta(days=1), "EUR")
    assert reminder.interest == Decimal("0.00") and reminder.fee == Decimal("40.00")
    jumped = notice_for(candidate, settings_, due + timedelta(days=45), "EUR")
    # the earlier of the two: 30 days after the due date
    assert jumped.interest_from == due + timedelta(days=30)


def test_the_flat_fee_is_claimed_once_and_the_dunning_costs_are_offset_against_it():
    due = date(2025, 9, 1)
    settings_ = parse_settings(
        {"levels": [{"name": "a", "days": 1, "fee_fixed": "30.00"},
                    {"name": "b", "days": 10, "fee_fixed": "30.00"},
                    {"name": "c", "days": 20, "fee_fixed": "30.00"}]}
    )  # fmt: skip
    candidate = _candidate("100.00", due, kind="business")
    fees = []
    for day in (1, 10, 20):
        figures = notice_for(candidate, settings_, due + timedelta(days=day), "EUR")
        fees.append(figures.fee)
        candidate = _after(candidate, figures)
    # costs 30, 60, 90 against the flat 40: claimed 40, then what exceeds 40: 60, 90
    assert fees == [Decimal("40.00"), Decimal("20.00"), Decimal("30.00")]
    assert candidate.previous_fees_total == Decimal("90.00")


def test_interest_across_a_base_rate_change_uses_each_half_years_rate():
    """2024-12-17 .. 2025-01-15: 15 days of 2024's second half (3.37 %) and 15 of 2025's first
    half (2.27 %), a business (+9): 1000 x (12.37 % x 15 + 11.27 % x 15) / 365 = 9.715 -> 9.72."""
    due = date(2024, 12, 16)
    figures = notice_for(
        _candidate("1000.00", due, kind="business"),
        parse_settings(None),
        date(2025, 1, 15),
        "EUR",
    )
    assert figures.interest == Decimal("9.72")
    assert figures.interest_rate_percent == Decimal("11.27")  # the rate of the last day


def test_interest_stops_where_no_base_rate_is_known_and_the_cli_sets_it(db, monkeypatch, capsys):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    org = db.new_organization(timezone="UTC")
    firma = customer(db, org, vat_id="DE999999999")
    due = date(2026, 6, 15)
    invoice(db, org, firma, due, amount_due="3650.00", gross="3650.00")

    first = run_overdue(
        db.engine, find_organization(db.engine, org["slug"]), on=date(2026, 7, 5)
    )  # first dunning, day 20
    assert first.status == "PARTIAL"
    assert "no base rate (§ 247 BGB) is known from 2026-07-01" in first.errors[0]["message"]
    (notice,) = notices(db, org)
    # 15 days of June at 10.27 %: 3650 x 10.27 % x 15 / 365 = 15.405 -> 15.41; July not charged
    assert (notice["interest"], notice["interest_until"]) == (Decimal("15.41"), date(2026, 6, 30))

    assert main(["dunning-base-rate", "--org", org["slug"], "--from", "2026-07-01",
                 "--percent", "1.27"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["base_rates"] == [
        {"from": "2026-07-01", "percent": "1.27"}
    ]
    final = run_overdue(
        db.engine, find_organization(db.engine, org["slug"]), on=date(2026, 7, 15)
    )  # day 30
    assert final.status == "SUCCESS"
    last = notices(db, org)[-1]
    # the rest, 2026-07-01 .. 2026-07-15: 15 days -> 15.41 again, no day twice
    assert (last["interest_from"], last["interest"]) == (date(2026, 6, 30), Decimal("15.41"))

    assert main(["dunning-base-rate", "--org", org["slug"], "--from", "2026-08-01",
                 "--percent", "1"]) == 2  # fmt: skip
    assert "must be a 1 January or 1 July" in capsys.readouterr().err


def test_the_customer_kind_is_settable_and_decides_the_rules(db, monkeypatch, capsys):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    org = db.new_organization(timezone="UTC")
    small_business = customer(db, org)  # no VAT id: a consumer until set
    due = date(2025, 9, 1)
    invoice(db, org, small_business, due, amount_due="1000.00", gross="1000.00")

    assert main(["customer-kind", "--org", org["slug"], "--customers",
                 f"{small_business},424242", "--kind", "business"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["not_found"] == [424242]
    run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=due + timedelta(days=45))

    (notice,) = notices(db, org)
    assert notice["total_claimed"] == Decimal("1052.66")  # the business rules


def test_an_organization_outside_germany_keeps_its_configurable_levels(db):
    org = db.new_organization(timezone="UTC", country="AT")
    firma = customer(db, org, vat_id="ATU12345678")
    due = date(2025, 9, 1)
    invoice(db, org, firma, due, amount_due="1000.00", gross="1000.00")

    run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=due + timedelta(days=45))

    (notice,) = notices(db, org)
    assert (notice["fee"], notice["interest"]) == (Decimal("10.00"), Decimal("0.00"))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"law": "US"}, "settings.dunning.law must be DE or none"),
        ({"interest": {"base_rates": [{"from": "2026-02-01", "percent": "1"}]}},
         "settings.dunning.interest.base_rates[1].from must be a 1 January or 1 July"),
        ({"interest": {"base_rates": [{"from": "2026-07-01", "percent": "x"}]}},
         "settings.dunning.interest.base_rates[1].percent is not a number"),
        ({"interest": {"margin_consumer_percent": "-1"}},
         "settings.dunning.interest.margin_consumer_percent must be zero or more"),
        ({"flat_fee": "yes"}, "settings.dunning.flat_fee must be true or false"),
    ],
)  # fmt: skip
def test_bad_german_settings_name_the_setting(raw, message):
    with pytest.raises(DunningSettingsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_settings(raw)


amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000000"), places=2)
days = st.dates(min_value=date(2016, 7, 1), max_value=date(2026, 5, 1))
margins = st.sampled_from([Decimal("5"), Decimal("9")])


@settings(deadline=None)
@given(amount=amounts, margin=margins, start=days, a=st.integers(0, 400), b=st.integers(0, 400))
def test_interest_over_split_periods_sums_to_the_whole(amount, margin, start, a, b):
    """Charged in two pieces or at once: the exact sums agree, and rounded per notice they differ
    by at most a cent per piece."""
    rates = BaseRates()
    middle, end = start + timedelta(days=a), start + timedelta(days=a + b)
    first, second = (
        accrue(amount, margin, start, middle, rates),
        accrue(amount, margin, middle, end, rates),
    )
    whole = accrue(amount, margin, start, end, rates)
    if whole.missing_from is None:
        assert first.percent_days + second.percent_days == whole.percent_days
        rounded = first.exact.quantize(CENT) + second.exact.quantize(CENT)
        assert abs(rounded - whole.exact.quantize(CENT)) <= 2 * CENT


@settings(deadline=None)
@given(amount=amounts, margin=margins, start=days, a=st.integers(0, 400), b=st.integers(0, 30))
def test_interest_grows_with_the_days_and_is_whole_cents(amount, margin, start, a, b):
    candidate = _candidate(str(amount), start, kind="business" if margin == 9 else "consumer")
    law = parse_settings(None)
    shorter = notice_for(candidate, law, start + timedelta(days=max(a, 1)), "EUR")
    longer = notice_for(candidate, law, start + timedelta(days=max(a, 1) + b), "EUR")
    for figures in (shorter, longer):
        assert figures.interest == figures.interest.quantize(CENT)
        assert figures.fee == figures.fee.quantize(CENT)
    if longer.missing_base_rate_from is None:
        assert longer.interest >= shorter.interest
