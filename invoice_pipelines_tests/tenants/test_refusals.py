"""What a run over several partitions says about those it could not do: the one message form."""

from __future__ import annotations

import pytest
from dagster import Failure

from invoice_pipelines.lib.refusals import PartitionRefusals, refusal_message


def test_a_run_of_one_partition_fails_with_that_partitions_sentence():
    logged = []
    refusals = PartitionRefusals(["acme"], logged.append)
    refusals.refuse("acme", "There is no organization 'acme'.")
    assert refusals.done == []
    assert refusals.message() == "acme: There is no organization 'acme'."
    assert logged == ["acme: There is no organization 'acme'."]


def test_a_run_of_several_counts_names_the_refused_and_the_done_nonetheless():
    logged = []
    refusals = PartitionRefusals(["a", "b", "c", "d", "e"], logged.append)
    assert not refusals
    refusals.refuse("b", "the Beraternummer 5 is outside 1001..9999999.")
    refusals.refuse("d", "token refused")
    # logged as they happen, each with its partition
    assert logged == ["b: the Beraternummer 5 is outside 1001..9999999.", "d: token refused"]
    assert refusals
    assert refusals.done == ["a", "c", "e"]
    assert refusals.message() == (
        "2 of 5 partitions refused: b: the Beraternummer 5 is outside 1001..9999999; "
        "d: token refused (done nonetheless: a, c, e)"
    )


def test_when_every_partition_is_refused_nothing_is_said_done():
    assert refusal_message([("a", "no."), ("b", "no.")], []) == (
        "2 of 2 partitions refused: a: no; b: no"
    )


def test_a_partition_refused_twice_is_one_refusal_with_both_reasons():
    refusals = PartitionRefusals(["a", "b"], lambda _: None, "organizations")
    refusals.refuse("a", "upload 1: disk full")
    refusals.refuse("a", "audit log not written")
    assert refusals.message() == (
        "1 of 2 organizations refused: a: upload 1: disk full; audit log not written "
        "(done nonetheless: b)"
    )


def test_long_lists_name_the_first_ten_and_count_the_rest():
    keys = [f"org-{i:02d}" for i in range(30)]
    refusals = PartitionRefusals(keys, lambda _: None)
    for key in keys[:12]:
        refusals.refuse(key, "bad settings")
    message = refusals.message()
    assert message.startswith("12 of 30 partitions refused: org-00: bad settings; ")
    assert "org-09: bad settings; and 2 more (done nonetheless: org-12, " in message
    assert message.endswith("org-21, and 8 more)")
    assert "org-10" not in message and "org-22" not in message


def test_a_long_reason_is_cut_in_the_message_but_logged_whole():
    logged = []
    refusals = PartitionRefusals(["a", "b"], logged.append)
    refusals.refuse("a", "QBO answered 500: " + "x" * 5000)
    assert logged == ["a: QBO answered 500: " + "x" * 5000]
    assert len(refusals.message()) < 400
    assert refusals.message().startswith("1 of 2 partitions refused: a: QBO answered 500: xxx")
    assert refusals.message().endswith("… (done nonetheless: b)")


def test_the_failure_is_not_retried_and_lists_every_refusal_in_its_metadata():
    keys = [f"org-{i:02d}" for i in range(12)]
    refusals = PartitionRefusals(keys, lambda _: None)
    for key in keys:
        refusals.refuse(key, "bad settings [see](http://x)")
    with pytest.raises(Failure) as raised:
        refusals.raise_if_any({"files_removed": 3})
    failure = raised.value
    assert failure.description == refusals.message()
    assert failure.allow_retries is False
    assert failure.metadata["refused"].value == 12
    assert failure.metadata["done"].value == 0
    assert failure.metadata["files_removed"].value == 3
    table = failure.metadata["refusals"].value
    assert "| org-11 | bad settings \\[see\\]\\(http:\\/\\/x\\) |" in table  # all, escaped


def test_nothing_refused_raises_nothing():
    PartitionRefusals(["a"], lambda _: None).raise_if_any()
