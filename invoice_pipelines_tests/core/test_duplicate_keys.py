"""IP-DUP-01's keys (core.rules.invoice_number_key, comparison_text): characters nobody sees and
compatibility forms never make another number or another seller (issue 36, item 6)."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from invoice_pipelines.core.rules import comparison_text, invoice_number_key

# format characters (category Cf) suppliers' systems leave in: zero-width space, zero-width
# (non-)joiner, word joiner, soft hyphen, byte order mark, bidi marks and isolates
INVISIBLE = "\u200b\u200c\u200d\u2060\u00ad\ufeff\u200e\u200f\u202a\u202c\u2066\u2069"
numbers = st.text(
    alphabet=st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij0123456789-/._"),
    min_size=1,
    max_size=20,
)


@given(numbers, st.lists(st.tuples(st.integers(0, 20), st.sampled_from(INVISIBLE)), max_size=6))
def test_invisible_characters_anywhere_leave_the_key_as_it_is(number, insertions) -> None:
    typed = number
    for position, char in insertions:
        typed = typed[:position] + char + typed[position:]
    assert invoice_number_key(typed) == invoice_number_key(number)


@given(numbers)
def test_full_width_forms_are_the_same_number(number) -> None:
    wide = "".join(
        chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c  # the Fullwidth Forms block
        for c in number
    )
    assert invoice_number_key(wide) == invoice_number_key(number)


def test_the_evasions_of_the_issue() -> None:
    key = invoice_number_key("RE-2026-17")
    assert invoice_number_key("RE\u200b-2026-17") == key  # zero-width space
    assert invoice_number_key("RE-\u00ad2026-17") == key  # soft hyphen
    assert invoice_number_key("RE-２０２６-１７") == key  # full-width digits
    assert invoice_number_key("\ufeffRE 2026 - 17\u2060") == invoice_number_key("RE2026-17")
    assert comparison_text("DE\u200b999\u00ad999\u2060999") == comparison_text("de999999999")
    # still another number when a visible character differs
    assert invoice_number_key("RE-2026-18") != key
    assert invoice_number_key("\u200b\u00ad") is None


def test_every_format_character_is_dropped() -> None:
    every_cf = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"]
    assert len(every_cf) > 100
    assert comparison_text("A" + "".join(every_cf) + "1") == "a1"


def test_default_ignorable_letters_and_marks_are_dropped_too() -> None:
    """Not format characters, but shown as nothing: a variation selector after a digit, the
    combining grapheme joiner, a Hangul filler, a tag character."""
    key = invoice_number_key("RE-2026-17")
    for hidden in ("\ufe0f", "\u034f", "\u3164", "\u115f", "\U000e0041", "\u180b"):
        assert invoice_number_key(f"RE-20{hidden}26-17") == key, hex(ord(hidden))
    assert comparison_text("DE999\ufe0e999999") == comparison_text("DE999999999")
