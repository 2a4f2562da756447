"""The export books every VAT category the rest of the product knows as charging no VAT
(`core.totals.ZERO_VAT_CATEGORIES`, the one definition), in both charts and both directions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.totals import ZERO_VAT_CATEGORIES
from invoice_pipelines.exports.domain.bookings import BookingRules
from invoice_pipelines.exports.domain.export_settings import (
    CHART_DEFAULTS,
    DIRECTIONS,
    load_settings,
)


@pytest.mark.parametrize("chart", sorted(CHART_DEFAULTS))
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_every_zero_vat_category_is_booked_with_the_default_settings(chart, direction):
    organization = Organization(
        id=1,
        slug="acme",
        name="Acme",
        datev_berater_nr=29098,
        datev_mandant_nr=55003,
        datev_chart=chart,
        settings={"exports": {"directions": list(DIRECTIONS)}},
    )
    rules = BookingRules(load_settings(organization), direction, "2026-11")
    for category in sorted(ZERO_VAT_CATEGORIES):
        found = rules._vat_terms(category, Decimal("0"), None)
        # (contra account, BU key); a string is the reason the invoice is skipped
        assert isinstance(found, tuple), (category, found)
    assert rules._vat_terms("XX", Decimal("0"), None) == "unknown VAT category XX"
