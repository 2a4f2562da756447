"""The text sanitizer for files and tables a person opens (`core.text`)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoice_pipelines.core.text import cell_text, cut, defuse_formula, printable
from invoice_pipelines.limits import MAX_TEXT_FIELD_CHARS

FORMULA_STARTS = "=+-@\uff1d\uff0b\uff0d\uff20"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://evil/","x")', '\'=HYPERLINK("http://evil/","x")'),
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("  =1+1", "'  =1+1"),
        ("\t=1+1", "' =1+1"),
        ("\r=1+1", "' =1+1"),
        ("\u200b=1+1", "'=1+1"),  # a zero-width space does not hide a formula
        ("\uff1d1+1", "'\uff1d1+1"),  # full-width equals sign
        ("Müller GmbH", "Müller GmbH"),
        ("a=b", "a=b"),  # only the start counts
    ],
)
def test_formula_gets_a_leading_quote(value, expected):
    assert cell_text(value) == expected


def test_line_breaks_and_controls_become_spaces_invisible_characters_go():
    assert cell_text("Mutter\r\nM6\rStahl\nfein") == "Mutter  M6 Stahl fein"
    assert cell_text("a\x00b\x1bc\x85d\u2028e") == "a b c d e"
    # right-to-left override, isolates, zero-width joiner, BOM, soft hyphen
    assert cell_text("Acme\u202egpj.exe\u2066x\u2069\u200d\ufeff\u00ad") == "Acmegpj.exex"


def test_overlong_values_are_cut_with_an_ellipsis():
    value = "x" * (MAX_TEXT_FIELD_CHARS + 50)
    out = cell_text(value)
    assert len(out) == MAX_TEXT_FIELD_CHARS and out.endswith("…")
    assert cell_text("=" + value).startswith("'=")
    assert cell_text("y" * MAX_TEXT_FIELD_CHARS) == "y" * MAX_TEXT_FIELD_CHARS
    assert cut("abcdef", 4) == "abc…" and cut("abcdef", 4, marker="") == "abcd"


HOSTILE = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(FORMULA_STARTS + " \t\r\n\x00\x1f\x7f\x85\"',;|")),
        st.sampled_from(["\u200b", "\u200d", "\u202e", "\u2066", "\u2069", "\ufeff", "\u2028"]),
        st.characters(codec="utf-8"),  # anything, astral characters and emoji included
    ),
    max_size=60,
) | st.builds(lambda s, n: s * n, st.text(max_size=3), st.integers(0, 2 * MAX_TEXT_FIELD_CHARS))


@settings(max_examples=300, deadline=None)
@given(HOSTILE)
def test_any_value_becomes_one_printable_line_that_is_no_formula(value):
    out = cell_text(value)
    assert len(out) <= MAX_TEXT_FIELD_CHARS
    assert not any(c in out for c in "\r\n\x00\u2028\u2029\u200b\u202e\ufeff")
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in out)
    visible = out.lstrip(" \u00a0\u3000")
    assert not visible or visible[0] not in FORMULA_STARTS
    assert cell_text(out) == out  # idempotent: a cleaned value stays as it is


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Cn", "Zl", "Zp")),
        max_size=40,
    )
)
def test_plain_text_is_left_alone(value):
    if value.lstrip(
        " \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
        "\u200a\u202f\u205f\u3000"
    )[:1] in tuple(FORMULA_STARTS):
        assert defuse_formula(printable(value)) == "'" + value
    else:
        assert cell_text(value) == value
