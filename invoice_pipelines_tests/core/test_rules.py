"""Our EN 16931 business rules over the normalized invoice."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from invoice_pipelines.core.invoice import (
    Address,
    AllowanceCharge,
    CurrencyAmount,
    Invoice,
    InvoiceLine,
    VatBreakdown,
    facturx_profile,
)
from invoice_pipelines.core.money import percent_of
from invoice_pipelines.core.rules import (
    cen_round,
    check_invoice,
    duplicate_number_finding,
    invoice_number_key,
)

D = Decimal
TODAY = date(2026, 11, 21)


def valid_invoice(**changes: object) -> Invoice:
    """473.00 + 56.87 = 529.87, two lines at 19 % and 7 %: the FeRD 'Einfach' numbers."""
    invoice = Invoice(
        number="471102",
        type_code="380",
        issue_date=date(2018, 3, 5),
        due_date=date(2018, 4, 4),
        currency="EUR",
        guideline_id="urn:cen.eu:en16931:2017",
        seller_name="Lieferant GmbH",
        seller_vat_id="DE123456789",
        seller_address=Address("Lieferantenstraße 20", "München", "80333", "DE"),
        buyer_name="Kunden AG Mitte",
        buyer_address=Address("Kundenstraße 15", "Frankfurt", "69876", "DE"),
        line_total=D("473.00"),
        allowance_total=D("0.00"),
        charge_total=D("0.00"),
        net_total=D("473.00"),
        tax_total=D("56.87"),
        gross_total=D("529.87"),
        prepaid=D("0.00"),
        amount_due=D("529.87"),
        tax_total_entries=(CurrencyAmount(D("56.87"), "EUR"),),
        lines=(
            InvoiceLine(
                "1",
                "Trennblätter A4",
                None,
                D("20.0000"),
                "H87",
                D("9.9000"),
                None,
                D("198.00"),
                "S",
                D("19.00"),
            ),
            InvoiceLine(
                "2",
                "Joghurt Banane",
                None,
                D("50.0000"),
                "H87",
                D("5.5000"),
                None,
                D("275.00"),
                "S",
                D("7.00"),
            ),
        ),  # fmt: skip
        vat_breakdown=(
            VatBreakdown("S", D("19.00"), D("198.00"), D("37.62")),
            VatBreakdown("S", D("7.00"), D("275.00"), D("19.25")),
        ),
    )
    return replace(invoice, **changes)


def rules(invoice: Invoice) -> list[str]:
    return [f.rule for f in check_invoice(invoice, today=TODAY) if f.severity == "error"]


def test_a_consistent_invoice_passes_every_rule() -> None:
    assert check_invoice(valid_invoice(), today=TODAY) == []


def test_missing_mandatory_terms_are_reported_with_their_br_ids() -> None:
    invoice = valid_invoice(number=None, issue_date=None, seller_name="", buyer_address=None)
    assert set(rules(invoice)) == {"BR-02", "BR-03", "BR-06", "BR-10", "BR-11"}
    assert "BR-16" in rules(valid_invoice(lines=(), line_total=D("0.00"), net_total=None))


def test_minimum_and_basic_wl_profiles_are_not_asked_for_lines() -> None:
    for urn in ("urn:factur-x.eu:1p0:minimum", "urn:factur-x.eu:1p0:basicwl"):
        invoice = valid_invoice(guideline_id=urn, lines=())
        assert "BR-16" not in rules(invoice)
        assert "BR-CO-10" not in rules(invoice)
    # MINIMUM has no buyer address and no line total either.
    minimum = valid_invoice(
        guideline_id="urn:factur-x.eu:1p0:minimum", lines=(), buyer_address=None, line_total=None
    )
    assert rules(minimum) == []
    # An EN 16931 invoice without lines is incomplete.
    assert "BR-16" in rules(valid_invoice(lines=()))


def test_line_sum_must_match_bt106() -> None:
    findings = check_invoice(valid_invoice(line_total=D("474.00")), today=TODAY)
    co10 = [f for f in findings if f.rule == "BR-CO-10"]
    assert len(co10) == 1
    assert "474.00" in co10[0].message and "473.00" in co10[0].message


def test_net_total_follows_allowances_and_charges() -> None:
    with_allowance = valid_invoice(
        allowance_total=D("10.00"),
        net_total=D("463.00"),
        gross_total=D("519.87"),
        amount_due=D("519.87"),
        allowances_charges=(AllowanceCharge(False, D("10.00"), reason="Rabatt"),),
    )
    assert "BR-CO-13" not in rules(with_allowance)
    assert "BR-CO-11" not in rules(with_allowance)
    assert "BR-CO-13" in rules(replace(with_allowance, net_total=D("473.00")))
    assert "BR-CO-11" in rules(replace(with_allowance, allowance_total=D("11.00")))


def test_gross_is_net_plus_vat_with_exactly_one_vat_total_in_invoice_currency() -> None:
    assert "BR-CO-15" in rules(valid_invoice(gross_total=D("529.88"), amount_due=D("529.88")))
    twice = valid_invoice(
        tax_total_entries=(CurrencyAmount(D("56.87"), "EUR"), CurrencyAmount(D("57.00"), "EUR"))
    )
    assert "BR-CO-15" in rules(twice)
    # A second total in the VAT accounting currency (BT-111) is fine.
    other_currency = valid_invoice(
        tax_currency="DKK",
        tax_total_entries=(CurrencyAmount(D("56.87"), "EUR"), CurrencyAmount(D("424.00"), "DKK")),
    )
    assert "BR-CO-15" not in rules(other_currency)


def test_amount_due_subtracts_prepaid_and_adds_rounding() -> None:
    prepaid = valid_invoice(prepaid=D("27.00"), rounding=D("0.13"), amount_due=D("503.00"))
    assert "BR-CO-16" not in rules(prepaid)
    assert "BR-CO-16" in rules(replace(prepaid, amount_due=D("529.87")))


def test_vat_per_category_allows_one_currency_unit_like_cen() -> None:
    def vat(amount: str) -> Invoice:
        breakdown = (VatBreakdown("S", D("19.00"), D("-72.50"), D(amount)),)
        return valid_invoice(vat_breakdown=breakdown, tax_total=None, tax_total_entries=())

    for ok in ("-13.78", "-12.78", "-14.78"):
        assert "BR-CO-17" not in rules(vat(ok)), ok
    for bad in ("-12.77", "-14.79"):
        assert "BR-CO-17" in rules(vat(bad)), bad


def warnings(invoice: Invoice) -> list[str | None]:
    return [f.rule for f in check_invoice(invoice, today=TODAY) if f.severity == "warning"]


def test_wrong_line_net_is_a_warning_not_a_rejection() -> None:
    # noNetPriceValidation.xml: 0.10 x 400 stated as 316.00. EN 16931 has no fatal rule for it.
    line = InvoiceLine("1", "Joghurt", None, D("400"), "C62", D("0.1000"), D("1"), D("316.00"))
    invoice = valid_invoice(lines=(line,), line_total=D("316.00"))
    [finding] = [f for f in check_invoice(invoice, today=TODAY) if f.rule == "IP-LINE-01"]
    assert finding.severity == "warning"
    assert "0.1000 x quantity 400 gives 40.00" in finding.message
    assert "IP-LINE-01" not in rules(invoice)


def test_line_net_follows_the_en16931_formula_within_two_cents() -> None:
    """BT-131 = BT-129 x BT-146 / BT-149 + charges - allowances, with PEPPOL-EN16931-R120's 0.02."""
    line = InvoiceLine("1", "Schrauben", None, D("250"), "C62", D("12.00"), D("100"), D("30.00"))
    assert warnings(valid_invoice(lines=(line,), line_total=None)) == []  # 12.00 per 100 pieces
    allowance = replace(
        line, unit_price=D("1.00"), price_base_quantity=None, net_amount=D("240.00"),
        allowances=(D("15"),), charges=(D("5"),),
    )  # fmt: skip
    assert warnings(valid_invoice(lines=(allowance,), line_total=None)) == []
    for net, warned in (("30.02", False), ("29.98", False), ("30.03", True), ("29.97", True)):
        off = replace(line, net_amount=D(net))
        assert ("IP-LINE-01" in warnings(valid_invoice(lines=(off,), line_total=None))) == warned
    zero_base = replace(line, price_base_quantity=D("0"))
    assert warnings(valid_invoice(lines=(zero_base,), line_total=None)) == ["IP-LINE-01"]


