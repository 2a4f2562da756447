"""Sales invoice totals: cents rounding half-up per line, one VAT row per rate, gross = net + VAT."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invoice_pipelines.core.money import MoneyError
from invoice_pipelines.core.totals import (
    LineAmounts,
    VatBreakdown,
    compute_totals,
    implied_vat_category,
    line_net,
    vat_amount,
    vat_problem,
)

D = Decimal


def line(quantity: str, price: str, category: str = "S", rate: str = "19.00") -> LineAmounts:
    return LineAmounts(D(quantity), D(price), category, D(rate))


def test_line_net_rounds_half_up_to_cents():
    assert line_net(D("3"), D("0.3333")) == D("1.00")  # 0.9999
    assert line_net(D("1"), D("0.125")) == D("0.13")
    assert line_net(D("1"), D("0.124")) == D("0.12")
    assert line_net(D("2.5"), D("0.01")) == D("0.03")  # 0.025 goes up
    # discount lines: half away from zero, like the invoice programs customers compare with
    assert line_net(D("1"), D("-0.125")) == D("-0.13")


def test_vat_is_computed_per_rate_on_the_summed_basis_not_per_line():
    # three lines of 0.07 at 19 %: VAT per line would be 3 x round(0.0133) = 0.03;
    # per rate it is round(0.21 x 0.19 = 0.0399) = 0.04
    totals = compute_totals([line("1", "0.07"), line("1", "0.07"), line("1", "0.07")])
    assert totals.breakdown == (VatBreakdown("S", D("19.00"), D("0.21"), D("0.04")),)
    assert totals.tax_total == D("0.04")


def test_mixed_rates_discount_zero_rated_and_reverse_charge():
    totals = compute_totals(
        [
            line("2", "24.90"),  # 49.80 at 19 %
            line("1", "39.95", rate="7.00"),  # 39.95 at 7 %
            line("1.5", "78.50"),  # 117.75 at 19 %
            line("1", "-10.00"),  # discount at 19 %
            line("1", "100.00", "AE", "0.00"),  # reverse charge: no VAT on the invoice
            line("1", "15.00", "Z", "0"),  # zero rated; rate 0 and 0.00 are one row
        ]
    )
    assert totals.line_nets == (
        D("49.80"),
        D("39.95"),
        D("117.75"),
        D("-10.00"),
        D("100.00"),
        D("15.00"),
    )
    assert totals.breakdown == (
        VatBreakdown("AE", D("0.00"), D("100.00"), D("0.00")),
        VatBreakdown("S", D("7.00"), D("39.95"), D("2.80")),  # 2.7965
        VatBreakdown("S", D("19.00"), D("157.55"), D("29.93")),  # 29.9345
        VatBreakdown("Z", D("0.00"), D("15.00"), D("0.00")),
    )
    assert totals.net_total == D("312.50")
    assert totals.tax_total == D("32.73")
    assert totals.gross_total == D("345.23")
    assert totals.amount_due == totals.gross_total


def test_vat_amount_rounds_half_up():
    assert vat_amount(D("0.50"), D("19.00")) == D("0.10")  # 0.095
    assert vat_amount(D("-0.50"), D("19.00")) == D("-0.10")


def test_money_is_never_float():
    with pytest.raises(MoneyError):
        line_net(2.0, D("1.00"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("category", "rate", "ok"),
    [
        ("S", "19.00", True),
        ("S", "0.00", False),
        ("AE", "0.00", True),
        ("AE", "19.00", False),
        ("Z", "0", True),
        ("E", "7.00", False),
        ("S", "-1", False),
        ("XX", "0", False),
    ],
)
def test_vat_category_and_rate_must_fit(category, rate, ok):
    assert (vat_problem(category, D(rate)) is None) is ok


amounts = st.decimals(
    min_value=D("-500"), max_value=D("5000"), places=4, allow_nan=False, allow_infinity=False
)
quantities = st.decimals(
    min_value=D("0.0001"), max_value=D("1000"), places=4, allow_nan=False, allow_infinity=False
)
rates = st.sampled_from(
    [("S", D("19.00")), ("S", D("7.00")), ("AE", D("0.00")), ("Z", D("0.00")), ("S", D("5.50"))]
)
lines = st.lists(
    st.builds(lambda q, p, r: LineAmounts(q, p, r[0], r[1]), quantities, amounts, rates),
    min_size=1,
    max_size=30,
)


@given(lines)
def test_totals_add_up_for_any_lines(items):
    totals = compute_totals(items)
    assert totals.gross_total == totals.net_total + totals.tax_total
    assert totals.net_total == sum(totals.line_nets, D(0))
    assert totals.net_total == sum((b.basis for b in totals.breakdown), D(0))
    assert totals.tax_total == sum((b.amount for b in totals.breakdown), D(0))
    for row in totals.breakdown:
        assert row.amount == vat_amount(row.basis, row.vat_rate)
        assert row.amount.as_tuple().exponent == -2
    # one breakdown row per (category, rate)
    assert len({(b.vat_category, b.vat_rate) for b in totals.breakdown}) == len(totals.breakdown)


@given(lines, st.randoms())
def test_totals_do_not_depend_on_line_order(items, rnd):
    shuffled = list(items)
    rnd.shuffle(shuffled)
    a, b = compute_totals(items), compute_totals(shuffled)
    assert (a.net_total, a.tax_total, a.gross_total, a.breakdown) == (
        b.net_total,
        b.tax_total,
        b.gross_total,
        b.breakdown,
    )


def test_the_category_an_export_names_for_a_vat_row():
    # the document's own code wins; a text PDF's rate above 0 is S; 0 % could be any of six
    assert implied_vat_category("AE", Decimal("0")) == "AE"
    assert implied_vat_category(None, Decimal("19")) == "S"
    assert implied_vat_category("", Decimal("7.00")) == "S"
    assert implied_vat_category(None, Decimal("0")) is None
    assert implied_vat_category(None, None) is None
