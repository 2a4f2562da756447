"""IBANs (ISO 13616) and BICs (ISO 9362) as the readers store them and the intake checks them
(core/bank_accounts.py, issue 72): every problem in one sentence, every valid account passes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invoice_pipelines.core.bank_accounts import (
    bic_problem,
    compact,
    iban_is_valid,
    iban_problem,
    looks_like_iban,
    payment_accounts,
)
from invoice_pipelines.core.invoice import PaymentAccount
from invoice_pipelines_devtools.demo.invoices import german_iban

VALID = [
    "DE89370400440532013000",
    "DE89 3704 0044 0532 0130 00",
    "de89-3704-0044-0532-0130-00",
    "GB82WEST12345698765432",
    "NL91ABNA0417164300",
    "FR1420041010050500013M02606",
    "AT611904300234573201",
    "CH9300762011623852957",
]


@pytest.mark.parametrize("iban", VALID)
def test_valid_ibans_pass(iban: str) -> None:
    assert iban_problem(iban) is None
    assert iban_is_valid(iban)


@pytest.mark.parametrize(
    ("iban", "words"),
    [
        ("DE89370400440532013001", "fails its check digits (ISO 13616, mod 97)"),
        ("DE98370400440532013000", "fails its check digits"),  # check digits swapped
        ("DE1212344321987600", "has 18 characters; an IBAN of DE has 22"),
        ("SE1212341234123412", "has 18 characters; an IBAN of SE has 24"),
        ("DE89A70400440532013000", "an IBAN of DE has (18 digits after the check digits)"),
        ("XX89370400440532013000", "names XX, which is no country of the IBAN registry"),
        ("DE54 5004 **** **** **** 00", "does not have an IBAN's form"),
        ("IBAN32423940", "does not have an IBAN's form"),
        ("DE89\u200b370400440532013000", "does not have an IBAN's form"),
    ],
)
def test_invalid_ibans_say_why(iban: str, words: str) -> None:
    problem = iban_problem(iban)
    assert problem is not None and words in problem, problem
    assert not iban_is_valid(iban)


def test_a_hostile_value_is_quoted_short() -> None:
    problem = iban_problem("DE" + "9" * 10_000)
    assert problem is not None and len(problem) < 200


@given(
    bank=st.from_regex(r"[1-9][0-9]{7}", fullmatch=True),
    account=st.from_regex(r"[0-9]{10}", fullmatch=True),
    position=st.integers(min_value=2, max_value=21),
    digit=st.integers(min_value=0, max_value=9),
)
def test_one_wrong_digit_is_always_caught(bank: str, account: str, position: int, digit: int):
    iban = german_iban(bank, account)
    assert iban_is_valid(iban)
    wrong = iban[:position] + str(digit) + iban[position + 1 :]
    assert iban_is_valid(wrong) == (wrong == iban)


@pytest.mark.parametrize(
    "bic", ["COBADEFFXXX", "COBADEFF", "DEUTDEMM760", "GENODEF1M04", "cobadeff"]
)
def test_valid_bics_pass(bic: str) -> None:
    assert bic_problem(bic) is None


@pytest.mark.parametrize(
    ("bic", "words"),
    [
        ("BIC324098", "does not have a BIC's form (ISO 9362"),
        ("<script>", "does not have a BIC's form"),
        ("COBADEFFX", "does not have a BIC's form"),  # a branch is three characters
        ("1OBADEFF", "does not have a BIC's form"),  # the bank is four letters
        ("TRANSFER", "names SF, which is no country (ISO 3166)"),
    ],
)
def test_invalid_bics_say_why(bic: str, words: str) -> None:
    problem = bic_problem(bic)
    assert problem is not None and words in problem, problem


def test_accounts_are_compacted_in_order_and_each_named_once() -> None:
    accounts = payment_accounts(
        [
            ("DE89 3704 0044 0532 0130 00", "coba de ff"),
            (None, "BYLADEM1001"),  # a BIC without an account is no account
            ("  ", None),
            ("DE02120300000000202051", None),
            ("DE89370400440532013000", "COBADEFF"),  # the same account again
        ]
    )
    assert accounts == (
        PaymentAccount("DE89370400440532013000", "COBADEFF"),
        PaymentAccount("DE02120300000000202051", None),
    )


def test_what_is_written_as_an_iban() -> None:
    assert looks_like_iban("de89 3704") and looks_like_iban("DE1212344321987600")
    assert not looks_like_iban("IBAN32423940") and not looks_like_iban("12345678")
    assert compact(" de89\u00a03704-0044 ") == "DE8937040044"
