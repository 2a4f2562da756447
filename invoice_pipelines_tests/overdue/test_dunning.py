"""Dunning arithmetic in Decimal: fees, default interest, level choice, settings."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoice_pipelines.core.dunning import (
    Candidate,
    DunningSettingsError,
    NoticeError,
    default_interest,
    due_level,
    level_fee,
    notice_for,
    parse_settings,
)

CENT = Decimal("0.01")
amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999999.99"), places=2)
percents = st.decimals(min_value=Decimal("0"), max_value=Decimal("25"), places=2)
DUE = date(2026, 3, 1)


def _candidate(amount: Decimal, **values) -> Candidate:
    base = {
        "invoice_id": 1,
        "invoice_number": "RE-1",
        "currency": "EUR",
        "due_date": DUE,
        "amount_due": amount,
        "last_payment_date": None,
        "previous_level": 0,
        "previous_interest_until": None,
        "previous_fees_total": Decimal("0.00"),
        "previous_interest_total": Decimal("0.00"),
    }
    return Candidate(**{**base, **values})


def test_defaults_are_reminder_first_dunning_and_final_notice():
    settings = parse_settings(None)
    # German defaults: the reminder that causes default is no damage; later letters cost 2.50
    assert [(lv.name, lv.days, lv.fee_fixed) for lv in settings.levels] == [
        ("reminder", 1, Decimal("0.00")),
        ("first_dunning", 14, Decimal("2.50")),
        ("final_notice", 30, Decimal("2.50")),
    ]
    # an organization outside Germany keeps the old, configurable levels
    abroad = parse_settings(None, country="AT")
    assert [(lv.fee_fixed, lv.charge_interest) for lv in abroad.levels] == [
        (Decimal("0.00"), False),
        (Decimal("5.00"), True),
        (Decimal("10.00"), True),
    ]
    assert abroad.law == "none" and abroad.margin("business") == Decimal("0")
    assert [due_level(settings.levels, d) for d in (0, 1, 13)][0] is None
    assert [due_level(settings.levels, d).name for d in (1, 13, 14, 29, 30, 400)] == [
        "reminder",
        "reminder",
        "first_dunning",
        "first_dunning",
        "final_notice",
        "final_notice",
    ]


def test_a_negative_day_count_is_a_friendly_reminder_before_the_due_date():
    settings = parse_settings(
        {"levels": [{"name": "heads_up", "days": -3}, {"name": "reminder", "days": 7}]}
    )
    figures = notice_for(_candidate(Decimal("100.00")), settings, DUE - timedelta(days=3), "EUR")
    assert figures.level.name == "heads_up" and figures.days_overdue == -3
    assert (figures.fee, figures.interest) == (Decimal("0.00"), Decimal("0.00"))
    assert (
        notice_for(_candidate(Decimal("100.00")), settings, DUE - timedelta(days=4), "EUR") is None
    )


@settings(deadline=None)
@given(amount=amounts, fixed=st.decimals(min_value=0, max_value=100, places=2), pct=percents)
def test_fee_is_fixed_plus_percent_of_the_open_amount_rounded_once(amount, fixed, pct):
    level = parse_settings(
        {"levels": [{"name": "x", "days": 1, "fee_fixed": str(fixed), "fee_percent": str(pct)}]}
    ).levels[0]
    fee = level_fee(level, amount)
    assert fee == (fixed + amount * pct / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    assert isinstance(fee, Decimal) and fee.as_tuple().exponent == -2


@settings(deadline=None)
@given(amount=amounts, rate=percents, days=st.integers(min_value=0, max_value=3000))
def test_interest_is_per_day_on_the_open_amount(amount, rate, days):
    interest = default_interest(amount, rate, days)
    exact = amount * rate / 100 * days / 365
    assert interest == exact.quantize(CENT, rounding=ROUND_HALF_UP)
    assert abs(interest - exact) <= Decimal("0.005")


@settings(deadline=None)
@given(
    amount=amounts,
    rate=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("25"), places=2),
    gaps=st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=3),
)
def test_interest_over_several_notices_charges_every_day_once(amount, rate, gaps):
    """Notices on later days each charge from where the previous one stopped: together they
    charge the whole period once (up to a cent of rounding per notice), never a day twice."""
    settings = parse_settings(
        {
            "levels": [{"name": f"l{i}", "days": sum(gaps[: i + 1])} for i in range(len(gaps))],
            "interest": {"base_rate_percent": "0", "margin_percent": str(rate)},
        }
    )
    candidate, charged, periods = _candidate(amount), Decimal(0), []
    for level in settings.levels:
        today = DUE + timedelta(days=level.days)
        figures = notice_for(candidate, settings, today, "EUR")
        assert figures.level == level
        charged += figures.interest
        periods.append((figures.interest_from, figures.interest_until))
        candidate = _candidate(
            amount,
            previous_level=level.number,
            previous_interest_until=figures.interest_until,
            previous_fees_total=figures.fees_total,
            previous_interest_total=figures.interest_total,
        )
        assert figures.interest_total == charged
    assert all(a[1] == b[0] for a, b in zip(periods, periods[1:], strict=False))
    whole = default_interest(amount, rate, sum(gaps))
    assert abs(charged - whole) <= Decimal("0.01") * len(gaps)


def test_interest_runs_on_the_balance_before_a_partial_payment_and_on_the_rest_after_it():
    """Interest runs from the start of default, not from the payment: the days up to the payment
    on what was open then (from the payment rows), the days after it on the rest."""
    settings = parse_settings({"interest": {"base_rate_percent": "0", "margin_percent": "10"}})
    paid_on = DUE + timedelta(days=5)
    candidate = _candidate(
        Decimal("365.00"), last_payment_date=paid_on, payments=((paid_on, Decimal("730.00")),),
        amount_paid=Decimal("730.00"),
    )  # fmt: skip
    figures = notice_for(candidate, settings, DUE + timedelta(days=15), "EUR")
    assert figures.level.name == "first_dunning"
    assert figures.interest_from == DUE
    # 1095.00 x 10 % x 5 / 365 + 365.00 x 10 % x 10 / 365 = 1.50 + 1.00
    assert figures.interest == Decimal("2.50")
    # no payment rows known: every day on what is open now
    figures = notice_for(
        _candidate(Decimal("365.00"), last_payment_date=paid_on),
        settings,
        DUE + timedelta(days=15),
        "EUR",
    )
    assert figures.interest == Decimal("1.50")  # 365.00 x 10 % x 15 / 365


def test_a_level_already_noticed_is_not_noticed_again():
    settings = parse_settings(None)
    candidate = _candidate(Decimal("50.00"), previous_level=3)
    assert notice_for(candidate, settings, DUE + timedelta(days=90), "EUR") is None


def test_a_fixed_fee_in_another_currency_is_refused_for_that_invoice():
    with pytest.raises(NoticeError, match="is in USD"):
        notice_for(
            _candidate(Decimal("50.00"), currency="USD"),
            parse_settings(None),
            DUE + timedelta(days=20),
            "EUR",
        )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("levels", "settings.dunning must be an object."),
        ({"levels": []}, "settings.dunning.levels must be a non-empty list."),
        ({"level": []}, "settings.dunning has unknown keys: level."),
        ({"levels": [{"days": 1.5}]}, "settings.dunning.levels[1].days must be a whole number"),
        ({"levels": [{"days": 1, "fee_fixed": 5.0}]}, "must be a decimal string"),
        ({"levels": [{"days": 1, "fee_fixed": "-1"}]}, "fee_fixed must be zero or more"),
        ({"levels": [{"days": 1, "channel": "fax"}]}, "channel must be one of in_app, email"),
        ({"levels": [{"days": 1}, {"days": 1}]}, "two levels have the same days"),
        ({"interest": {"margin_percent": "abc"}}, "margin_percent is not a number"),
        ({"interest": {"base_rate_percent": "-5", "margin_percent": "1"}}, "is negative"),
    ],
)
def test_bad_settings_are_refused_with_one_sentence(raw, message):
    with pytest.raises(DunningSettingsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_settings(raw)
