"""Where the files we produce are kept (CSV and DATEV files per organization and month, invoice
PDFs and XML), in plain Python: the `Files` interface and `LocalFiles`, a folder tree. The Dagster
resources `export_store` and `document_store` (`resources/files/file_stores.py`) wrap these; a command
uses them directly, without Dagster.

Files are written once and never overwritten: a month exported again gets new file names (its
version), an invoice document exists once, so what was handed out stays as it was.
An object store only has to provide the same methods (write a new object from a stream of byte
chunks, refuse an existing key, read, remove): `resources/files/s3_objects.py`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from invoice_pipelines.settings import document_dir, export_dir


class Files:
    """The interface the export and document work uses."""

    def write(self, key: str, chunks: Iterable[bytes]) -> str:
        """Write a new file from byte chunks (streamed) and return where it is.

        Raises FileExistsError if `key` exists: exports never overwrite a file.
        """

        def fill(handle: BinaryIO) -> None:
            for chunk in chunks:
                handle.write(chunk)

        return self.write_with(key, fill)

    def write_with(self, key: str, fill: Callable[[BinaryIO], None]) -> str:
        """Like `write`, for producers that write into a file object (e.g. PostgreSQL COPY)."""
        raise NotImplementedError

    def location(self, key: str) -> str:
        """Where `key` is (or will be) kept: a path or URL for people and metadata."""
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def read(self, key: str) -> bytes:
        raise NotImplementedError

    def remove(self, key: str) -> None:
        """Delete a file: leftovers of an export attempt that did not commit, and files past their
        retention period (housekeeping). A missing file is not an error."""
        raise NotImplementedError


@dataclass(eq=False)
class LocalFiles(Files):
    """A folder tree under `root`; by default the folder of its `area` (INVOICE_PIPELINES_EXPORT_DIR
    for exports, INVOICE_PIPELINES_DOCUMENT_DIR for documents)."""

    root: str = field(
        default="", metadata={"description": "Folder; empty means the area's default folder"}
    )
    area: str = field(
        default="exports",
        metadata={"description": "exports or documents: the default folder"},
    )

    def __post_init__(self) -> None:
        self.root = str(self.root)  # a path is taken too

    def _root(self) -> Path:
        if self.root:
            return Path(self.root)
        return document_dir() if self.area == "documents" else export_dir()

    def path(self, key: str) -> Path:
        root = self._root().resolve()
        path = (root / key).resolve()
        if root not in path.parents:
            raise ValueError(f"key {key!r} escapes the export store")
        return path

    def location(self, key: str) -> str:
        return str(self.path(key))

    def write_with(self, key: str, fill: Callable[[BinaryIO], None]) -> str:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            raise FileExistsError(f"export file {target} exists; exports never overwrite")
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".part")
        try:
            with os.fdopen(fd, "wb", buffering=1 << 20) as handle:
                fill(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)
            # link, not rename: fails instead of replacing a file that appeared meanwhile
            os.link(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return str(target)

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def read(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def remove(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)
