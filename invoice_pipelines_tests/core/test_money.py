"""Money helpers: Decimal only, commercial rounding, faithful strings."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invoice_pipelines.core.money import (
    MoneyError,
    percent_of,
    plain_string,
    round_cents,
    to_decimal,
)

amounts = st.decimals(
    min_value=Decimal("-1000000"), max_value=Decimal("1000000"), allow_nan=False, places=4
)


def test_to_decimal_accepts_str_int_decimal_and_refuses_float() -> None:
    assert to_decimal(" 529.870 ") == Decimal("529.870")
    assert to_decimal(7) == Decimal(7)
    assert to_decimal(Decimal("1.5")) == Decimal("1.5")
    with pytest.raises(MoneyError, match="float"):
        to_decimal(0.1)
    with pytest.raises(MoneyError):
        to_decimal(True)
    with pytest.raises(MoneyError, match="not a decimal"):
        to_decimal("12,50")
    with pytest.raises(MoneyError, match="finite"):
        to_decimal("NaN")


def test_round_cents_rounds_half_away_from_zero() -> None:
    assert round_cents(Decimal("2.345")) == Decimal("2.35")
    assert round_cents(Decimal("-2.345")) == Decimal("-2.35")
    assert round_cents(Decimal("2.344")) == Decimal("2.34")


def test_percent_of_is_the_vat_of_a_basis() -> None:
    # The CEN BR-CO-17 example: 19 % of -72.50 is -13.775, rounded half-up to -13.78.
    assert percent_of(Decimal("-72.50"), Decimal("19.00")) == Decimal("-13.78")
    assert percent_of(Decimal("473.00"), Decimal("0")) == Decimal("0.00")


def test_plain_string_keeps_the_stated_scale_and_never_uses_exponents() -> None:
    assert plain_string(Decimal("529.870")) == "529.870"
    assert plain_string(Decimal("336.9")) == "336.9"
    assert plain_string(Decimal("1E+2")) == "100"
    assert plain_string(Decimal("0.0000001")) == "0.0000001"


@given(amounts)
def test_round_cents_is_idempotent_and_within_half_a_cent(value: Decimal) -> None:
    rounded = round_cents(value)
    assert round_cents(rounded) == rounded
    assert abs(rounded - value) <= Decimal("0.005")


@given(amounts)
def test_plain_string_round_trips(value: Decimal) -> None:
    assert Decimal(plain_string(value)) == value
    assert "E" not in plain_string(value)


def test_a_zero_amount_has_no_sign() -> None:
    # a negative base at 0 % VAT: Decimal gives -0.00, which documents must never show
    zero = round_cents(Decimal("-0.49") * Decimal(0) / 100)
    assert str(zero) == "0.00"
    assert str(round_cents(Decimal("-0.004"))) == "0.00"
