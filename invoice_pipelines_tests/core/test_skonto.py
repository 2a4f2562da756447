"""Early-payment discount terms: read from XRechnung's BT-20 form and from the words invoices use,
what a step is worth (rounded to the cent, half up), and the split over VAT rates."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invoice_pipelines.core.skonto import (
    DiscountTerm,
    SkontoError,
    customer_terms,
    describe,
    offer_on,
    offers,
    parse_xrechnung_terms,
    settlement,
    split_by_rate,
    steps_from_text,
    text_terms,
    xrechnung_terms_text,
)

D = Decimal
ISSUED = date(2026, 3, 2)


def test_xrechnung_lines_are_read_with_their_base_and_late_interest_is_not_a_discount():
    text = (
        "Zahlbar innerhalb von 30 Tagen.\n"
        "#SKONTO#TAGE=7#PROZENT=3.00#\n"
        "#SKONTO#TAGE=14#PROZENT=2.00#BASISBETRAG=500.00#\n"
        "#VERZUG#TAGE=30#PROZENT=5.00#\n"
    )
    terms, problems = parse_xrechnung_terms(text)
    assert problems == []
    assert [(t.days, t.percent, t.base_amount) for t in terms] == [
        (7, D("3.00"), None),
        (14, D("2.00"), D("500.00")),
    ]


@pytest.mark.parametrize(
    "line",
    [
        "#SKONTO#TAGE=14#PROZENT=2#",
        "#SKONTO#TAGE=14#PROZENT=2,00#",
        "#skonto#tage=14#prozent=2.00#",
    ],
)
def test_a_line_not_in_the_xrechnung_form_is_named_and_not_read(line):
    terms, problems = parse_xrechnung_terms(f"{line}\n")
    assert terms == []
    assert problems == [f"payment terms line {line!r} is not in the XRechnung form"]


def test_written_terms_end_every_step_with_a_line_break_after_the_free_text():
    terms = [DiscountTerm(10, D("2")), DiscountTerm(20, D("1.5"), base_amount=D("99.999"))]
    text = xrechnung_terms_text(terms, "Zahlbar bis zum 31.03.2026 ohne Abzug.")
    assert text == (
        "Zahlbar bis zum 31.03.2026 ohne Abzug.\n"
        "#SKONTO#TAGE=10#PROZENT=2.00#\n"
        "#SKONTO#TAGE=20#PROZENT=1.50#BASISBETRAG=100.00#\n"
    )
    assert parse_xrechnung_terms(text)[0] == [
        DiscountTerm(10, D("2.00")),
        DiscountTerm(20, D("1.50"), base_amount=D("100.00")),
    ]
    assert xrechnung_terms_text([], None) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2 % Skonto bei Zahlung innerhalb von 10 Tagen", [(10, D("2"))]),
        ("zahlbar innerhalb 14 Tagen mit 3% Skonto, 30 Tage netto", [(14, D("3"))]),
        ("2% discount if paid within 10 days, net 30 days", [(10, D("2"))]),
        ("Payment terms: 2/10 net 30", [(10, D("2"))]),
        ("Bei Zahlung innerhalb von 8 Tagen 2,5 % Skonto.", [(8, D("2.5"))]),
        (
            "3 % Skonto innerhalb 7 Tagen, 2 % innerhalb 14 Tagen, 30 Tage netto",
            [(7, D("3")), (14, D("2"))],
        ),
        (
            "Zahlbar innerhalb von 30 Tagen netto, bei Zahlung innerhalb von 10 Tagen 2 % Skonto",
            [(10, D("2"))],
        ),
        # the VAT line above does not lend its 19 % to the wrapped Skonto sentence
        ("MwSt 19 % 190,00\nSkonto 2 % bei Zahlung innerhalb\nvon 10 Tagen", [(10, D("2"))]),
        ("Zahlbar innerhalb von 30 Tagen ohne Abzug (inkl. 19 % MwSt).", []),
        ("Rabatt 10 % auf alle Artikel", []),
        ("30 Tage netto", []),
    ],
)
def test_the_words_invoices_use(text, expected):
    assert [(t.days, t.percent) for t in text_terms(text)] == expected


def test_a_sentence_naming_the_last_day_ends_that_day():
    (term,) = text_terms("Bei Zahlung bis zum 16.03.2026 abzüglich 2 % Skonto.")
    assert term.last_day(ISSUED) == date(2026, 3, 16)


def test_a_step_is_worth_its_percentage_of_the_amount_due_rounded_half_up():
    (offer,) = offers([DiscountTerm(14, D("2"))], ISSUED, D("1190.25"))
    # 1190.25 x 2 % = 23.805 -> 23.81 (half up), and what is paid plus the discount is the total
    assert (offer.last_day, offer.discount, offer.pay) == (
        date(2026, 3, 16),
        D("23.81"),
        D("1166.44"),
    )


@pytest.mark.parametrize(
    ("language", "country", "currency", "sentence"),
    [
        (
            "en",
            "US",
            "USD",
            "If paid by 11/15/2026, deduct a 2 % early-payment discount (24.69 USD): "
            "1,209.81 USD to pay.",
        ),
        (
            "de",
            "DE",
            "EUR",
            "Bei Zahlung bis zum 15.11.2026 gewähren wir 2 % Skonto (24,69 EUR); zu zahlen sind "
            "dann 1.209,81 EUR.",
        ),
        (
            "en",
            "GB",
            "GBP",
            "If paid by 2026-11-15, deduct a 2 % early-payment discount (24.69 GBP): "
            "1,209.81 GBP to pay.",
        ),
        # the page of a US seller writes its dates the US way in German too (layout.plain_date)
        (
            "de",
            "us",
            "USD",
            "Bei Zahlung bis zum 11/15/2026 gewähren wir 2 % Skonto (24,69 USD); zu zahlen sind "
            "dann 1.209,81 USD.",
        ),
    ],
)
def test_the_sentence_writes_its_day_and_amounts_as_the_sellers_document_does(
    language, country, currency, sentence
):
    (offer,) = offers([DiscountTerm(14, D("2"))], date(2026, 11, 1), D("1234.50"))
    assert describe(offer, currency, language, country) == sentence


def test_a_base_amount_limits_what_the_percentage_applies_to():
    (offer,) = offers([DiscountTerm(10, D("3"), base_amount=D("500.00"))], ISSUED, D("1190.00"))
    assert (offer.base, offer.discount, offer.pay) == (D("500.00"), D("15.00"), D("1175.00"))


def test_nothing_to_discount_on_a_credit_note_or_without_an_issue_date():
    term = DiscountTerm(10, D("2"))
    assert offers([term], ISSUED, D("-100.00")) == []
    assert offers([term], None, D("100.00")) == []


def test_a_payment_earns_the_best_step_still_running_on_its_day():
    steps = [DiscountTerm(7, D("3")), DiscountTerm(14, D("2"))]
    amount = D("1000.00")
    assert offer_on(steps, ISSUED, amount, date(2026, 3, 9)).discount == D("30.00")
    assert offer_on(steps, ISSUED, amount, date(2026, 3, 10)).discount == D("20.00")
    assert offer_on(steps, ISSUED, amount, date(2026, 3, 17)) is None


@pytest.mark.parametrize(
    ("days", "percent"), [(-1, D("2")), (366, D("2")), (10, D("0")), (10, D("50")), (0, D("2"))]
)
def test_terms_that_cannot_be_are_refused_in_one_sentence(days, percent):
    with pytest.raises(SkontoError):
        DiscountTerm(days, percent)


def test_a_discount_over_two_rates_is_split_by_their_gross_and_corrects_each_vat():
    # 1000 net at 19 % (1190 gross) and 500 net at 7 % (535 gross): 2 % of 1725 = 34.50
    shares = split_by_rate(D("34.50"), [("S", D("19"), D("1190.00")), ("S", D("7"), D("535.00"))])
    assert [(s.rate, s.gross, s.net, s.vat) for s in shares] == [
        (D("19"), D("23.80"), D("20.00"), D("3.80")),
        (D("7"), D("10.70"), D("10.00"), D("0.70")),
    ]


amounts = st.decimals(min_value=D("0.01"), max_value=D("999999.99"), places=2)


@given(
    st.lists(
        st.tuples(st.sampled_from([D("0"), D("7"), D("19")]), amounts), min_size=1, max_size=4
    ),
    st.decimals(min_value=D("0.01"), max_value=D("10"), places=2),
)
def test_shares_add_up_to_the_discount_and_each_to_its_net_and_vat(groups, percent):
    breakdown = [("S", rate, gross) for rate, gross in groups]
    total = sum(gross for _, gross in groups)
    discount = (total * percent / 100).quantize(D("0.01"))
    shares = split_by_rate(discount, breakdown)
    assert sum(s.gross for s in shares) == discount
    assert all(s.net + s.vat == s.gross for s in shares)


@given(amounts, st.decimals(min_value=D("0.01"), max_value=D("49.99"), places=2))
def test_discount_and_payment_always_add_up_to_the_amount_due(amount, percent):
    (offer,) = offers([DiscountTerm(10, percent)], ISSUED, amount)
    assert offer.discount + offer.pay == amount
    assert offer.discount == offer.discount.quantize(D("0.01"))
    assert abs(offer.discount - amount * percent / 100) <= D("0.005")


def test_terms_survive_their_json_form():
    term = DiscountTerm(0, D("2.50"), base_amount=D("10.00"), start=ISSUED, source="cii")
    assert DiscountTerm.from_json_dict(term.to_json_dict()) == term


# ---------------------------------------------------------------- settling by payments

STEPS = [DiscountTerm(10, D("2")), DiscountTerm(20, D("1"))]  # until 12.03. and 22.03.2026


def test_payments_reaching_a_steps_amount_by_its_last_day_settle_with_the_best_step():
    # 1190.00: 2 % (23.80) until 2026-03-12, 1 % (11.90) until 2026-03-22
    on_time = settlement(STEPS, ISSUED, D("1190.00"), [(date(2026, 3, 12), D("1166.20"))])
    assert (on_time.discount, on_time.offer.term.percent, on_time.paid_on) == (
        D("23.80"),
        D("2"),
        date(2026, 3, 12),
    )
    second = settlement(STEPS, ISSUED, D("1190.00"), [(date(2026, 3, 13), D("1178.10"))])
    assert (second.discount, second.offer.term.percent) == (D("11.90"), D("1"))
    # a day after the last step's last day: nothing earned
    assert settlement(STEPS, ISSUED, D("1190.00"), [(date(2026, 3, 23), D("1178.10"))]) is None
    # two payments in time reach it together; the day is the one the second brought it there
    both = [(date(2026, 3, 3), D("600.00")), (date(2026, 3, 11), D("566.20"))]
    assert settlement(STEPS, ISSUED, D("1190.00"), both).paid_on == date(2026, 3, 11)


def test_a_partial_payment_in_time_earns_nothing_and_paying_more_takes_less_off():
    partial = [(date(2026, 3, 5), D("500.00")), (date(2026, 3, 25), D("666.20"))]
    assert settlement(STEPS, ISSUED, D("1190.00"), partial) is None
    # 1170.00 paid in time: 20.00 left open is what is taken off (not the step's 23.80)
    more = settlement(STEPS, ISSUED, D("1190.00"), [(date(2026, 3, 5), D("1170.00"))])
    assert more.discount == D("20.00")
    # paid in full: no discount to book
    assert settlement(STEPS, ISSUED, D("1190.00"), [(date(2026, 3, 5), D("1190.00"))]) is None
    assert settlement([], ISSUED, D("1190.00"), [(date(2026, 3, 5), D("1166.20"))]) is None


@given(
    amounts,
    st.decimals(min_value=D("0.01"), max_value=D("49.99"), places=2),
    st.lists(st.tuples(st.integers(min_value=0, max_value=30), amounts), min_size=0, max_size=4),
)
def test_a_settlement_takes_off_exactly_what_the_payments_left_open(invoiced, percent, paid):
    payments = [(ISSUED + timedelta(days=n), amount) for n, amount in paid]
    found = settlement([DiscountTerm(10, percent)], ISSUED, invoiced, payments)
    total = sum((a for _, a in payments), D(0))
    in_time = sum((a for d, a in payments if d <= ISSUED + timedelta(days=10)), D(0))
    (offer,) = offers([DiscountTerm(10, percent)], ISSUED, invoiced)
    if found is None:
        assert total >= invoiced or in_time < offer.pay
    else:
        assert in_time >= offer.pay and total < invoiced
        assert found.discount + total == invoiced
        assert D(0) < found.discount <= offer.discount


def test_a_customers_steps_win_over_the_organizations_and_a_wrong_one_names_the_customer():
    organization = {"skonto": [{"days": 10, "percent": "2"}]}
    assert customer_terms(None, organization) == [DiscountTerm(10, D("2"), source="settings")]
    assert customer_terms([], organization, "K-1") == []
    assert customer_terms([{"days": 7, "percent": "3"}], organization, "K-1") == [
        DiscountTerm(7, D("3"), source="settings")
    ]
    with pytest.raises(SkontoError, match="customer K-1 has a step that cannot be"):
        customer_terms([{"days": 7}], organization, "K-1")
    assert steps_from_text("10:2, 20:1.5%") == [
        {"days": 10, "percent": "2"},
        {"days": 20, "percent": "1.5"},
    ]
    assert steps_from_text("none") == []
