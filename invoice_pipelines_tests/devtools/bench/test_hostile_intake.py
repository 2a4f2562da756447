"""`bench hostile`'s cases of issue 46 at a small N on PostgreSQL: poisons among good documents
stop nothing and leave nothing waiting, notices go only to addresses known for the supplier and
at most once a day, look-alike copies are never booked, hostile reviews end in a sentence and
never book a document; and the generators are deterministic and really hostile."""

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
    run_categories,
)


def test_the_categories_end_with_no_crash_nothing_stuck_nothing_wrongly_booked(
    pg_database, tmp_path
):
    categories = run_categories(
        pg_database.engine,
        pg_database.url,
        tmp_path,
        n=1,
        seed=5,
        workers=1,
        batch_size=20,
        keep=False,
    )
    found = {name: c.as_json() for name, c in categories.items()}
    for name, category in found.items():
        assert category["crashes"] == 0 and category["stuck"] == 0, (name, category)
        assert category["passed"] + category["clean_failures"] == category["inputs"] > 0, name

    poisons = found["poison_batch"]
    # every poison among good documents in batches of 20: each good one booked
    assert poisons["good_validated"] == poisons["good"] > 0 and poisons["batches"] > 1
    assert set(poisons["poisons_by_kind"]) == set(POISON_KINDS)

    notices = found["notices"]
    assert notices["known_suppliers_accepted"] == 3 and notices["mails_sent"] > 0
    assert notices["to_unknown_addresses"] == 0 and notices["links"] == 0
    assert notices["max_per_address_day"] == 1
    assert notices["max_mail_bytes"] < 64 * 1024  # a 100,000-character number is cut

    lookalike = found["lookalike"]
    assert lookalike["copies_validated"] == 0
    assert lookalike["copies"] == lookalike["copies_caught_ip_dup_01"] == 2 * len(LOOKALIKES)
    assert lookalike["controls_validated"] == lookalike["controls"] == 2

    review = found["review"]
    assert review["tracebacks"] == 0 and review["wrongly_validated"] == 0
    assert review["via_command"] > 0 and review["via_function"] > 0
    # the sane correction books it, and it can be reopened: the hostile ones were the only stop
    assert review["controls_validated"] == review["reopened"] == review["documents"] == 2


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
