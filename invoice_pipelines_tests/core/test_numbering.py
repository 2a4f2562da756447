"""Invoice numbers: organization formats, SQL-friendly split, blocks, and a model of gapless numbering."""

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invoice_pipelines.core.numbering import (
    InvalidNumberFormat,
    NumberFormat,
    find_gaps,
    is_gapless,
    reserve_block,
)

DAY = date(2026, 11, 30)


@pytest.mark.parametrize(
    ("pattern", "counter", "expected"),
    [
        ("RE-{year}-{counter:06d}", 42, "RE-2026-000042"),
        ("INV-{counter:05d}", 7, "INV-00007"),
        ("{year}/{counter:05d}", 123456, "2026/123456"),  # wider than the padding: all digits kept
        ("{counter}", 9, "9"),
        ("R{year}{month:02d}-{counter:04d}", 3, "R202611-0003"),
        ("{{literal}}-{counter:03d}", 5, "{literal}-005"),
    ],
)
def test_formats(pattern, counter, expected):
    assert NumberFormat.parse(pattern).format(counter, DAY) == expected


@pytest.mark.parametrize(
    "pattern",
    [
        "RE-{year}",
        "{counter}-{counter}",
        "{customer}-{counter}",
        "{counter:6d}",
        "{counter:x}",
        "{counter!r}",
        "RE-{",
    ],
)
def test_formats_that_cannot_number_invoices_are_refused(pattern):
    with pytest.raises(InvalidNumberFormat):
        NumberFormat.parse(pattern)


def test_counters_start_at_one():
    with pytest.raises(ValueError):
        NumberFormat.parse("{counter}").format(0, DAY)


patterns = st.sampled_from(
    [
        "RE-{year}-{counter:06d}",
        "INV-{counter:05d}",
        "{year}/{counter:05d}",
        "{counter}",
        "A{month:02d}{counter:08d}Z",
    ]
)


@given(
    patterns,
    st.integers(min_value=1, max_value=10**9),
    st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
)
def test_split_builds_the_same_number_as_format(pattern, counter, day):
    """What SQL builds from (prefix, width, suffix) is exactly what Python formats."""
    fmt = NumberFormat.parse(pattern)
    prefix, width, suffix = fmt.split(day)
    assert prefix + str(counter).rjust(width, "0") + suffix == fmt.format(counter, day)


@given(patterns, st.sets(st.integers(min_value=1, max_value=10**7), min_size=2, max_size=50))
def test_different_counters_give_different_numbers(pattern, counters):
    fmt = NumberFormat.parse(pattern)
    assert len({fmt.format(c, DAY) for c in counters}) == len(counters)


def test_blocks_follow_the_last_value():
    block, last = reserve_block(41, 5)
    assert list(block.numbers()) == [42, 43, 44, 45, 46]
    assert (block.first, block.last, last) == (42, 46, 46)
    assert reserve_block(46, 0)[1] == 46
    with pytest.raises(ValueError):
        reserve_block(0, -1)


def test_gap_detection():
    assert is_gapless([3, 1, 2])
    assert is_gapless([])
    assert not is_gapless([1, 2, 2, 3])
    assert not is_gapless([2, 3])
    assert find_gaps([1, 2, 5, 7]) == [3, 4, 6]


# A model of the database protocol: a transaction reserves its block while holding the sequence lock
# and either commits (the sequence moves) or rolls back (it does not). Workers interleave freely.
steps = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=2), st.integers(min_value=0, max_value=7), st.booleans()
    ),
    max_size=60,
)


@given(steps)
def test_any_mix_of_chunk_sizes_failures_and_workers_is_gapless(plan):
    last_value = 0
    issued: list[int] = []
    for _worker, size, commits in plan:
        # the lock serializes the read-reserve-write; nothing else can touch last_value meanwhile
        block, new_last = reserve_block(last_value, size)
        if commits:
            issued.extend(block.numbers())
            last_value = new_last
    assert is_gapless(issued)
    assert sorted(issued) == issued  # strictly increasing in commit order
    assert last_value == len(issued)
