"""Upload stores: where supplier invoices arrive and where their original bytes are kept, in plain
Python. The Dagster resource `upload_store` (`resources/files/upload_stores.py`) wraps these; a command
uses them directly, without Dagster.

The interface (`Uploads`) is what the upload sensor and the intake job need; `LocalUploads` keeps one
folder per organization slug (`<root>/<slug>/` is the drop zone, `<root>/<slug>/.archive/` keeps
every registered original until housekeeping removes it after its retention period). An
object-store implementation only has to provide the same methods.

This module also owns the trust boundary of the drop zone, which people and other programs write:
- a key is `<slug>/<name>` or `<slug>/<folder>/<name>`; `check_key` refuses anything that could
  name a file outside that organization's folder (`..`, `.`, empty parts, NUL, names too long for
  the file system) with `StoreKeyError`;
- the local store opens every part of a key relative to the organization's folder without
  following symbolic links (`O_NOFOLLOW`, folder by folder) and reads only regular files, so a file
  or folder swapped for a link to another tenant's archive between a look and a read is refused
  (`UnsafeUpload`), never followed;
- every read of an upload, and its content hash, goes through one bounded reader
  (`read_limited` / `hash_limited`): the size is checked before reading and at most limit + 1
  bytes are read, so a file over INVOICE_PIPELINES_MAX_UPLOAD_BYTES (or one that grows past it
  while it is read) is refused with `UploadTooLarge` and never read whole.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from invoice_pipelines.limits import MiB
from invoice_pipelines.settings import max_upload_bytes, upload_dir

ARCHIVE = ".archive"
# the `uploads.storage_key` column's length
MAX_KEY_CHARS = 1024
# NAME_MAX of Linux file systems, in bytes of the encoded name
MAX_NAME_BYTES = 255
_BLOCK = 1 << 20
LIMIT_SETTING = "INVOICE_PIPELINES_MAX_UPLOAD_BYTES"


def archive_key(key: str, digest: str, mtime_ns: int) -> str:
    """Where a registered upload is kept: derived from the file itself (content hash, mtime, name),
    so it is known before the move and the same on a second attempt after a crash."""
    slug, _, name = key.partition("/")
    return f"{slug}/{ARCHIVE}/{digest[:16]}-{mtime_ns}-{_UNSAFE.sub('_', name)[:160]}"


# partial uploads and editor/OS droppings are never picked up
_IGNORED = re.compile(r"^(\.|~\$)|\.(part|tmp|crdownload|swp)$", re.IGNORECASE)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class StoreKeyError(ValueError):
    """A key or file name the store refuses: it could name something outside the organization's
    folder, or no file system could store it."""


class UnsafeUpload(OSError):
    """The key names a symbolic link, a link in its path, or something that is not a regular file."""


class UploadTooLarge(OSError):
    """The upload is over the size limit; it was not read whole."""

    def __init__(self, size: int | None, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(too_large_message(size, limit))


def _amount(n: int) -> str:
    if n >= MiB:
        return f"{n / MiB:.1f}".removesuffix(".0") + " MiB"
    if n >= 1024:
        return f"{n / 1024:.1f}".removesuffix(".0") + " KiB"
    return f"{n} bytes"


def too_large_message(size: int | None, limit: int) -> str:
    """What a person reads about an upload over the limit (recorded as the document's error)."""
    if size is None:  # it grew past the limit between the size check and the read
        return f"the file is larger than the limit of {_amount(limit)} ({LIMIT_SETTING})"
    shown, limit_shown = _amount(size), _amount(limit)
    if shown == limit_shown:  # "20 MiB; the limit is 20 MiB" would puzzle anyone
        shown, limit_shown = f"{size} bytes", f"{limit} bytes"
    return f"the file is {shown}; the limit is {limit_shown} ({LIMIT_SETTING})"


def _check_size(size: int | None, limit: int) -> None:
    if limit < 0:
        raise ValueError("the upload limit cannot be negative")
    if size is not None and size > limit:
        raise UploadTooLarge(size, limit)


def _blocks(read: Callable[[int], bytes], limit: int, size: int | None) -> Iterator[bytes]:
    """The stream's blocks; at most limit + 1 bytes are ever asked for."""
    _check_size(size, limit)
    total = 0
    while True:
        block = read(min(_BLOCK, limit + 1 - total))
        if not block:
            return
        total += len(block)
        if total > limit:
            raise UploadTooLarge(None, limit)
        yield block


def read_limited(read: Callable[[int], bytes], limit: int, *, size: int | None = None) -> bytes:
    """All bytes of a stream (`read` as in a file object) if there are at most `limit`, else
    UploadTooLarge. `size` (from stat or Content-Length) refuses a large file before reading it."""
    return b"".join(_blocks(read, limit, size))


def hash_limited(read: Callable[[int], bytes], limit: int, *, size: int | None = None) -> str:
    """sha256 hex of a stream, with the same bound as `read_limited`."""
    sha = hashlib.sha256()
    for block in _blocks(read, limit, size):
        sha.update(block)
    return sha.hexdigest()


def read_file_limited(path: str | os.PathLike, limit: int) -> bytes:
    """A file a person names (the CLI), with the same bound: a directory is IsADirectoryError,
    anything but a regular file (a FIFO, a device) an OSError, before anything is read."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with open(fd, "rb", buffering=0) as handle:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeUpload(f"{path} is not a regular file")
        return read_limited(handle.read, limit, size=info.st_size)


def check_name(name: str) -> str:
    """One part of a key: a file or folder name inside the organization's folder."""
    if not isinstance(name, str) or name in ("", ".", ".."):
        raise StoreKeyError(f"{name!r} is not a file name")
    if "/" in name or "\0" in name:
        raise StoreKeyError(f"file name {name!r} contains '/' or a NUL character")
    try:
        encoded = os.fsencode(name)
    except UnicodeError:
        raise StoreKeyError(f"file name {name!r} cannot be stored") from None
    if len(encoded) > MAX_NAME_BYTES:
        raise StoreKeyError(
            f"file name {name[:40]!r}... is {len(encoded)} bytes long; the limit is "
            f"{MAX_NAME_BYTES}"
        )
    return name


def check_key(key: str) -> list[str]:
    """The parts of a key (organization slug first), or StoreKeyError."""
    if not isinstance(key, str) or not key:
        raise StoreKeyError("empty key")
    if len(key) > MAX_KEY_CHARS:
        raise StoreKeyError(f"key is {len(key)} characters long; the limit is {MAX_KEY_CHARS}")
    if key.startswith("/"):
        raise StoreKeyError(f"key {key[:80]!r} is absolute; keys are relative to the store")
    parts = key.split("/")
    if len(parts) < 2:
        raise StoreKeyError(f"key {key[:80]!r} names no file inside an organization's folder")
    try:
        for part in parts:
            check_name(part)
    except StoreKeyError as exc:
        raise StoreKeyError(f"key {key[:80]!r} escapes the upload store: {exc}") from None
    return parts


@dataclass(frozen=True)
class StoredFile:
    key: str  # relative to the store root, e.g. "acme/invoice.pdf"
    name: str
    size: int
    mtime_ns: int
    # why the file is not read, e.g. it is a symbolic link; empty for an ordinary upload
    refused: str = ""


class Uploads:
    """The interface: list the drop zone, hash, read, move into the archive, put, remove.

    `read` and `digest` are bounded by `max_bytes` (default INVOICE_PIPELINES_MAX_UPLOAD_BYTES):
    a larger upload raises UploadTooLarge without being read whole.
    """

    def list_inbox(self, organization_slug: str, limit: int | None = None) -> list[StoredFile]:
        """The drop zone's files, oldest first; with `limit`, only that many are looked at."""
        raise NotImplementedError

    def read(self, key: str, max_bytes: int | None = None) -> bytes:
        raise NotImplementedError

    def digest(self, key: str, max_bytes: int | None = None) -> str:
        """sha256 hex of a stored file, read in blocks and bounded like `read`."""
        raise NotImplementedError

    def move(self, key: str, target_key: str) -> None:
        """Move a file within the store (drop zone -> archive); atomic where the store allows."""
        raise NotImplementedError

    def put(self, organization_slug: str, filename: str, data: bytes) -> str:
        """Drop a file into an organization's drop zone atomically (tests, demo, other apps)."""
        raise NotImplementedError

    def write(self, key: str, data: bytes) -> None:
        """Write a file at `key` atomically, a file there replaced (the mailbox reader's
        attachments, straight into the archive under a key of their content hash). Here: put
        into the drop zone under an ignored name, then moved; a store writes directly where it
        can."""
        staged = self.put(check_key(key)[0], f".{secrets.token_hex(8)}.part", data)
        self.move(staged, key)

    def remove(self, key: str) -> bool:
        """Delete a stored file (housekeeping, after its retention period): True if it was there
        and is gone now, False if it was already missing."""
        raise NotImplementedError

    def make_inbox(self, organization_slug: str) -> str:
        """Make the organization's drop zone where a person drops files (`organizations add`):
        where it is, as a person writes it. A store without folders (object storage) has
        nothing to make: a key's prefix is its drop zone."""
        check_name(organization_slug)
        return f"{organization_slug}/"


def limit_or_setting(max_bytes: int | None) -> int:
    return max_upload_bytes() if max_bytes is None else max_bytes


def put_name(filename: str) -> str:
    """The drop-zone name of a file handed to `put`: its last path part, checked."""
    name = check_name(Path(filename).name if filename else "")
    if name == ARCHIVE:
        raise StoreKeyError(f"{ARCHIVE!r} is the archive folder's name, not a file name")
    return name


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO swapped in must not make the open wait for a writer
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _write_in(folder: int, name: str, data: bytes) -> None:
    """`data` as the file `name` in the folder (a descriptor), atomically: written under an
    ignored name, then renamed, so that no reader (the upload sensor) sees half a file."""
    tmp = f".{secrets.token_hex(8)}.part"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o600, dir_fd=folder)
    try:
        # 0644 whatever the umask: other readers of the store (the daemon, housekeeping)
        os.fchmod(fd, 0o644)
        with open(fd, "wb", closefd=False) as handle:
            handle.write(data)
        os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=folder)
        except FileNotFoundError:
            pass
        raise
    finally:
        os.close(fd)


