"""Character confusions that Tesseract makes in invoice text, undone where the context is plain.

Every substitution replaces one character by one, so positions in a normalized line are the
positions in the original: labels can be found in the normalized line and values read from the
original one.

- In a number ("1.2O4,OO", "12.02.2O25", "2O %"): O/o for 0 and l/I for 1. A token counts as a
  number when it holds digits and only digits, these look-alikes and . , ' separators.
- In a word ("Tota1", "Zah1bar", "innerha1b"): a single 1 or 0 between lowercase letters is l/o.
- At the start of a word: "lnvoice" and "lNVOICE" are "Invoice" and "INVOICE" (no word in the
  languages we read begins with "ln" or with a lowercase l before capitals).
"""

from __future__ import annotations

import re

_NUMBER_TOKEN = re.compile(r"(?<![^\W_])[0-9OolI](?:[0-9OolI.,']*[0-9OolI])?(?![^\W_])")
_WORD_TOKEN = re.compile(r"(?<![^\W_])[^\W\d_]*[a-z][01][^\W\d_]*(?![^\W_])")
_LN_START = re.compile(r"(?<![^\W_])l(?=n[a-z])|(?<![^\W_])l(?=[A-Z]{2})")
_TO_DIGIT = str.maketrans({"O": "0", "o": "0", "l": "1", "I": "1"})
_TO_LETTER = str.maketrans({"1": "l", "0": "o"})


def _number(match: re.Match[str]) -> str:
    token = match.group(0)
    if not re.search(r"\d", token) or token.isdigit():
        return token
    return token.translate(_TO_DIGIT)


def _word(match: re.Match[str]) -> str:
    token = match.group(0)
    letters = sum(ch.isalpha() for ch in token)
    return token.translate(_TO_LETTER) if letters >= 3 else token


# a date whose dot OCR read as a colon or comma ("03.11:2026", "03,11.2026"): one separator is a
# dot, the other a look-alike
_DATE_SEPARATORS = re.compile(
    r"(?<![\d.,:])(\d{1,2})([.:,])(\d{1,2})([.:,])((?:19|20)\d{2})(?![\d.,:]\d)"
)


def _date(match: re.Match[str]) -> str:
    if "." not in (match.group(2), match.group(4)):
        return match.group(0)
    return f"{match.group(1)}.{match.group(3)}.{match.group(5)}"


def normalize_ocr(line: str) -> str:
    """The line with OCR look-alikes put right; same length, same positions."""
    line = _DATE_SEPARATORS.sub(_date, line)
    fixed = _NUMBER_TOKEN.sub(_number, line)
    fixed = _WORD_TOKEN.sub(_word, fixed)
    fixed = _LN_START.sub("I", fixed)
    return fixed
