"""Clean-up of files no version is to have: leftovers of an attempt that did not commit, and a
lines file written ahead for a version that was not written after all."""

from __future__ import annotations

from concurrent.futures import wait

from invoice_pipelines.resources.files.files import Files


def remove_leftover(store: Files, key: str) -> None:
    if store.exists(key):
        store.remove(key)


def discard(lines, store: Files, key: str) -> None:
    """Wait for a lines file being written that no version is to have, and remove it."""
    wait([lines])
    remove_leftover(store, key)