def test_gross_prices_with_a_discount_give_the_net_price() -> None:
    """Bruttopreise: BT-146 = BT-148 - BT-147; a net price printed rounded is the same price."""
    # FNFE's Facture_UE_EN16931: gross 4.55, 10 % off (stated 0.45), net printed 4.10, and the
    # line computed with 4.095: 8 x 4.095 = 32.76, not 8 x 4.10 = 32.80.
    line = InvoiceLine(
        "1", "Nougat", None, D("8.000"), "C62", D("4.10"), None, D("32.76"), "S", D("19.00"),
        gross_price=D("4.55"), price_discount=D("0.45"), price_discount_percent=D("10.00"),
    )  # fmt: skip
    assert warnings(valid_invoice(lines=(line,), line_total=None)) == []
    # gross price per 10 pieces, net price per piece
    per_ten = replace(
        line, gross_price=D("45.50"), price_discount=D("4.55"), gross_price_base_quantity=D("10"),
        price_discount_percent=None, unit_price=D("4.095"), net_amount=D("32.76"),
    )  # fmt: skip
    assert warnings(valid_invoice(lines=(per_ten,), line_total=None)) == []
    wrong_net = replace(line, unit_price=D("3.10"), price_discount_percent=None)
    assert "IP-LINE-02" in warnings(valid_invoice(lines=(wrong_net,), line_total=None))
    assert "IP-LINE-02" not in rules(valid_invoice(lines=(wrong_net,), line_total=None))


