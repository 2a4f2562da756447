"""`bench hostile`'s cases of issue 46: the generators are deterministic and really hostile. The
categories' run on PostgreSQL (poisons among good documents stop nothing and leave nothing
waiting, notices go only to addresses known for the supplier and at most once a day, look-alike
copies are never booked, hostile reviews end in a sentence and never book a document) is checked
in test_hostile.py, on the run `bench hostile` makes of them: the same categories at the same
size (their inputs do not grow below N = 500), made once instead of twice."""

from __future__ import annotations

import random

import pytest

from invoice_pipelines.core.rules import invoice_number_key
from invoice_pipelines.intake.domain.parse import parse_document
from invoice_pipelines_devtools.bench.hostile_intake import (
    LOOKALIKES,
    POISON_KINDS,
    _company,
    einvoice,
    lookalike_inputs,
    notice_inputs,
    poison,
    poison_batch_inputs,
)


def test_the_inputs_are_the_same_for_a_seed_and_differ_between_seeds():
    assert poison_batch_inputs(200, 3) == poison_batch_inputs(200, 3)
    assert poison_batch_inputs(200, 3) != poison_batch_inputs(200, 4)
    assert notice_inputs(100, 3) == notice_inputs(100, 3) != notice_inputs(100, 4)
    assert lookalike_inputs(600, 3) == lookalike_inputs(600, 3) != lookalike_inputs(600, 4)


def test_the_number_of_inputs_grows_with_n():
    assert len(poison_batch_inputs(2000, 1)) > len(poison_batch_inputs(10, 1))
    assert len(notice_inputs(2000, 1)[1]) > len(notice_inputs(10, 1)[1])
    assert len(lookalike_inputs(2000, 1)[1]) > len(lookalike_inputs(10, 1)[1])


def test_each_look_alike_copy_is_the_same_number_to_a_person_and_another_string():
    number = "PAOE-2025-00117"
    for kind, change in LOOKALIKES.items():
        copy = change(number)
        assert copy != number, kind
        assert invoice_number_key(copy) == invoice_number_key(number), kind


@pytest.mark.parametrize("kind", POISON_KINDS)
def test_a_poison_is_read_to_an_outcome_and_differs_from_a_good_invoice(kind):
    seller = _company(7, email="rechnung@poison-lieferant.example")
    data = poison(kind, random.Random(1), 3)
    assert data != einvoice("POISON-00003", seller, discount=True)
    outcome = parse_document(data, f"{kind}.xml")
    assert outcome.status in ("VALIDATED", "FAILED", "NEEDS_REVIEW")
