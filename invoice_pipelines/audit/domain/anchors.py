"""The audit chain's heads kept outside the database: each time seals are added, the new head
(organization, position, chain hash, key id, time) is written to the archive store (the export
store) as an object nobody may overwrite or remove, and `audit-verify` compares the chain with
every head written so far. A chain the database holds can be cut or emptied by whoever can write
the database; the heads beside the archive name that (as certificate-transparency logs publish
signed heads outside the log).

- S3: `PUT` with `If-None-Match: *` and S3 Object Lock (`COMPLIANCE` mode, retained `LOCK_YEARS`),
  so not even the bucket's owner can delete or replace a head before then; the bucket must have
  Object Lock enabled, and a store that refuses the lock is named, never written without it.
- A local folder: a new file (`O_EXCL`), written once and set read-only, never replaced.

Each head's name holds its time, position and chain hash (`_audit_anchors/<org id>/
<time>.p<position>.<chain hash>.json`), so comparing them costs one listing per organization; the
body repeats them with the key id.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from invoice_pipelines.resources.files.files import Files, LocalFiles

FOLDER = "_audit_anchors"
LOCK_MODE = "COMPLIANCE"
LOCK_YEARS = 11  # the books' ten years, counted from the end of a year, and some margin
_NAME = re.compile(r"(?P<time>\d{8}T\d{12}Z)\.p(?P<position>\d+)\.(?P<hash>[0-9a-f]{64})\.json")


@dataclass(frozen=True)
class Head:
    """A chain head as anchored: where the chain stood at `at`."""

    organization_id: int
    position: int
    chain_hash: str
    key_id: str | None
    at: datetime

    def name(self) -> str:
        stamp = self.at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        return f"{stamp}.p{self.position}.{self.chain_hash}.json"

    def body(self) -> bytes:
        return json.dumps(
            {
                "organization_id": self.organization_id,
                "position": self.position,
                "chain_hash": self.chain_hash,
                "key_id": self.key_id,
                "at": self.at.astimezone(UTC).isoformat(),
            },
            sort_keys=True,
        ).encode()


@dataclass(frozen=True)
class Anchored:
    """A head found in the store, read from its name."""

    name: str
    position: int
    chain_hash: str
    at: str


def _parse(name: str) -> Anchored | None:
    found = _NAME.fullmatch(name)
    if found is None:
        return None
    return Anchored(name, int(found["position"]), found["hash"], found["time"])


def _folder(organization_id: int) -> str:
    return f"{FOLDER}/{organization_id}"


class LocalAnchors:
    """Heads as read-only files under `root` (the local export store's folder)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def where(self) -> str:
        return str(self.root / FOLDER)

    def put(self, head: Head) -> str:
        folder = self.root / _folder(head.organization_id)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / head.name()
        # a new file or none: O_EXCL refuses one that exists, whoever wrote it
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        with os.fdopen(fd, "wb") as handle:
            handle.write(head.body())
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(target, 0o444)
        return str(target)

    def heads(self, organization_id: int) -> list[Anchored]:
        try:
            names = os.listdir(self.root / _folder(organization_id))
        except FileNotFoundError:
            return []
        return sorted(filter(None, map(_parse, names)), key=lambda a: (a.position, a.at))


class S3Anchors:
    """Heads as objects under Object Lock in the S3 export store's bucket and prefix."""

    def __init__(self, files: Any) -> None:
        self.files = files  # resources/files/s3_objects.S3Files

    def where(self) -> str:
        return f"s3://{self.files.bucket}/{self.files._prefixed(FOLDER)}"

    def put(self, head: Head) -> str:
        body = head.body()
        key = f"{_folder(head.organization_id)}/{head.name()}"
        retain = head.at.astimezone(UTC) + timedelta(days=366 * LOCK_YEARS)
        self.files._client().put_object(
            Bucket=self.files.bucket,
            Key=self.files.object_key(key),
            Body=body,
            IfNoneMatch="*",
            ObjectLockMode=LOCK_MODE,
            ObjectLockRetainUntilDate=retain,
            ContentMD5=base64.b64encode(hashlib.md5(body).digest()).decode(),
            ContentType="application/json",
        )
        return self.files.location(key)

    def heads(self, organization_id: int) -> list[Anchored]:
        prefix = self.files.object_key(_folder(organization_id)) + "/"
        found: list[Anchored] = []
        pages = self.files._client().get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.files.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                anchored = _parse(item["Key"][len(prefix) :])
                if anchored is not None:
                    found.append(anchored)
        return sorted(found, key=lambda a: (a.position, a.at))


def anchors_of(export_store: Files | None) -> LocalAnchors | S3Anchors | None:
    """Where the heads of the archive whose export store is `export_store` go (None: no store)."""
    if export_store is None:
        return None
    if isinstance(export_store, LocalFiles):
        return LocalAnchors(export_store._root())
    return S3Anchors(export_store)
