"""Default interest per segment: each day on what was open that day, every day once."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from invoice_pipelines.core.base_rates import BaseRates
from invoice_pipelines.core.dunning import (
    Candidate,
    InterestSegment,
    accrue_segments,
    balance_segments,
    notice_for,
    parse_settings,
)
from invoice_pipelines.core.money import round_cents

# the published base rates (§ 247 BGB) change four times in this window
FIRST, LAST = date(2023, 1, 1), date(2026, 6, 30)
RATES = BaseRates()
MARGIN = Decimal("9")
GERMAN = parse_settings(None)  # business debtor: default from the day after the due date

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999999.99"), places=2)
days = st.dates(min_value=FIRST, max_value=LAST)


@st.composite
def periods(draw, min_days: int = 1):
    after = draw(
        st.dates(min_value=FIRST - timedelta(days=1), max_value=LAST - timedelta(min_days))
    )
    until = draw(st.dates(min_value=after + timedelta(days=min_days), max_value=LAST))
    return after, until


payments = st.lists(st.tuples(days, amounts), max_size=6)


def _balance_of(day: date, due: Decimal, paid: list[tuple[date, Decimal]]) -> Decimal:
    return due + sum((amount for paid_on, amount in paid if paid_on >= day), Decimal(0))


def _candidate(due_date: date, amount_due: Decimal, **values) -> Candidate:
    base = {
        "invoice_id": 1, "invoice_number": "RE-1", "currency": "EUR", "due_date": due_date,
        "amount_due": amount_due, "last_payment_date": None, "previous_level": 0,
        "previous_interest_until": None, "previous_fees_total": Decimal("0.00"),
        "previous_interest_total": Decimal("0.00"),
    }  # fmt: skip
    return Candidate(**{**base, **values})


def _interest(segments: list[InterestSegment]) -> Decimal:
    return round_cents(accrue_segments(segments, MARGIN, RATES)[0].exact)


@settings(deadline=None)
@given(period=periods(), due=amounts, paid=payments)
def test_segments_cover_every_day_once_each_on_what_was_open_that_day(period, due, paid):
    after, until = period
    segments = balance_segments(due, paid, after, until)

    assert segments[0].after == after and segments[-1].until == until
    assert all(a.until == b.after for a, b in zip(segments, segments[1:], strict=False))
    assert all(s.until > s.after for s in segments)
    assert sum(s.days for s in segments) == (until - after).days
    # one segment per balance: neighbours differ
    assert all(a.amount != b.amount for a, b in zip(segments, segments[1:], strict=False))
    for segment in segments:
        for n in range(1, segment.days + 1):
            day = segment.after + timedelta(days=n)
            assert segment.amount == _balance_of(day, due, paid)


@settings(deadline=None)
@given(period=periods(min_days=2), amount=amounts, data=st.data())
def test_splitting_a_period_at_any_day_changes_nothing_while_the_balance_stays(
    period, amount, data
):
    after, until = period
    cut = data.draw(st.dates(min_value=after + timedelta(days=1), max_value=until - timedelta(1)))
    whole, _ = accrue_segments([InterestSegment(after, until, amount)], MARGIN, RATES)
    split, _ = accrue_segments(
        [InterestSegment(after, cut, amount), InterestSegment(cut, until, amount)], MARGIN, RATES
    )

    assert split.percent_days == whole.percent_days
    assert (split.charged_until, split.rate_percent) == (whole.charged_until, whole.rate_percent)


@settings(deadline=None)
@given(
    period=periods(min_days=2),
    rest=amounts,
    paid=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2),
    data=st.data(),
)
def test_a_partial_payment_claims_between_the_rest_alone_and_the_full_amount_throughout(
    period, rest, paid, data
):
    after, until = period
    paid_on = data.draw(st.dates(min_value=after, max_value=until + timedelta(days=3)))
    segments = balance_segments(rest, [(paid_on, paid)], after, until)

    interest = _interest(segments)

    assert _interest([InterestSegment(after, until, rest)]) <= interest
    assert interest <= _interest([InterestSegment(after, until, rest + paid)])
    if after < paid_on < until:
        assert [s.amount for s in segments] == [rest + paid, rest]
        assert segments[0].until == paid_on  # the payment's day on what was open before it


@settings(deadline=None)
@given(period=periods(), due=amounts, paid=payments, cap=amounts)
def test_no_payment_known_charges_the_amount_due_and_the_rows_never_add_more_than_was_paid(
    period, due, paid, cap
):
    after, until = period

    for unknown in (None, []):
        assert balance_segments(due, unknown, after, until) == [InterestSegment(after, until, due)]
    capped = balance_segments(due, paid, after, until, paid_at_most=cap)
    assert all(due <= s.amount <= due + cap for s in capped)


def test_the_days_before_a_partial_payment_after_an_earlier_notice_are_charged_on_the_balance():
    """The issue's case: a notice charged up to 10 March, 3650.00 of 7300.00 came in on
    20 March, the next notice on 30 March charges 10 days on 7300.00 and 10 on 3650.00."""
    rates = {"base_rate_percent": "1.27", "margin_percent": "9"}
    dunning = parse_settings({"interest": rates})
    due = date(2026, 2, 20)
    earlier_until, paid_on, today = date(2026, 3, 10), date(2026, 3, 20), date(2026, 3, 30)
    candidate = _candidate(
        due, Decimal("3650.00"), previous_level=2, previous_interest_until=earlier_until,
        previous_fees_total=Decimal("40.00"), previous_interest_total=Decimal("36.00"),
        last_payment_date=paid_on, payments=((paid_on, Decimal("3650.00")),),
        amount_paid=Decimal("3650.00"),
    )  # fmt: skip

    figures = notice_for(candidate, dunning, today, "EUR")

    assert figures.level.name == "final_notice"
    assert (figures.interest_from, figures.interest_until) == (earlier_until, today)
    assert figures.interest_segments == (
        InterestSegment(earlier_until, paid_on, Decimal("7300.00")),
        InterestSegment(paid_on, today, Decimal("3650.00")),
    )
    # 7300.00 x 10.27 % x 10 / 365 + 3650.00 x 10.27 % x 10 / 365 = 20.54 + 10.27
    assert figures.interest == Decimal("30.81")
    assert figures.interest_total == Decimal("66.81")
    # without the payment rows: every day on what is open now (less, never more)
    unknown = notice_for(
        _candidate(**{**_fields(candidate), "payments": None}), dunning, today, "EUR"
    )
    assert unknown.interest == Decimal("20.54")
    assert unknown.interest_segments == (InterestSegment(earlier_until, today, Decimal("3650.00")),)


def _fields(candidate: Candidate) -> dict:
    return {name: getattr(candidate, name) for name in Candidate.__slots__}


def test_a_half_year_without_a_base_rate_stops_the_segments_before_it():
    due = date(2026, 6, 1)
    candidate = _candidate(
        due, Decimal("100.00"), payments=((date(2026, 6, 20), Decimal("100.00")),),
        amount_paid=Decimal("100.00"),
    )  # fmt: skip

    figures = notice_for(candidate, GERMAN, date(2026, 7, 15), "EUR")

    assert figures.missing_base_rate_from == date(2026, 7, 1)
    assert figures.interest_until == date(2026, 6, 30)
    assert [(s.until, s.amount) for s in figures.interest_segments] == [
        (date(2026, 6, 20), Decimal("200.00")),
        (date(2026, 6, 30), Decimal("100.00")),
    ]
