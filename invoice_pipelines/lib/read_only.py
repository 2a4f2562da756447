"""An offboarded organization's data are read-only until the deletion: the sentence that says so
and the one question every entry point that writes asks first (`writable`), with `Refused`, the
request a person can correct. Plain Python: a command that only reads loads nothing more."""

from __future__ import annotations

from collections.abc import Sequence

from invoice_pipelines.core.organization import Organization


class Refused(ValueError):
    """A request a person can correct: one sentence each in `problems`."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


def read_only_sentence(slug: str) -> str:
    """Why nothing of an offboarded organization may change (docs/organizations.md)."""
    return (
        f"{slug} is offboarded: its data are kept read-only until its retention periods are "
        "over, then deleted (offboard --delete); nothing else may change them"
    )


def writable(org: Organization) -> Organization:
    """The organization, if its data may change; an offboarded one is Refused with
    `read_only_sentence` before any work. Every entry point that writes an organization's rows or
    settings asks this first (a run's config: lib/refusals.py; a command: before its
    transaction), so a person reads one sentence, not the database's refusal (0055, 0056)."""
    if org.offboarded:
        raise Refused([f"{read_only_sentence(org.slug)}."])
    return org
