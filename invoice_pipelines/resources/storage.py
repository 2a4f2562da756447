"""Upload stores: where supplier invoices arrive and where their original bytes are kept.

The interface is what the upload sensor and the intake job need; `LocalUploadStore` keeps one
folder per organization slug (`<root>/<slug>/` is the drop zone, `<root>/<slug>/.archive/` keeps
every registered original until housekeeping removes it after its retention period). An object-store implementation only has to provide the same methods.
"""

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from invoice_pipelines.settings import upload_dir

ARCHIVE = ".archive"


def archive_key(key: str, digest: str, mtime_ns: int) -> str:
    """Where a registered upload is kept: derived from the file itself (content hash, mtime, name),
    so it is known before the move and the same on a second attempt after a crash."""
    slug, _, name = key.partition("/")
    return f"{slug}/{ARCHIVE}/{digest[:16]}-{mtime_ns}-{_UNSAFE.sub('_', name)[:160]}"


# partial uploads and editor/OS droppings are never picked up
_IGNORED = re.compile(r"^(\.|~\$)|\.(part|tmp|crdownload|swp)$", re.IGNORECASE)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class StoredFile:
    key: str  # relative to the store root, e.g. "acme/invoice.pdf"
    name: str
    size: int
    mtime_ns: int


class UploadStore(ConfigurableResource):
    """The interface: list the drop zone, hash, read, move into the archive, put, remove."""

    def list_inbox(self, organization_slug: str) -> list[StoredFile]:
        raise NotImplementedError

    def read(self, key: str) -> bytes:
        raise NotImplementedError

    def digest(self, key: str) -> str:
        """sha256 hex of a stored file, read in chunks (uploads can be large)."""
        raise NotImplementedError

    def move(self, key: str, target_key: str) -> None:
        """Move a file within the store (drop zone -> archive); atomic where the store allows."""
        raise NotImplementedError

    def put(self, organization_slug: str, filename: str, data: bytes) -> str:
        """Drop a file into an organization's drop zone atomically (tests, demo, other apps)."""
        raise NotImplementedError

    def remove(self, key: str) -> bool:
        """Delete a stored file (housekeeping, after its retention period): True if it was there
        and is gone now, False if it was already missing."""
        raise NotImplementedError


class LocalUploadStore(UploadStore):
    """A folder per organization under `root` (default INVOICE_PIPELINES_UPLOAD_DIR or .data/uploads)."""

    root: str = Field(default="", description="Folder; empty means INVOICE_PIPELINES_UPLOAD_DIR")

    def _root(self) -> Path:
        return Path(self.root) if self.root else upload_dir()

    def _path(self, key: str) -> Path:
        root = self._root().resolve()
        path = (root / key).resolve()
        if root != path and root not in path.parents:
            raise ValueError(f"key {key!r} escapes the upload store")
        return path

    def list_inbox(self, organization_slug: str) -> list[StoredFile]:
        folder = self._root() / organization_slug
        if not folder.is_dir():
            return []
        found = []
        with os.scandir(folder) as entries:
            for entry in entries:
                if _IGNORED.search(entry.name) or not entry.is_file(follow_symlinks=False):
                    continue
                stat = entry.stat(follow_symlinks=False)
                found.append(
                    StoredFile(
                        f"{organization_slug}/{entry.name}",
                        entry.name,
                        stat.st_size,
                        stat.st_mtime_ns,
                    )
                )
        return sorted(found, key=lambda f: (f.mtime_ns, f.name))

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def digest(self, key: str) -> str:
        sha = hashlib.sha256()
        with self._path(key).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        return sha.hexdigest()

    def move(self, key: str, target_key: str) -> None:
        target = self._path(target_key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._path(key), target)  # atomic on one filesystem

    def put(self, organization_slug: str, filename: str, data: bytes) -> str:
        folder = self._root() / organization_slug
        folder.mkdir(parents=True, exist_ok=True)
        name = Path(filename).name
        # write under an ignored name, then rename: the sensor never sees half a file
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".part")
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide uploads from other readers of the store
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, folder / name)
        return f"{organization_slug}/{name}"

    def remove(self, key: str) -> bool:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        return True
