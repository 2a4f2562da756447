"""Each organization's invoice mailbox, as a person configures it (`invoice-pipelines mailbox
set|show|remove`), and the list the mailbox sensor reads.

A mailbox is an IMAP account's folder. The password is never stored and never printed: the row
holds its NAME (`secret_name`, an environment variable of the code location, as the SMTP and
QuickBooks secrets are environment variables), and the reader looks it up when it logs in. Read
mail goes to a folder (`processed_folder`) or gets a keyword (`processed_flag`). Several
organizations may name the same account and folder: each message then goes to the organization
whose `address` is among its recipients (plus-addressing `invoices+<slug>@example.com`, or one
address each); a message for none of them is left where it is and named in the tick's log.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import timedelta

from sqlalchemy import Engine, delete, literal, or_, select, update

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tables import mailboxes
from invoice_pipelines.db.tenancy import (
    active_organizations_named,
    system_transaction,
    tenant_transaction,
)
from invoice_pipelines.db.types import utcnow

TLS_MODES = ("tls", "starttls", "none")
DEFAULT_PORTS = {"tls": 993, "starttls": 143, "none": 143}
_SECRET_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")
_HOST = re.compile(r"[A-Za-z0-9.-]{1,255}|\[[0-9A-Fa-f:.]+\]")
_FOLDER = re.compile(r"[^\x00-\x1f\x7f\"\\*%]{1,255}")
_FLAG = re.compile(r"\$?[A-Za-z0-9_.-]{1,63}")
_ADDRESS = re.compile(r"[^@\s<>\x00-\x1f\x7f]{1,64}@[A-Za-z0-9.-]{1,255}")


class MailboxRefused(ValueError):
    """A configuration the command refuses; the message is one sentence, nothing was stored."""


@dataclass(frozen=True)
class Mailbox:
    """One organization's mailbox, as stored (never with the password)."""

    id: int
    organization_id: int
    slug: str
    host: str
    port: int
    tls: str
    username: str
    secret_name: str
    folder: str
    processed_folder: str | None
    processed_flag: str | None
    address: str | None

    @property
    def account(self) -> tuple[str, int, str, str, str]:
        """What one connection reads: the server, the account and the folder (organizations that
        share them share the connection, routed by `address`)."""
        return (self.host.lower(), self.port, self.tls, self.username, self.folder)

    @property
    def login(self) -> tuple[str, int, str, str, str]:
        """What one login serves: the server and the account with its password's name (one
        connection reads all of the account's folders in a tick)."""
        return (self.host.lower(), self.port, self.tls, self.username, self.secret_name)

    @property
    def key(self) -> str:
        """The account's key in the sensor's cursor."""
        host, port, _, user, folder = self.account
        return f"{user}@{host}:{port}/{folder}"

    def to_json_dict(self) -> dict:
        return asdict(self)


def checked(
    *,
    host: str,
    port: int | None,
    tls: str,
    username: str,
    secret_name: str,
    folder: str,
    processed_folder: str | None,
    processed_flag: str | None,
    address: str | None,
) -> dict:
    """The row's values, or MailboxRefused with the first thing wrong."""
    if tls not in TLS_MODES:
        raise MailboxRefused(f"--tls is one of {', '.join(TLS_MODES)}, not {tls!r}")
    if not _HOST.fullmatch(host or ""):
        raise MailboxRefused(f"--host {host!r} is no host name or address")
    port = DEFAULT_PORTS[tls] if port is None else port
    if not 0 < port < 65536:
        raise MailboxRefused(f"--port {port} is no TCP port")
    if not username or len(username) > 255 or any(ord(c) < 32 for c in username):
        raise MailboxRefused("--user is empty, too long or has control characters")
    if not _SECRET_NAME.fullmatch(secret_name or ""):
        raise MailboxRefused(
            "--secret-name is no environment variable name (A-Z, 0-9, _; not repeated here in "
            "case it is the password): give the NAME of the variable that holds the password"
        )
    for name, value in (("--folder", folder), ("--processed-folder", processed_folder)):
        if value is not None and not _FOLDER.fullmatch(value):
            raise MailboxRefused(f"{name} {value!r} is no folder name")
    if (processed_folder is None) == (processed_flag is None):
        raise MailboxRefused(
            "say where read mail goes: --processed-folder NAME or --processed-flag KEYWORD (one)"
        )
    if processed_folder is not None and processed_folder == folder:
        raise MailboxRefused("--processed-folder must differ from --folder")
    if processed_flag is not None and not _FLAG.fullmatch(processed_flag):
        raise MailboxRefused(f"--processed-flag {processed_flag!r} is no IMAP keyword")
    if address is not None and not _ADDRESS.fullmatch(address):
        raise MailboxRefused(f"--address {address!r} is no e-mail address")
    return {
        "host": host,
        "port": port,
        "tls": tls,
        "username": username,
        "secret_name": secret_name,
        "folder": folder,
        "processed_folder": processed_folder,
        "processed_flag": processed_flag,
        "address": address.lower() if address else None,
    }


