"""The held-out invoice corpus (heldout/*.txt + heldout/expected.json) and its scoring.

Every text was written for this evaluation, not by or for the extractor's author: made-up sellers,
layouts as `pdftotext -layout` and Tesseract print them. A field is CORRECT when the extractor
returns the expected value, EMPTY when it returns nothing for a stated value, WRONG when it
returns a value that differs (including a value for a field the document does not state).

    .venv/bin/python -m invoice_pipelines_tests.intake.heldout_corpus   # prints the table
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from invoice_pipelines.intake.domain.formats.text import extract_fields

HELDOUT_DIR = Path(__file__).parent / "heldout"
FIELDS = (
    "number",
    "issue_date",
    "due_date",
    "currency",
    "net_total",
    "tax_total",
    "gross_total",
)
_DATES = {"issue_date", "due_date"}
_AMOUNTS = {"net_total", "tax_total", "gross_total"}


@dataclass(frozen=True)
class HeldOut:
    name: str
    text: str
    expected: dict[str, Any]
    ignore: frozenset[str] = frozenset()


@dataclass
class Score:
    correct: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIELDS, 0))
    total: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIELDS, 0))
    wrong: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return sum(self.correct.values()) / max(1, sum(self.total.values()))

    def table(self) -> str:
        rows = [f"{'field':<12} {'correct':>8} {'of':>4} {'acc':>7}"]
        for name in FIELDS:
            acc = self.correct[name] / max(1, self.total[name])
            rows.append(f"{name:<12} {self.correct[name]:>8} {self.total[name]:>4} {acc:>7.1%}")
        rows.append(
            f"{'overall':<12} {sum(self.correct.values()):>8} {sum(self.total.values()):>4}"
            f" {self.accuracy:>7.1%}   wrong={len(self.wrong)} empty={len(self.empty)}"
        )
        return "\n".join(rows)


def _expected_value(name: str, raw: Any) -> Any:
    if raw is None:
        return None
    if name in _DATES:
        return date.fromisoformat(raw)
    if name in _AMOUNTS:
        return Decimal(raw)
    return raw


def load_corpus() -> list[HeldOut]:
    spec = json.loads((HELDOUT_DIR / "expected.json").read_text(encoding="utf-8"))
    corpus = []
    for name, values in spec.items():
        if name.startswith("_"):
            continue
        text = (HELDOUT_DIR / f"{name}.txt").read_text(encoding="utf-8")
        expected = {f: _expected_value(f, values.get(f)) for f in FIELDS}
        corpus.append(HeldOut(name, text, expected, frozenset(values.get("ignore", ()))))
    return corpus


def score(corpus: list[HeldOut]) -> Score:
    result = Score()
    for doc in corpus:
        fields = extract_fields(doc.text)
        for name in FIELDS:
            if name in doc.ignore:
                continue
            want, got = doc.expected[name], fields.value(name)
            result.total[name] += 1
            if got == want and (got is None or type(got) is type(want)):
                result.correct[name] += 1
            elif got is None:
                result.empty.append(f"{doc.name}.{name}: empty, expected {want!r}")
            else:
                result.wrong.append(f"{doc.name}.{name}: got {got!r}, expected {want!r}")
    return result


if __name__ == "__main__":
    outcome = score(load_corpus())
    print(outcome.table())
    for miss in outcome.wrong:
        print("WRONG", miss)
    for miss in outcome.empty:
        print("EMPTY", miss)
