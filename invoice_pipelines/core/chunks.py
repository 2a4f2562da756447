"""A long list cut into pieces of at most `size`, in order: an `IN (...)` list or an INSERT stays
under the database's bound-parameter limit (SQLite's 32,766, PostgreSQL's 65,535), and a chunk's
work commits on its own. Python 3.12's `itertools.batched` does this; we run on 3.11."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def chunked(items: Iterable[T], size: int) -> Iterator[Sequence[T]]:
    """`items` in slices of `size` (the last may be shorter); nothing for no items."""
    if size < 1:
        raise ValueError(f"a chunk holds at least one item, not {size}")
    values = items if isinstance(items, Sequence) else list(items)
    for start in range(0, len(values), size):
        yield values[start : start + size]
