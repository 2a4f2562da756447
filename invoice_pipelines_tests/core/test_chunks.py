"""`chunked` cuts a long list of ids or rows for statements of bounded size: every item once, in
order, no piece longer than asked, and a set or generator alike."""

import pytest

from invoice_pipelines.core.chunks import chunked


def test_every_item_once_in_order_in_pieces_no_longer_than_the_size():
    pieces = list(chunked(list(range(10_001)), 5000))
    assert [len(p) for p in pieces] == [5000, 5000, 1]
    assert [item for piece in pieces for item in piece] == list(range(10_001))


def test_a_set_or_a_generator_is_cut_like_a_list():
    assert sorted(x for piece in chunked({3, 1, 2}, 2) for x in piece) == [1, 2, 3]
    assert list(chunked((i for i in range(5)), 2)) == [[0, 1], [2, 3], [4]]


def test_nothing_gives_no_piece_and_a_size_below_one_is_refused():
    assert list(chunked([], 1000)) == []
    with pytest.raises(ValueError, match="at least one item"):
        list(chunked([1], 0))
