"""Money: Decimal only, quantized to cents with ROUND_HALF_UP at documented points."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
ZERO = Decimal("0")


class MoneyError(ValueError):
    """A value that cannot be read as an amount of money."""


def to_decimal(value: object) -> Decimal:
    """Convert int/str/Decimal to Decimal; floats are refused (they already lost precision)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or isinstance(value, float):
        raise MoneyError(
            f"refusing {type(value).__name__} {value!r}: money must be Decimal, int or str"
        )
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation as exc:
            raise MoneyError(f"not a decimal number: {value!r}") from exc
        if not result.is_finite():
            raise MoneyError(f"not a finite number: {value!r}")
        return result
    raise MoneyError(f"cannot read {type(value).__name__} as money")


def round_cents(value: Decimal) -> Decimal:
    """Round to cents, half away from zero (the commercial rounding EN 16931 uses); a zero is
    always 0.00, never -0.00 (e.g. a negative base at 0 % VAT)."""
    rounded = to_decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)
    return rounded if rounded else rounded.copy_abs()


def percent_of(base: Decimal, rate_percent: Decimal) -> Decimal:
    """base x rate%, rounded half-up to cents (BR-CO-17 style)."""
    return round_cents(to_decimal(base) * to_decimal(rate_percent) / Decimal(100))


def plain_string(value: Decimal) -> str:
    """The amount as the document wrote it, without exponent notation ("529.870" stays "529.870").

    JSON has no decimal type; a string keeps every digit and the stated scale.
    """
    return format(to_decimal(value), "f")
