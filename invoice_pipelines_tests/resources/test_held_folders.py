"""The local upload store's `holding()` block: an organization's folder is opened and checked once
and reused by the block's reads, hashes, moves and puts. What is held is the folder itself, so a
folder swapped for a link during the block is never followed (nothing of another tenant's is read
or written), a folder that is a link when the block opens it is refused as outside a block, and
every descriptor is closed when the block ends."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from invoice_pipelines.resources.upload_stores import LocalUploadStore, UnsafeUpload
from invoice_pipelines.resources.uploads import MAX_HELD_FOLDERS


def _files(folder: Path) -> dict[str, bytes]:
    """Every regular file under a folder (links not followed), by path relative to it."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def zones(tmp_path):
    """acme's and bob's folders; bob's archive holds a file under the name acme's does."""
    root = tmp_path / "uploads"
    for key, data in {
        "acme/x.pdf": b"acme's upload",
        "acme/.archive/a.pdf": b"acme's original",
        "bob/.archive/a.pdf": b"bob's secret",
    }.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)
    return LocalUploadStore(root=str(root)), root


def test_a_folder_swapped_for_a_link_during_the_block_leads_nowhere_else(zones):
    store, root = zones
    bob_before = _files(root / "bob")
    before = _open_descriptors()
    with store.holding():
        assert store.read("acme/.archive/a.pdf") == b"acme's original"
        # acme's folder is renamed away and a link to bob's folder takes its name
        (root / "acme").rename(root / "acme-moved")
        (root / "acme").symlink_to(root / "bob", target_is_directory=True)

        # the block goes on in the folder it checked: acme's own files, never bob's
        assert store.read("acme/.archive/a.pdf") == b"acme's original"
        assert store.digest("acme/.archive/a.pdf") == hashlib.sha256(b"acme's original").hexdigest()
        store.move("acme/x.pdf", "acme/.archive/x.pdf")
        store.put("acme", "new.pdf", b"a new upload")
    assert _open_descriptors() == before

    assert _files(root / "bob") == bob_before
    assert _files(root / "acme-moved") == {
        ".archive/a.pdf": b"acme's original",
        ".archive/x.pdf": b"acme's upload",
        "new.pdf": b"a new upload",
    }
    # after the block the link is refused, as ever
    with pytest.raises(UnsafeUpload):
        store.read("acme/.archive/a.pdf")


def test_a_folder_that_is_a_link_when_the_block_opens_it_is_refused(zones):
    store, root = zones
    (root / "acme").rename(root / "acme-moved")
    (root / "acme").symlink_to(root / "bob", target_is_directory=True)
    with store.holding():
        for _ in range(2):
            with pytest.raises(UnsafeUpload):
                store.read("acme/.archive/a.pdf")
        with pytest.raises(UnsafeUpload):
            store.put("acme", "new.pdf", b"a new upload")
    assert _files(root / "bob") == {".archive/a.pdf": b"bob's secret"}


def test_a_block_over_many_organizations_holds_a_bounded_number_of_folders(zones):
    store, root = zones
    slugs = [f"org-{i}" for i in range(MAX_HELD_FOLDERS + 8)]
    for slug in slugs:
        store.put(slug, "x.pdf", slug.encode())
    before = _open_descriptors()
    with store.holding():
        for slug in slugs:
            assert store.read(f"{slug}/x.pdf") == slug.encode()
        assert _open_descriptors() == before + MAX_HELD_FOLDERS
        # the ones over the bound are walked each time, as outside a block
        assert store.read(f"{slugs[-1]}/x.pdf") == slugs[-1].encode()
    assert _open_descriptors() == before