def test_totals_are_compared_as_cen_rounds_them() -> None:
    """Only the computed side is rounded, and XPath's round() takes a half cent upwards."""
    assert cen_round(D("0.125")) == D("0.13")
    assert cen_round(D("-0.125")) == D("-0.12")
    assert cen_round(D("-0.005")) == D("0.00")
    # BR-CO-13: a total without VAT stated with a stray third decimal is not the rounded value
    assert "BR-CO-13" in rules(valid_invoice(net_total=D("473.004")))
    # BR-CO-10: two credit lines of -0.0025 add up to -0.005, which CEN rounds to 0.00
    tiny = InvoiceLine(
        "1", "x", None, D("1"), "C62", D("-0.0025"), None, D("-0.0025"), "S", D("19")
    )
    credit = valid_invoice(lines=(tiny, replace(tiny, line_id="2")), line_total=D("0.00"))
    assert "BR-CO-10" not in rules(credit)


def test_vat_per_category_compares_absolute_values_and_zero_rates_like_cen() -> None:
    def vat(basis: str, rate: str, amount: str) -> Invoice:
        breakdown = (VatBreakdown("S", D(rate), D(basis), D(amount)),)
        return valid_invoice(vat_breakdown=breakdown, tax_total=None, tax_total_entries=())

    assert "BR-CO-17" not in rules(vat("72.50", "19", "-13.78"))  # CEN compares |amounts|
    assert "BR-CO-17" not in rules(vat("100.00", "0", "0.49"))  # rounds to 0
    assert "BR-CO-17" in rules(vat("100.00", "0", "0.60"))  # rounds to 1: not 0 % VAT


def test_gross_equal_to_net_passes_br_co_15_as_in_cen_cii() -> None:
    no_vat_charged = valid_invoice(gross_total=D("473.00"), amount_due=D("473.00"))
    assert "BR-CO-15" not in rules(no_vat_charged)
    missing_vat = valid_invoice(tax_total=None, tax_total_entries=())
    assert "BR-CO-15" in rules(missing_vat)


def test_implausible_dates() -> None:
    assert "IP-DATE-01" in rules(valid_invoice(issue_date=date(2026, 11, 30), due_date=None))
    assert "IP-DATE-01" not in rules(valid_invoice(issue_date=date(2026, 11, 22), due_date=None))
    early_due = check_invoice(valid_invoice(due_date=date(2018, 3, 1)), today=TODAY)
    assert [(f.rule, f.severity) for f in early_due] == [("IP-DATE-02", "warning")]


def test_dates_outside_what_anyone_books_are_errors() -> None:
    """A due date at the calendar's end or an issue date centuries back is a typo or a hostile
    document, in an e-invoice as in a person's confirmation (intake/domain/plausibility.py)."""
    far_due = check_invoice(valid_invoice(due_date=date(9999, 12, 31)), today=TODAY)
    assert [(f.rule, f.severity) for f in far_due] == [("IP-DATE-04", "error")]
    ancient = check_invoice(
        valid_invoice(issue_date=date(1, 1, 1), due_date=date(1, 2, 1)), today=TODAY
    )
    assert {(f.rule, f.severity) for f in ancient} == {
        ("IP-DATE-03", "error"),
        ("IP-DATE-04", "error"),
    }
    # ten years of terms is the most: the last day passes, the day after does not
    issued = valid_invoice().issue_date
    assert "IP-DATE-04" not in rules(valid_invoice(due_date=issued + timedelta(days=3660)))
    assert "IP-DATE-04" in rules(valid_invoice(due_date=issued + timedelta(days=3661)))


