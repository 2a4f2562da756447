"""Text from outside (supplier names, invoice numbers, VAT ids, line descriptions) made safe for
a file or a table a person opens.

One set of rules, used by the CSV writer (in Python, and the same rules in SQL for PostgreSQL's
COPY, built from the character classes here), the DATEV writer and the markdown tables of the
Dagster metadata:

- invisible characters are removed: bidi embeddings, overrides, isolates and marks, zero-width
  spaces and joiners, the byte-order mark, soft hyphens, Unicode tag characters. They let one name
  look like another, or show its characters in a different order than they are stored;
- control characters (C0 with tab, CR and LF, DEL, C1, the Unicode line and paragraph separators)
  become a space, so that no value spans lines and no row of a file can be split;
- a value that a spreadsheet would take for a formula (first visible character `=`, `+`, `-`, `@`
  or their full-width forms, after any leading spaces) gets a leading `'` (OWASP's advice for CSV
  files): the spreadsheet shows the text instead of evaluating it;
- an overlong value is cut, ending in "…".

Which values need the formula rule is the writer's choice, by column: our own numbers (an amount
of -12.50) are never quoted.
"""

from __future__ import annotations

import re
import unicodedata

from invoice_pipelines.limits import MAX_TEXT_FIELD_CHARS

# Character classes as the inside of a regex bracket, in a syntax that Python's `re` and
# PostgreSQL's regular expressions read alike (\uXXXX and \UXXXXXXXX escapes).
INVISIBLE_CLASS = (
    r"\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
    r"\ufff9-\ufffb\U000e0000-\U000e007f"
)
# NUL is left out of the SQL form: PostgreSQL text never holds one (and its regex refuses \x00).
CONTROL_CLASS_SQL = r"\x01-\x1f\x7f-\x9f\u2028\u2029"
_CONTROL_CLASS = r"\x00" + CONTROL_CLASS_SQL + r"\ud800-\udfff"  # + lone surrogates (Python)
# Spaces a formula may hide behind; the others are gone already (controls -> " ", zero-width
# removed).
LEADING_SPACE_CLASS = r" \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"
# The characters that start a formula, and their full-width forms (an IME types those; no harm in
# quoting a name that starts with one).
FORMULA_START_CLASS = r"=+@\uff1d\uff0b\uff20\uff0d-"

FORMULA_PATTERN = f"^[{LEADING_SPACE_CLASS}]*[{FORMULA_START_CLASS}]"
FORMULA_PREFIX = "'"
ELLIPSIS = "…"

_INVISIBLE = re.compile(f"[{INVISIBLE_CLASS}]+")
_CONTROL = re.compile(f"[{_CONTROL_CLASS}]")
_FORMULA = re.compile(FORMULA_PATTERN)
# one search decides whether a value needs any work at all (the common case: it does not)
_SUSPECT = re.compile(f"[{INVISIBLE_CLASS}{_CONTROL_CLASS}]|{FORMULA_PATTERN}")
_UNPRINTABLE = re.compile(f"[{INVISIBLE_CLASS}{_CONTROL_CLASS}]")


# what nobody sees as written, by Unicode category: controls (a line break, ESC), format
# characters (bidi overrides and marks, zero-width spaces), private-use and surrogate code points,
# and the line and paragraph separators
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp"})


def hidden_character(value: str) -> str | None:
    """The first character of `value` nobody sees as written, or None: for a value a person
    types that is stored as typed (a name), where a hidden character is refused, never removed."""
    if value.isascii() and value.isprintable():
        return None
    return next((c for c in value if unicodedata.category(c) in _HIDDEN_CATEGORIES), None)


def hidden_problem(what: str, value: str) -> str | None:
    """One sentence when `value` holds a character nobody sees as written (`hidden_character`)."""
    hidden = hidden_character(value)
    if hidden is None:
        return None
    return (
        f"{what} holds the invisible or control character U+{ord(hidden):04X} "
        f"({unicodedata.name(hidden, 'a control character').lower()}): write it with visible "
        "characters on one line"
    )


def printable(value: str) -> str:
    """`value` without invisible characters, each control character replaced by a space."""
    if not _UNPRINTABLE.search(value):
        return value
    return _CONTROL.sub(" ", _INVISIBLE.sub("", value))


def cut(value: str, max_chars: int, marker: str = ELLIPSIS) -> str:
    """`value` in at most `max_chars` characters; a longer one ends in `marker`."""
    if len(value) <= max_chars:
        return value
    return value[: max_chars - len(marker)] + marker


def is_formula(value: str) -> bool:
    """Whether a spreadsheet would read `value` (already `printable`) as a formula."""
    return _FORMULA.match(value) is not None


def defuse_formula(value: str) -> str:
    """`value` (already `printable`) with a leading `'` if it would be read as a formula."""
    return FORMULA_PREFIX + value if _FORMULA.match(value) else value


def is_clean(value: str) -> bool:
    """Whether `value` has nothing these rules would change apart from its length: no invisible or
    control character and no formula start."""
    return _SUSPECT.search(value) is None


# what printable ASCII text may not start with to need no work: a formula character, or a space
# (a formula may hide behind it)
ASCII_SUSPECT_FIRST = frozenset("=+@- ")


def cell_text(value: str, max_chars: int = MAX_TEXT_FIELD_CHARS) -> str:
    """A text cell of a CSV file: printable, no formula, at most `max_chars` characters."""
    if len(value) <= max_chars and (
        # printable ASCII has no invisible or control character: only its first one can matter
        (value.isascii() and value.isprintable() and value[:1] not in ASCII_SUSPECT_FIRST)
        or not _SUSPECT.search(value)
    ):
        return value  # the common case: nothing to change
    return cut(defuse_formula(printable(value)), max_chars)


# What a terminal acts on instead of showing: C0 (ESC starts colour, cursor and OSC sequences such
# as hyperlinks and window titles; CR and BS overwrite what was shown), DEL, C1 (0x9b is a
# one-byte CSI), the line and paragraph separators, the bidi embeddings, overrides, isolates and
# marks (they show a name's characters in another order than stored), and lone surrogates (which
# cannot be printed at all).
_TERMINAL_UNSAFE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def terminal_text(value: str) -> str:
    """`value` as a terminal may show it: every control, bidi and separator character written as
    its escape (`\\u001b`, `\\u202e`), everything else as it is.

    The escape is JSON's and Python's, so a line of JSON stays JSON with the same content; text
    from a document or an upload (file names, numbers, names, messages) goes through here before
    a command prints it."""
    if not _TERMINAL_UNSAFE.search(value):
        return value
    return _TERMINAL_UNSAFE.sub(lambda found: f"\\u{ord(found.group()):04x}", value)