@dataclass(eq=False)
class LocalUploads(Uploads):
    """A folder per organization under `root` (default INVOICE_PIPELINES_UPLOAD_DIR or .data/uploads).

    The root is the operator's and may itself be a link (e.g. to a mounted volume); below it,
    nothing is followed.
    """

    root: str = field(
        default="", metadata={"description": "Folder; empty means INVOICE_PIPELINES_UPLOAD_DIR"}
    )

    def __post_init__(self) -> None:
        self.root = str(self.root)  # a path is taken too

    def _root(self) -> Path:
        return Path(self.root) if self.root else upload_dir()

    @contextmanager
    def _folder(self, parts: list[str], *, create: bool = False) -> Iterator[int]:
        """A descriptor of the folder `<root>/<parts...>`, opened part by part without following
        a link; a link or a non-folder on the way is UnsafeUpload."""
        if create:
            self._root().mkdir(parents=True, exist_ok=True)
        fd = os.open(self._root(), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for i, part in enumerate(parts):
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    try:
                        os.mkdir(part, 0o755, dir_fd=fd)
                    except FileExistsError:
                        pass  # made meanwhile by another writer; opened (and checked) below
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        where = "/".join(parts[: i + 1])
                        raise UnsafeUpload(
                            f"{where} is a symbolic link or not a folder; the upload store "
                            "follows no links inside an organization's folder"
                        ) from None
                    raise
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    @contextmanager
    def _open(self, key: str) -> Iterator[tuple[int, os.stat_result]]:
        parts = check_key(key)
        with self._folder(parts[:-1]) as folder:
            try:
                fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=folder)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise UnsafeUpload(
                        f"{key} is a symbolic link; only regular files are read"
                    ) from None
                raise
            try:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    raise UnsafeUpload(f"{key} is not a regular file")
                yield fd, info
            finally:
                os.close(fd)

    def list_inbox(self, organization_slug: str, limit: int | None = None) -> list[StoredFile]:
        check_name(organization_slug)
        try:
            with self._folder([organization_slug]) as folder:
                found = []
                with os.scandir(folder) as entries:
                    for entry in entries:
                        if limit is not None and len(found) >= limit:
                            break
                        if _IGNORED.search(entry.name) or entry.is_dir(follow_symlinks=False):
                            continue
                        info = entry.stat(follow_symlinks=False)
                        refused = ""
                        if entry.is_symlink():
                            refused = "it is a symbolic link; only regular files are read"
                        elif not stat.S_ISREG(info.st_mode):
                            refused = "it is not a regular file"
                        found.append(
                            StoredFile(
                                f"{organization_slug}/{entry.name}",
                                entry.name,
                                info.st_size,
                                info.st_mtime_ns,
                                refused,
                            )
                        )
        except FileNotFoundError:
            return []
        return sorted(found, key=lambda f: (f.mtime_ns, f.name))

    def read(self, key: str, max_bytes: int | None = None) -> bytes:
        with self._open(key) as (fd, info):
            return read_limited(
                lambda n: os.read(fd, n), limit_or_setting(max_bytes), size=info.st_size
            )

    def digest(self, key: str, max_bytes: int | None = None) -> str:
        with self._open(key) as (fd, info):
            return hash_limited(
                lambda n: os.read(fd, n), limit_or_setting(max_bytes), size=info.st_size
            )

    def move(self, key: str, target_key: str) -> None:
        source, target = check_key(key), check_key(target_key)
        if source[0] != target[0]:
            raise StoreKeyError(f"{key!r} cannot move out of its organization's folder")
        with (
            self._folder(source[:-1]) as src,
            self._folder(target[:-1], create=True) as dst,
        ):
            info = os.stat(source[-1], dir_fd=src, follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode):
                raise UnsafeUpload(f"{key} is not a regular file; it is not moved")
            try:
                # rename acts on the name itself: a link swapped in after the check above would
                # be moved as a link (and refused when read), never the file it points at
                os.replace(source[-1], target[-1], src_dir_fd=src, dst_dir_fd=dst)
            except (IsADirectoryError, NotADirectoryError):
                raise UnsafeUpload(f"{target_key} is a folder; {key} is not moved") from None

    def make_inbox(self, organization_slug: str) -> str:
        check_name(organization_slug)
        with self._folder([organization_slug], create=True):
            pass
        return str(self._root() / organization_slug)

    def put(self, organization_slug: str, filename: str, data: bytes) -> str:
        name = put_name(filename)
        check_name(organization_slug)
        with self._folder([organization_slug], create=True) as folder:
            try:
                _write_in(folder, name, data)
            except IsADirectoryError:
                raise StoreKeyError(f"{name!r} is a folder in the drop zone") from None
        return f"{organization_slug}/{name}"

    def write(self, key: str, data: bytes) -> None:
        parts = check_key(key)
        with self._folder(parts[:-1], create=True) as folder:
            try:
                _write_in(folder, parts[-1], data)
            except IsADirectoryError:
                raise UnsafeUpload(f"{key} is a folder; nothing was written") from None

    def remove(self, key: str) -> bool:
        parts = check_key(key)
        try:
            with self._folder(parts[:-1]) as folder:
                os.unlink(parts[-1], dir_fd=folder)  # a link is removed itself, never its target
        except FileNotFoundError:
            return False
        except IsADirectoryError:
            raise UnsafeUpload(f"{key} is a folder, not a file; it is not removed") from None
        return True