@given(st.dates(), st.one_of(st.none(), st.dates()))
def test_any_issue_and_due_date_is_judged_never_raised(issue: date, due: date | None) -> None:
    """The calendar's ends (0001-01-01, 9999-12-31) are findings, never an OverflowError that
    stops the reading."""
    found = {
        f.rule for f in check_invoice(valid_invoice(issue_date=issue, due_date=due), today=TODAY)
    }
    if issue > TODAY + timedelta(days=1):
        assert "IP-DATE-01" in found
    if due is not None and due.year == 9999 and issue.year < 9989:
        assert "IP-DATE-04" in found


def test_text_extracted_invoices_are_only_asked_for_what_text_carries() -> None:
    extracted = Invoice(
        number="R0005532486",
        issue_date=date(2016, 1, 19),
        currency="EUR",
        seller_name="Hetzner Online GmbH",
        net_total=D("87.39"),
        tax_total=D("16.61"),
        gross_total=D("104.00"),
        origin="text",
    )
    assert check_invoice(extracted, today=TODAY) == []
    assert rules(replace(extracted, gross_total=D("105.00"))) == ["BR-CO-15"]
    assert rules(replace(extracted, number=None, gross_total=None)) == ["BR-02", "BR-14"]
    # a net total the extractor did not find is never validated on a guess (BR-13 applies)
    assert rules(replace(extracted, net_total=None)) == ["BR-13"]


def test_invoice_number_key_ignores_case_and_every_kind_of_whitespace() -> None:
    assert invoice_number_key("RE 2024-17") == invoice_number_key("re2024-17") == "re202417"
    assert invoice_number_key(" RE\t2024\u00a0-17\n") == "re202417"
    assert invoice_number_key("STRAßE-1") == invoice_number_key("strasse-1")
    assert invoice_number_key("RE-1") != invoice_number_key("RE-2")
    assert invoice_number_key(None) is None and invoice_number_key("  ") is None
    finding = duplicate_number_finding("RE 2024-17", "Lieferant GmbH", 7)
    assert finding.rule == "IP-DUP-01" and finding.severity == "error"
    assert "Lieferant GmbH" in finding.message and "document 7" in finding.message


def test_facturx_profile_dispatch_on_bt24() -> None:
    assert facturx_profile("urn:cen.eu:en16931:2017") == "en16931"
    assert facturx_profile("urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic") == "basic"
    assert facturx_profile("urn:cen.eu:en16931:2017#compliant#urn:zugferd.de:2p0:basic") == "basic"
    assert facturx_profile("urn:cen.eu:en16931:2017:compliant:factur-x.eu:1p0:basic") == "basic"
    assert facturx_profile("urn:factur-x.eu:1p0:basicwl") == "basicwl"
    assert (
        facturx_profile("urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended")
        == "extended"
    )
    assert (
        facturx_profile("urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0")
        is None
    )
    assert facturx_profile(None) is None


cents = st.decimals(min_value=Decimal("-99999"), max_value=Decimal("99999"), places=2)
rates = st.sampled_from([D("0"), D("7"), D("7.7"), D("19"), D("20"), D("21")])
quantities = st.decimals(min_value=Decimal("-50"), max_value=Decimal("500"), places=3)


@given(st.lists(st.tuples(quantities, cents, rates), min_size=1, max_size=6), cents)
def test_any_invoice_computed_by_the_book_passes_the_arithmetic_rules(
    line_specs: list[tuple[Decimal, Decimal, Decimal]], allowance: Decimal
) -> None:
    """An invoice whose totals are computed the EN 16931 way never trips our own checks."""
    from invoice_pipelines.core.money import round_cents

    lines = tuple(
        InvoiceLine(str(i), "item", None, qty, "C62", price, None, round_cents(qty * price), "S", rate)
        for i, (qty, price, rate) in enumerate(line_specs, start=1)
    )  # fmt: skip
    line_total = sum((line.net_amount for line in lines), D(0))
    by_rate: dict[Decimal, Decimal] = {}
    for line in lines:
        by_rate[line.vat_rate] = by_rate.get(line.vat_rate, D(0)) + line.net_amount
    # The allowance is booked on the first rate's category.
    first_rate = lines[0].vat_rate
    by_rate[first_rate] -= allowance
    breakdown = tuple(
        VatBreakdown("S", rate, basis, percent_of(basis, rate)) for rate, basis in by_rate.items()
    )
    tax = sum((vat.amount for vat in breakdown), D(0))
    net = line_total - allowance
    invoice = valid_invoice(
        lines=lines,
        line_total=line_total,
        allowance_total=allowance,
        net_total=net,
        tax_total=tax,
        tax_total_entries=(CurrencyAmount(tax, "EUR"),),
        gross_total=net + tax,
        amount_due=net + tax,
        vat_breakdown=breakdown,
        allowances_charges=(
            AllowanceCharge(False, allowance, vat_category="S", vat_rate=first_rate),
        ),
    )
    assert rules(invoice) == []


