"""Property-based: hostile keys and file names against the upload store's key handling.

Whatever a drop zone or a record hands the store (`..`, absolute paths, NUL, control characters,
very long names, unicode look-alikes, names starting with `-`), it never reaches a file outside
the organization's folder, and it fails with nothing but the store's own errors: StoreKeyError for
a key it refuses, FileNotFoundError / UnsafeUpload (an OSError) for a file that is not there or
not a regular file. Generation is derandomized, so a run is the same every time.
"""

from __future__ import annotations

import os
import tempfile
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from invoice_pipelines.resources.files.s3 import S3UploadStore
from invoice_pipelines.resources.files.uploads import (
    LocalUploads,
    StoreKeyError,
    UnsafeUpload,
    check_key,
)

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

HOSTILE_PARTS = [
    "..",
    ".",
    "",
    "/",
    "//",
    "/etc/passwd",
    "../bob",
    "..\\bob",
    "\0",
    "x\0y",
    "-rf",
    "--help",
    "\n",
    "\r\n",
    "\x1b[31m",
    "\u202e",  # right-to-left override
    "\uff0e\uff0e",  # fullwidth '..'
    "\u2025",  # two-dot leader
    unicodedata.normalize("NFD", "Rechnung-März.pdf"),
    unicodedata.normalize("NFC", "Rechnung-März.pdf"),
    "a" * 255,
    "a" * 256,
    "ä" * 128,  # 256 bytes in UTF-8
    "bob",
    ".archive",
    "~$x.pdf",
]

parts = st.one_of(
    st.sampled_from(HOSTILE_PARTS),
    st.text(min_size=0, max_size=12),
    st.text(alphabet=st.sampled_from("./\\\0-~ .aäÄ\u0308\n\t\x7f"), max_size=8),
    st.text(alphabet="a", min_size=250, max_size=260),
)
keys = st.lists(parts, min_size=1, max_size=5).map("/".join)


def _tree(root: Path) -> dict[str, bytes]:
    """Every entry under the root: files with their bytes, links with their target."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = b"-> " + os.fsencode(os.readlink(path))
            elif path.is_file():
                found[rel] = path.read_bytes()
    return found


@contextmanager
def drop_zones() -> Iterator[tuple[LocalUploads, Path]]:
    """A fresh store per example: acme's folder next to bob's; each file holds its own key, so a
    read that returns another file's bytes shows at once. acme's folder also holds links into
    bob's and out of the store (a hostile drop zone)."""
    with tempfile.TemporaryDirectory(prefix="ip-keys-") as scratch:
        base = Path(scratch)
        root = base / "uploads"
        for key in ("acme/x.pdf", "acme/.archive/a.pdf", "bob/secret.pdf", "bob/.archive/b.pdf"):
            path = root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(key.encode())
        (base / "outside.pdf").write_bytes(b"outside")
        (root / "acme" / "link.pdf").symlink_to(root / "bob" / "secret.pdf")
        (root / "acme" / "up").symlink_to(root / "bob", target_is_directory=True)
        (root / "acme" / "out").symlink_to(base, target_is_directory=True)
        yield LocalUploads(str(root)), root


def _outside_acme(root: Path) -> dict[str, bytes]:
    tree = {k: v for k, v in _tree(root.parent).items() if not k.startswith("uploads/acme/")}
    assert tree["outside.pdf"] == b"outside" and tree["uploads/bob/secret.pdf"]
    return tree


@SETTINGS
@given(key=keys)
@example(key="acme/../bob/secret.pdf")
@example(key="acme/link.pdf")
@example(key="acme/up/secret.pdf")
@example(key="acme/up/.archive/b.pdf")
@example(key="acme/out/outside.pdf")
@example(key="/etc/passwd")
@example(key="acme/x.pdf\0")
def test_a_read_never_reaches_another_file(key):
    with drop_zones() as (store, _):
        for operation in (store.read, store.digest):
            try:
                result = operation(key)
            except (StoreKeyError, FileNotFoundError, UnsafeUpload):
                continue
            # what can be read is exactly the file the key names, never one behind a link
            parts = check_key(key)
            assert parts[0] in ("acme", "bob") and not {"up", "out", "link.pdf"} & set(parts)
            if operation is store.read:
                assert result == key.encode()


@settings(SETTINGS, max_examples=80)  # three fresh drop zones per example
@given(suffix=keys)
@example(suffix="../bob/secret.pdf")
@example(suffix="up/secret.pdf")
@example(suffix="link.pdf")
def test_a_move_or_remove_for_acme_never_touches_anything_outside_acmes_folder(suffix):
    for operation, args in (
        ("move", (f"acme/{suffix}", "acme/.archive/moved.pdf")),
        ("move", ("acme/x.pdf", f"acme/{suffix}")),
        ("remove", (f"acme/{suffix}",)),
    ):
        with drop_zones() as (store, root):
            outside = _outside_acme(root)
            try:
                getattr(store, operation)(*args)
            except (StoreKeyError, FileNotFoundError, UnsafeUpload):
                pass
            assert _outside_acme(root) == outside


@SETTINGS
@given(filename=st.one_of(keys, st.sampled_from(HOSTILE_PARTS)))
@example(filename="../../bob/secret.pdf")
@example(filename="/etc/passwd")
@example(filename="..")
@example(filename="-rf")
def test_put_stays_in_the_organizations_folder(filename):
    with drop_zones() as (store, root):
        outside = _outside_acme(root)
        try:
            key = store.put("acme", filename, b"new upload")
        except StoreKeyError:
            pass
        else:
            path = root / key
            assert path.parent == root / "acme" and not path.is_symlink()
            assert store.read(key) == b"new upload"
        assert _outside_acme(root) == outside


@SETTINGS
@given(key=keys)
def test_the_s3_store_checks_keys_as_the_local_one_does(key):
    store = S3UploadStore(bucket="b", prefix="uploads").uploads()
    try:
        object_key = store.object_key(key)
    except StoreKeyError:
        with pytest.raises(StoreKeyError):
            check_key(key)
        return
    parts = check_key(key)
    assert object_key == "uploads/" + "/".join(parts)
    assert not {"", ".", ".."} & set(parts) and "\0" not in object_key
