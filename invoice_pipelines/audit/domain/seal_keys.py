"""The keys the audit chain is sealed with: a keyring of the system side, never the database's.

A seal's chain hash is an HMAC-SHA256 under a secret the runtime login cannot read from the
database it writes, so a run that rewrites a row cannot recompute the seals after it (an unkeyed
SHA-256 chain it could, issue 83). Each seal records the id of its key; a rotation is a new key
with a new id, and the older keys stay in the keyring to verify the seals they made.

Where the keys come from: INVOICE_PIPELINES_AUDIT_SEAL_KEY with INVOICE_PIPELINES_AUDIT_SEAL_KEY_ID
(the current key) and INVOICE_PIPELINES_AUDIT_SEAL_OLD_KEYS (`id=hex,...`, the earlier ones).
Without them (`make run`, the tests) a key is generated once into `<DATA_DIR>/audit/seal-keys`,
a file only its owner may read, one `id hex` line per key, the last the current one. That is right
for one machine; on PostgreSQL, where several machines may run the checks and commands over the
same database (docs/postgresql-and-scale-out.md), each would generate its own key and name the
others' seals as made under a key it does not hold. So on PostgreSQL the local key is refused in
one sentence unless INVOICE_PIPELINES_AUDIT_SEAL_LOCAL_KEY=true says one machine is all there is
(`make run`, the test suite, a scratch benchmark set it for themselves). A secret never appears in
a repr, a log line or an error message.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from invoice_pipelines.settings import ConfigError, data_dir, env

KEY_VAR = "INVOICE_PIPELINES_AUDIT_SEAL_KEY"
KEY_ID_VAR = "INVOICE_PIPELINES_AUDIT_SEAL_KEY_ID"
OLD_KEYS_VAR = "INVOICE_PIPELINES_AUDIT_SEAL_OLD_KEYS"
LOCAL_KEY_VAR = "INVOICE_PIPELINES_AUDIT_SEAL_LOCAL_KEY"
LOCAL_KEYS = Path("audit") / "seal-keys"
MIN_BYTES = 32
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,40}")


@dataclass(frozen=True)
class Keyring:
    """The current key (sealing) and every key by id (verifying)."""

    current_id: str
    keys: dict[str, bytes] = field(repr=False)

    @property
    def current(self) -> bytes:
        return self.keys[self.current_id]

    def __repr__(self) -> str:
        return f"Keyring(current_id={self.current_id!r}, ids={sorted(self.keys)!r})"


def _secret(raw: str, where: str) -> bytes:
    try:
        value = bytes.fromhex(raw.strip())
    except ValueError:
        raise ConfigError(f"{where} is not hexadecimal") from None
    if len(value) < MIN_BYTES:
        raise ConfigError(f"{where} is shorter than {MIN_BYTES} bytes ({2 * MIN_BYTES} hex digits)")
    return value


def _key_id(raw: str, where: str) -> str:
    if not _KEY_ID.fullmatch(raw):
        raise ConfigError(f"{where} must be 1-40 letters, digits, '.', '_' or '-'")
    return raw


def keyring_from(key: str, key_id: str, old_keys: str = "") -> Keyring:
    """The keyring the three settings give; each mistake in one sentence naming its variable."""
    if not key_id:
        raise ConfigError(f"{KEY_VAR} is set but {KEY_ID_VAR} is empty: name the key")
    current = _key_id(key_id.strip(), KEY_ID_VAR)
    keys = {current: _secret(key, KEY_VAR)}
    for pair in filter(None, (p.strip() for p in old_keys.split(","))):
        old_id, sep, old_key = pair.partition("=")
        if not sep:
            raise ConfigError(f"{OLD_KEYS_VAR}: {old_id[:40]!r} is no id=hex pair")
        old_id = _key_id(old_id.strip(), f"{OLD_KEYS_VAR} (key id {old_id.strip()[:40]!r})")
        if old_id in keys:
            raise ConfigError(f"{OLD_KEYS_VAR}: the key id {old_id!r} is given twice")
        keys[old_id] = _secret(old_key, f"{OLD_KEYS_VAR} (key {old_id!r})")
    return Keyring(current, keys)


def local_keyring(folder: Path | None = None, *, rotate: bool = False) -> Keyring:
    """The keyring of the local state folder (`folder`, default the data folder): generated once,
    owner-only; `rotate` appends a new key that becomes the current one (the old ones stay)."""
    path = (folder or data_dir()) / LOCAL_KEYS
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lines = _read_local(path)
        if not lines or rotate:
            # an id of its own: a key made on another machine is named as not held, not as a
            # broken chain
            lines.append((f"local-{secrets.token_hex(4)}", secrets.token_hex(MIN_BYTES)))
            _write_local(path, lines)
    except OSError as exc:
        raise ConfigError(
            f"the audit seal key cannot be kept in {path} ({exc.strerror or exc}): set {KEY_VAR} "
            f"and {KEY_ID_VAR}"
        ) from None
    keys = {key_id: _secret(raw, f"{path} (key {key_id!r})") for key_id, raw in lines}
    return Keyring(lines[-1][0], keys)


def _read_local(path: Path) -> list[tuple[str, str]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    lines = []
    for line in text.splitlines():
        key_id, _, raw = line.strip().partition(" ")
        if key_id:
            lines.append((_key_id(key_id, str(path)), raw))
    return lines


def _write_local(path: Path, lines: list[tuple[str, str]]) -> None:
    """Replace the file whole, created owner-only before a byte of a key is in it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write("".join(f"{key_id} {raw}\n" for key_id, raw in lines))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def seal_keyring(dialect: str) -> Keyring:
    """The keyring the settings name, else the local one (read when a check or command runs).
    `dialect`: the application database's (`engine.dialect.name`); on PostgreSQL the local key
    only where LOCAL_KEY_VAR allows it."""
    key = env(KEY_VAR).strip()
    if key:
        return keyring_from(key, env(KEY_ID_VAR).strip(), env(OLD_KEYS_VAR))
    if dialect == "postgresql" and not _local_key_allowed():
        raise ConfigError(
            f"{KEY_VAR} is not set: on PostgreSQL several machines may seal the audit chain, and a "
            "key generated into one machine's data folder names every other machine's seals as "
            f"made under a key it does not hold; set {KEY_VAR} and {KEY_ID_VAR} (the same on every "
            f"machine), or {LOCAL_KEY_VAR}=true where one machine is all there is"
        )
    return local_keyring()


def _local_key_allowed() -> bool:
    value = env(LOCAL_KEY_VAR).strip().lower()
    if value not in ("true", "false", ""):
        raise ConfigError(f"{LOCAL_KEY_VAR} is true or false, not {value!r}")
    return value == "true"