def _line(line_id: str, net: str, category: str, rate: str | None) -> InvoiceLine:
    return InvoiceLine(
        line_id, "item", None, D(1), "C62", D(net), None, D(net), category,
        None if rate is None else D(rate),
    )  # fmt: skip


def test_a_line_rate_no_breakdown_row_names_is_found() -> None:
    """A 25 % line beside a breakdown of 19 % and 7 %: the 19 % row no longer adds up (BR-S-08)
    and no row is the line's (IP-VAT-01), as EN 16931 defines the breakdown per rate."""
    invoice = valid_invoice(
        lines=(_line("1", "198.00", "S", "25"), _line("2", "275.00", "S", "7.00"))
    )
    found = {f.rule: f.message for f in check_invoice(invoice, today=TODAY)}
    assert set(found) == {"BR-S-08", "IP-VAT-01"}
    assert found["IP-VAT-01"] == (
        "line 1: VAT category S at 25 % has no row in the VAT breakdown (BG-23)"
    )
    assert "category S at 19.00 %" in found["BR-S-08"] and "add up to 0.00" in found["BR-S-08"]
    # the category missing altogether is the standard's BR-Z-01
    zero = valid_invoice(
        lines=(_line("1", "198.00", "S", "19"), _line("2", "275.00", "Z", "0")),
    )
    assert set(rules(zero)) == {"BR-Z-01", "BR-S-08"}


def test_the_taxable_amount_per_rate_counts_document_allowances_and_charges() -> None:
    invoice = valid_invoice(
        allowances_charges=(
            AllowanceCharge(False, D("10.00"), vat_category="S", vat_rate=D("19")),
            AllowanceCharge(True, D("10.00"), vat_category="S", vat_rate=D("7")),
        ),
    )
    # lines 198.00 - 10.00 at 19 % and 275.00 + 10.00 at 7 %: both rows are 10.00 off
    assert [f.rule for f in check_invoice(invoice, today=TODAY) if f.rule == "BR-S-08"] == [
        "BR-S-08",
        "BR-S-08",
    ]
    shifted = valid_invoice(
        allowances_charges=invoice.allowances_charges,
        vat_breakdown=(
            VatBreakdown("S", D("19.00"), D("188.00"), D("35.72")),
            VatBreakdown("S", D("7.00"), D("285.00"), D("19.95")),
        ),
    )
    assert "BR-S-08" not in rules(shifted)
    # within one currency unit, as CEN's UBL rule allows; one unit off is not
    assert rules(valid_invoice(vat_breakdown=(
        VatBreakdown("S", D("19.00"), D("198.99"), D("37.62")),
        VatBreakdown("S", D("7.00"), D("275.00"), D("19.25")),
    ))) == []  # fmt: skip
    assert "BR-S-08" in rules(valid_invoice(vat_breakdown=(
        VatBreakdown("S", D("19.00"), D("199.00"), D("37.62")),
        VatBreakdown("S", D("7.00"), D("275.00"), D("19.25")),
    )))  # fmt: skip


def test_a_rate_is_a_percentage_there_can_be() -> None:
    assert rules(valid_invoice(lines=(
        _line("1", "198.00", "S", "119.00"), _line("2", "275.00", "S", "7.00"),
    )))[0] == "IP-VAT-02"  # fmt: skip
    for rate in ("-7", "100.01", "7.125", "1" + "0" * 30):
        invoice = valid_invoice(
            vat_breakdown=(
                VatBreakdown("S", D("19.00"), D("198.00"), D("37.62")),
                VatBreakdown("S", D(rate), D("275.00"), D("19.25")),
            )
        )
        assert "IP-VAT-02" in rules(invoice), rate
    assert check_invoice(valid_invoice(), today=TODAY) == []  # 19.00 and 7.00 are fine


def test_text_and_scans_are_not_asked_for_a_breakdown_per_line() -> None:
    scanned = valid_invoice(origin="ocr", lines=(_line("1", "473.00", "S", "25"),))
    assert not {"BR-S-08", "IP-VAT-01"} & set(rules(scanned))