def set_mailbox(engine: Engine, org: Organization, values: dict) -> Mailbox:
    """Store the organization's mailbox (`checked` values), replacing the one it had."""
    with tenant_transaction(engine, org.id, write=True) as conn:
        changed = conn.execute(
            update(mailboxes)
            .where(mailboxes.c.organization_id == org.id)
            .values(**values, active=True, last_error=None, last_error_at=None)
        ).rowcount
        if not changed:
            conn.execute(mailboxes.insert().values(organization_id=org.id, **values))
    found = mailbox_of(engine, org)
    assert found is not None
    return found


def remove_mailbox(engine: Engine, org: Organization) -> bool:
    with tenant_transaction(engine, org.id, write=True) as conn:
        return bool(
            conn.execute(delete(mailboxes).where(mailboxes.c.organization_id == org.id)).rowcount
        )


def _columns(slug):
    m = mailboxes.c
    return (
        m.id, m.organization_id, slug, m.host, m.port, m.tls, m.username,
        m.secret_name, m.folder, m.processed_folder, m.processed_flag, m.address,
    )  # fmt: skip


def mailbox_of(engine: Engine, org: Organization) -> Mailbox | None:
    with tenant_transaction(engine, org.id) as conn:
        row = conn.execute(
            select(*_columns(literal(org.slug).label("slug"))).where(
                mailboxes.c.organization_id == org.id
            )
        ).first()
    return None if row is None else Mailbox(*row)


def active_mailboxes(system: Engine, only_organizations: set[str] | None = None) -> list[Mailbox]:
    """Every active organization's active mailbox, in one query (the sensor's tick)."""
    active = active_organizations_named()
    with system_transaction(system) as conn:
        rows = conn.execute(
            select(*_columns(active.c.slug))
            .select_from(mailboxes.join(active, active.c.id == mailboxes.c.organization_id))
            .where(mailboxes.c.active.is_(True))
            .order_by(mailboxes.c.id)
        ).all()
    return [
        Mailbox(*row)
        for row in rows
        if only_organizations is None or row.slug in only_organizations
    ]


# a mailbox read within this long is not written again: 10,000 mailboxes read every few seconds
# would otherwise rewrite 10,000 rows each tick
READ_MARK_SECONDS = 60


def record_reads(system: Engine, read: list[int], failed: dict[int, str]) -> None:
    """What a tick saw of each mailbox: read now (`last_read_at`, at most once a minute), or the
    sentence why not (`last_error`)."""
    now = utcnow()
    m = mailboxes.c
    with system_transaction(system, write=True) as conn:
        for start in range(0, len(read), 1000):
            conn.execute(
                update(mailboxes)
                .where(
                    m.id.in_(read[start : start + 1000]),
                    or_(
                        m.last_read_at.is_(None),
                        m.last_read_at < now - timedelta(seconds=READ_MARK_SECONDS),
                        m.last_error.is_not(None),
                    ),
                )
                .values(last_read_at=now, last_error=None, last_error_at=None)
            )
        for mailbox_id, error in failed.items():
            conn.execute(
                update(mailboxes)
                .where(mailboxes.c.id == mailbox_id)
                .values(last_error=error[:2000], last_error_at=now)
            )
