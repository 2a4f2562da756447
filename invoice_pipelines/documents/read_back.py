"""The reader that proves each document we write (`einvoice.read_back.ReadBack`: the intake's,
read as a supplier's document would be). The documents area does not import it: whoever assembles
the program hands it over with `wire` (`definitions.py`, which the documents command and the
Dagster runs load; the dev tools and the tests that build documents without the definitions).
Building a document without one refuses (`NotWired`): the read-back is never skipped."""

from __future__ import annotations

from invoice_pipelines.einvoice.read_back import ReadBack

_wired: list[ReadBack] = []


class NotWired(RuntimeError):
    """No reader was handed to the documents area, so no document can be proven."""


def wire(read_back: ReadBack) -> None:
    """The reader documents are proven with from now on, in this process."""
    _wired[:] = [read_back]


def wired() -> ReadBack:
    if not _wired:
        raise NotWired(
            "no reader to read written documents back with: documents are built only when "
            "proven (load invoice_pipelines.definitions, or wire intake.read_back.READ_BACK)"
        )
    return _wired[0]
