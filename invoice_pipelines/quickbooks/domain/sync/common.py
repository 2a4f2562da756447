"""What every sync shares: opening a client for an organization, mappings, cursors, conflicts."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import ColumnElement, Connection, Engine, Row, Table, and_, insert, select, update

from invoice_pipelines.db import locks
from invoice_pipelines.db.locks import Lease, LeaseName, LockBusy
from invoice_pipelines.db.tables import qbo_cursors, qbo_mappings, sync_conflicts
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.outbox import Outbox, finish, mark_unknown
from invoice_pipelines.quickbooks.domain.client import (
    MAX_PAGE,
    QboClient,
    batch_fault,
    parse_qbo_time,
    request_id,
)
from invoice_pipelines.quickbooks.domain.errors import DuplicateName, QboError
from invoice_pipelines.quickbooks.domain.limits import Clock
from invoice_pipelines.quickbooks.domain.realm_meter import SharedRealmLimiter
from invoice_pipelines.quickbooks.domain.tokens import TokenStore, load_connection, token_cipher
from invoice_pipelines.settings import NOW, Reading, data_dir, source

# re-read this much before the cursor: QBO's LastUpdatedTime has second precision and a record
# committed in the same second as the last one we saw must not be skipped
CURSOR_OVERLAP = timedelta(minutes=5)


# The local QuickBooks of `make run` (the demo's simulator) writes this file into the data dir
# when it starts: its URLs and the name of the file (beside it) holding the key the demo's tokens
# are encrypted with. A command run from a shell beside the demo reads it for each of
# INVOICE_PIPELINES_QBO_BASE_URL / _TOKEN_URL / _TOKEN_KEY that is not set, so `qbo-sync` works
# against the running demo without variables; a variable that is set always wins.
LOCAL_QBO_FILE = Path("qbo") / "local-quickbooks.json"
_FROM_LOCAL = {
    "base_url": "INVOICE_PIPELINES_QBO_BASE_URL",
    "token_url": "INVOICE_PIPELINES_QBO_TOKEN_URL",
    "token_key": "INVOICE_PIPELINES_QBO_TOKEN_KEY",
}


def local_qbo(folder: Path | None = None) -> dict[str, str]:
    """What the local QuickBooks of `make run` wrote into the data dir `folder` (base_url,
    token_url, token_key), or {}."""
    path = (folder or data_dir()) / LOCAL_QBO_FILE
    try:
        written = json.loads(path.read_text())
        key = (path.parent / written["token_key_file"]).read_text().strip()
        return {
            "base_url": written["base_url"],
            "token_url": written["token_url"],
            "token_key": key,
        }
    except (OSError, ValueError, KeyError, TypeError):
        return {}  # no demo here (or not started yet): the variables and their defaults


# a push run is bounded (issue 56), so that hours of an organization's push at QBO's 500 requests
# a minute are runs of minutes with room between them for a schedule's or a person's run of the
# same company; the push sensor asks for the next run
PUSH_PER_RUN = 3000  # sales invoices one qbo_invoices run pushes at most (about 6 minutes)
PUSH_MINUTES = 10.0  # after which a qbo_invoices run starts no further batch (it always does one)


@dataclass
class QboSettings:
    """Where QBO is and how to talk to it (from INVOICE_PIPELINES_QBO_* unless given), and what
    bounds one run of the invoice push: what a run gets as its `quickbooks` resource (the
    Dagster resource `quickbooks/resources.py` `QuickBooks`, derived from these fields,
    configures it) and a command alike."""

    base_url: str = field(
        default="https://quickbooks.api.intuit.com",
        metadata={
            "description": "QBO API root (INVOICE_PIPELINES_QBO_BASE_URL): production, "
            "https://sandbox-quickbooks.api.intuit.com, or the local simulator."
        },
    )
    token_url: str = field(
        default="https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
        metadata={"description": "OAuth 2.0 token endpoint (INVOICE_PIPELINES_QBO_TOKEN_URL)."},
    )
    token_key: str = field(
        default="",
        repr=False,
        metadata={
            "description": "Fernet key of the tokens at rest (INVOICE_PIPELINES_QBO_TOKEN_KEY, "
            "an EnvVar)."
        },
    )
    minor_version: int = field(
        default=75,
        metadata={"description": "minorversion sent on every call (at least 75).", "ge": 75},
    )
    time_scale: float = field(
        default=1.0,
        metadata={
            "description": "Simulated seconds per real second; 1 except against a sped-up "
            "simulator.",
            "gt": 0,
        },
    )
    # a push run is bounded (issue 56)
    push_per_run: int = field(
        default=PUSH_PER_RUN,
        metadata={
            "description": "Sales invoices one qbo_invoices run pushes at most (about 6 minutes "
            "at QBO's 500 requests a minute); the push sensor starts the next run for the rest.",
            "ge": 1,
        },
    )
    push_minutes: float = field(
        default=PUSH_MINUTES,
        metadata={
            "description": "Minutes after which a qbo_invoices run starts no further batch (it "
            "always pushes one); the rest waits for the next run.",
            "gt": 0,
        },
    )

    def push_bounds(self) -> dict:
        """What bounds one run of the invoice push (sync/invoices.py `push_invoices`)."""
        return {"limit": self.push_per_run, "minutes": self.push_minutes}

    def client(self, engine: Engine, organization_id: int) -> QboClient:
        """A client of the organization's connected company (close it when done)."""
        return open_client(engine, organization_id, self)


def qbo_settings(read: Reading = NOW) -> QboSettings:
    """Where QBO is, from INVOICE_PIPELINES_QBO_*: the one builder of the `quickbooks` resource
    (quickbooks/area.py). A command gets it, the local QuickBooks of `make run` (LOCAL_QBO_FILE)
    standing in for those of the variables that are not set; a run's resource wraps it
    (`quickbooks.resources.QuickBooks.of`), the variables alone, the key an EnvVar."""
    unset = {f for f, name in _FROM_LOCAL.items() if os.environ.get(source(name)) is None}
    local = local_qbo() if unset and not read.for_runs else {}
    values = {
        f: local[f] if f in unset and f in local else read.value(name)
        for f, name in _FROM_LOCAL.items()
    }
    if "token_key" not in unset or "token_key" not in local:
        values["token_key"] = read.secret(_FROM_LOCAL["token_key"])
    return QboSettings(
        **values,
        minor_version=int(read.value("INVOICE_PIPELINES_QBO_MINOR_VERSION")),
    )


def open_client(engine: Engine, organization_id: int, settings: QboSettings) -> QboClient:
    """A client for the organization's connected company, its requests counted with every other
    process's that talks to the realm (`realm_meter`); close it when done."""
    # a connected organization's tokens: the key is missing, never to be made anew
    cipher = token_cipher(settings.token_key)
    connection = load_connection(engine, organization_id, cipher)
    http = httpx.Client(timeout=60.0, limits=httpx.Limits(max_connections=12))
    tokens = TokenStore(
        engine, organization_id, cipher=cipher, token_url=settings.token_url, http=http
    )
    clock = Clock(settings.time_scale)
    client = QboClient(
        base_url=settings.base_url,
        realm_id=connection.realm_id,
        tokens=tokens,
        minor_version=settings.minor_version,
        clock=clock,
        # every process that talks to the realm counts its requests in the database, so
        # together they keep QBO's limits, the whole 500 a minute (issue 59)
        limiter=SharedRealmLimiter(engine, organization_id, connection.realm_id, clock),
        http=http,
    )
    client._own_http = True  # the client closes the pool it was given here
    client.connection_settings = connection.settings
    return client


def fingerprint(values: dict) -> str:
    """A stable hash of the fields we sync: our side changed when it differs from the baseline."""
    text = json.dumps(values, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class SyncCounts:
    pushed: int = 0
    pulled: int = 0
    linked: int = 0
    conflicts: int = 0
    held: int = 0
    failed: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)
    # what a payment pull changed, one row an invoice (bill_payments.paid_row), for the metadata
    paid: list[dict] = field(default_factory=list)
    # what the sync did to another entity on its way (the bill push creates vendors), by that
    # entity's sync name: counted there, never in this sync's own figures, which count its objects
    beside: dict[str, SyncCounts] = field(default_factory=dict)
    # figures a sync counts besides these, by name, each its own (the invoice push's voids, credit
    # memos and discounts, which are not invoices pushed: syncs.EXTRA_COUNTS); none for the others
    extra: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        common = {
            k: v for k, v in self.__dict__.items() if k not in ("errors", "paid", "beside", "extra")
        }
        return {**common, **self.extra}

    def of(self, sync: str) -> SyncCounts:
        """The counts of what this sync does to `sync`'s entity on its way."""
        return self.beside.setdefault(sync, SyncCounts())


def mappings_by_qbo_id(conn: Connection, organization_id: int, entity: str) -> dict[str, dict]:
    return _mappings_by(conn, organization_id, entity, "qbo_id")


def mappings_by_local_id(conn: Connection, organization_id: int, entity: str) -> dict[int, dict]:
    return _mappings_by(conn, organization_id, entity, "local_id")


def _mappings_by(conn: Connection, organization_id: int, entity: str, key: str) -> dict:
    rows = conn.execute(
        select(qbo_mappings).where(
            qbo_mappings.c.organization_id == organization_id, qbo_mappings.c.entity == entity
        )
    ).mappings()
    return {row[key]: dict(row) for row in rows}


def save_mapping(
    conn: Connection,
    organization_id: int,
    entity: str,
    local_id: int,
    record: dict,
    *,
    local_fingerprint: str | None = None,
    details: dict | None = None,
) -> None:
    """Insert or move the baseline of one mapping to what QBO just returned."""
    values = _baseline(record)
    if local_fingerprint is not None:
        values["local_fingerprint"] = local_fingerprint
    if details is not None:
        values["details"] = details
    where = and_(
        qbo_mappings.c.organization_id == organization_id,
        qbo_mappings.c.entity == entity,
        qbo_mappings.c.local_id == local_id,
    )
    if conn.execute(select(qbo_mappings.c.id).where(where)).first():
        conn.execute(update(qbo_mappings).where(where).values(**values))
    else:
        conn.execute(
            insert(qbo_mappings).values(
                organization_id=organization_id, entity=entity, local_id=local_id, **values
            )
        )


def save_mappings(
    conn: Connection, organization_id: int, entity: str, linked: list[tuple[int, dict, dict]]
) -> None:
    """`save_mapping` for many (local id, QBO record, details) at once: one SELECT of the
    mappings that exist, one INSERT of the new ones (a batch's invoices: three statements instead
    of two per invoice); an existing one is moved as `save_mapping` moves it."""
    if not linked:
        return
    local_ids = [local_id for local_id, _, _ in linked]
    existing = set(
        conn.execute(
            select(qbo_mappings.c.local_id).where(
                qbo_mappings.c.organization_id == organization_id,
                qbo_mappings.c.entity == entity,
                qbo_mappings.c.local_id.in_(local_ids),
            )
        ).scalars()
    )
    rows = []
    for local_id, record, details in linked:
        if local_id in existing:
            save_mapping(conn, organization_id, entity, local_id, record, details=details)
        else:
            rows.append(
                dict(
                    organization_id=organization_id,
                    entity=entity,
                    local_id=local_id,
                    details=details,
                    **_baseline(record),
                )
            )
    if rows:
        conn.execute(insert(qbo_mappings), rows)


def _baseline(record: dict) -> dict:
    return dict(
        qbo_id=str(record["Id"]),
        sync_token=str(record.get("SyncToken", "")),
        qbo_updated_at=parse_qbo_time((record.get("MetaData") or {}).get("LastUpdatedTime")),
        qbo_state="active" if record.get("Active", True) else "inactive",
    )


def read_cursor(engine: Engine, organization_id: int, entity: str) -> dict:
    with tenant_transaction(engine, organization_id) as conn:
        row = (
            conn.execute(
                select(qbo_cursors).where(
                    qbo_cursors.c.organization_id == organization_id,
                    qbo_cursors.c.entity == entity,
                )
            )
            .mappings()
            .first()
        )
    return dict(row) if row else {"cursor": None, "imported": 0, "import_done": False}


def write_cursor(conn: Connection, organization_id: int, entity: str, **values) -> None:
    where = and_(qbo_cursors.c.organization_id == organization_id, qbo_cursors.c.entity == entity)
    if conn.execute(select(qbo_cursors.c.entity).where(where)).first():
        conn.execute(update(qbo_cursors).where(where).values(**values))
    else:
        conn.execute(
            insert(qbo_cursors).values(organization_id=organization_id, entity=entity, **values)
        )


def newest(records: list[dict], current: datetime | None) -> datetime | None:
    """The cursor after `records`: QBO's largest LastUpdatedTime, never our clock."""

    best = current
    for record in records:
        moment = parse_qbo_time((record.get("MetaData") or {}).get("LastUpdatedTime"))
        if moment and (best is None or moment > best):
            best = moment
    return best


def record_conflict(
    conn: Connection,
    organization_id: int,
    entity: str,
    *,
    local_id: int | None,
    qbo_id: str | None,
    reason: str,
    decision: str,
    local_version: dict | None = None,
    qbo_version: dict | None = None,
) -> int:
    status = "open" if decision == "manual_review" else "resolved"
    return conn.execute(
        insert(sync_conflicts)
        .values(
            organization_id=organization_id,
            entity=entity,
            local_id=local_id,
            qbo_id=qbo_id,
            reason=reason,
            decision=decision,
            status=status,
            local_version=_plain(local_version),
            qbo_version=_plain(qbo_version),
            resolved_by="sync" if status == "resolved" else None,
            resolved_at=datetime.now(UTC) if status == "resolved" else None,
        )
        .returning(sync_conflicts.c.id)
    ).scalar_one()


def hold_for_review(
    conn: Connection,
    organization_id: int,
    box: Outbox,
    where: ColumnElement[bool],
    entity: str,
    *,
    local_id: int | None,
    qbo_id: str | None,
    reason: str,
    local_version: dict,
    qbo_version: dict | None,
    error: str | None = None,
    error_code: str,
) -> None:
    """A conflict for a person (`reason`, our version and QBO's) and the outbox row of `box` it
    is about (`where`) `conflict`, with `error` (the reason unless given) and `error_code`."""
    record_conflict(
        conn,
        organization_id,
        entity,
        local_id=local_id,
        qbo_id=qbo_id,
        reason=reason,
        decision="manual_review",
        local_version=local_version,
        qbo_version=qbo_version,
    )
    finish(
        conn,
        box,
        where,
        "conflict",
        error=reason if error is None else error,
        error_code=error_code,
    )


def held_local_ids(conn: Connection, organization_id: int, entity: str) -> set[int]:
    """Records with an open manual-review conflict: no sync touches them until it is resolved."""
    return _held_ids(conn, organization_id, entity, sync_conflicts.c.local_id)


def held_qbo_ids(conn: Connection, organization_id: int, entity: str) -> set[str]:
    return _held_ids(conn, organization_id, entity, sync_conflicts.c.qbo_id)


def _held_ids(conn: Connection, organization_id: int, entity: str, column) -> set:
    rows = conn.execute(
        select(column).where(
            sync_conflicts.c.organization_id == organization_id,
            sync_conflicts.c.entity == entity,
            sync_conflicts.c.status == "open",
            column.is_not(None),
        )
    )
    return {r[0] for r in rows}


def _plain(value):
    """JSON-safe copy (Decimal and dates as strings) for the conflict log."""
    if value is None:
        return None
    return json.loads(json.dumps(value, default=str))


def storable(value):
    """QBO's record without NUL characters in any text: PostgreSQL cannot store them (in a column
    or in JSON), and one such record would fail the transaction of its whole page. Everything
    else is kept as QBO has it."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


def import_pages(sync, entity: str, qbo_entity: str, page_size: int, progress=None) -> None:
    """The initial import of one entity for `sync` (a `TwoWaySync`): every record,
    inactive ones included, ordered by Id; each page is applied and committed together with the
    number of records read, so a new run resumes after the last committed page."""
    state = read_cursor(sync.engine, sync.organization_id, entity)
    if state["import_done"]:
        return
    start = int(state["imported"]) + 1
    started_at = state["cursor"]
    for position, page in sync.client.query_pages(
        qbo_entity, order_by="Id", page_size=page_size, start=start
    ):
        if started_at is None:
            # changes made in QBO while the import runs are read again by the first pull
            started_at = sync.client.server_now() - CURSOR_OVERLAP
        with tenant_transaction(sync.engine, sync.organization_id, write=True) as conn:
            pushes = sync._apply_records(conn, storable(sync.not_seen(page)))
            write_cursor(
                conn,
                sync.organization_id,
                entity,
                imported=position - 1 + len(page),
                cursor=started_at,
            )
        for row, record in pushes:
            sync._push_update(row, str(record["SyncToken"]))
        if progress:
            progress(position - 1 + len(page))
    with tenant_transaction(sync.engine, sync.organization_id, write=True) as conn:
        write_cursor(
            conn,
            sync.organization_id,
            entity,
            import_done=True,
            cursor=started_at or sync.client.server_now() - CURSOR_OVERLAP,
        )


LEASE = timedelta(minutes=60)
# a run renews its lease this often while it works, so a long run never loses it to a second one
LEASE_RENEW_EVERY = timedelta(minutes=5)


class RealmBusy(LockBusy):
    """Another run is syncing this organization's QuickBooks company."""


def held_lease(organization_id: int) -> Lease | None:
    """The sync lease of `organization_id` this run holds, if it holds one: the invoice push trusts
    rows left `sending` to be a dead run's only then."""
    return locks.held_lease(LeaseName.QBO_SYNC, organization_id)


def mark_dead_sending(
    engine: Engine,
    box: Outbox,
    organization_id: int,
    lease: Lease | None,
    stale_after: timedelta,
    *,
    returning: Sequence[str] = (),
    where: ColumnElement[bool] | None = None,
) -> list[Row]:
    """Rows of `box` a dead run left `sending`, marked `unknown` (outbox.mark_unknown, which
    claims them; `returning` and `where` are its own): under the organization's lease this run
    holds (`lease`) no other run can be sending, so every such row; without it only those older
    than `stale_after`."""
    older_than = None if lease is not None else stale_after
    return mark_unknown(
        engine, box, organization_id, older_than, reason=None, returning=returning, where=where
    )


def realm_lease(
    engine: Engine,
    organization_id: int,
    owner: str,
    *,
    wait: timedelta = timedelta(minutes=15),
    poll_seconds: float = 5.0,
    period: timedelta = LEASE,
    renew_every: timedelta = LEASE_RENEW_EVERY,
    clock: Callable[[], datetime] = locks.utc_now,
) -> AbstractContextManager[Lease]:
    """Hold the organization's sync lease while the block runs: two runs (on any machines) never
    talk to one realm at once; the second waits up to `wait`, then RealmBusy. The lease is renewed
    every `renew_every` while the block runs, so a run longer than `period` keeps it; a run that
    dies keeps it until it runs out (`period`, 60 minutes)."""
    return locks.lease(
        engine,
        LeaseName.QBO_SYNC,
        organization_id,
        owner,
        ttl=period,
        renew_every=renew_every,
        wait=wait,
        poll_seconds=poll_seconds,
        busy=RealmBusy,
        message="another run is syncing this organization with QuickBooks",
        clock=clock,
    )


def create_batch(
    sync, entity: str, qbo_entity: str, rows: list[dict], body, fps: dict, details_of=None
) -> list:
    """Create `rows` in QBO in one batch (<= 30) for `sync` (a CustomerSync or ItemSync): the
    created are mapped with their baseline (`fps`: our fingerprints; `details_of(record)` what
    the mapping keeps of QBO's answer beside it), a refused one is counted failed with QBO's
    reason, and the rows whose name QBO already has (6240) are returned."""

    operations = [{"bId": str(r["id"]), "operation": "create", qbo_entity: body(r)} for r in rows]
    batch_id = request_id(entity, sync.organization_id, *(f"{i}:{fps[i]}" for i in fps))
    try:
        answers = sync.client.batch(operations, requestid=batch_id)
    except QboError as exc:
        sync.counts.failed += len(rows)
        sync.counts.errors.append(f"batch of {len(rows)} {entity}s: {exc}")
        return []
    duplicates = []
    with tenant_transaction(sync.engine, sync.organization_id, write=True) as conn:
        for row in rows:
            answer = answers.get(str(row["id"]), {})
            fault = batch_fault(answer) if answer else QboError(f"no answer for this {entity}")
            if fault is None and qbo_entity in answer:
                save_mapping(
                    conn,
                    sync.organization_id,
                    entity,
                    row["id"],
                    answer[qbo_entity],
                    local_fingerprint=fps[row["id"]],
                    details=details_of(answer[qbo_entity]) if details_of else None,
                )
                sync.counts.pushed += 1
            elif isinstance(fault, DuplicateName):
                duplicates.append(row)
            else:
                sync._failed(row, str(fault))
    return duplicates


def clear_pull_request(conn: Connection, organization_id: int, entity: str, started: datetime):
    """A pull that started after a webhook's request has served it."""
    conn.execute(
        update(qbo_cursors)
        .where(
            qbo_cursors.c.organization_id == organization_id,
            qbo_cursors.c.entity == entity,
            qbo_cursors.c.pull_requested_at <= started,
        )
        .values(pull_requested_at=None)
    )


class TwoWaySync:
    """What the two-way syncs (`CustomerSync`, `ItemSync`) share: the initial import, the pull of
    QBO's changes since the cursor, and a run (pull, then push).

    A subclass names its entity (`ENTITY` ours, `QBO_ENTITY` QBO's) and brings `_apply_records`
    (QBO's records onto ours in one transaction; it returns the (row, record) pairs whose newer
    local version must be pushed with `_push_update`), `_failed` and `push`; one that reads our
    records with `_local_rows` names their table (`TABLE`: customers, items).
    """

    ENTITY: str
    QBO_ENTITY: str
    TABLE: Table

    def __init__(self, engine: Engine, organization_id: int, client: QboClient, progress=None):
        self.engine = engine
        self.organization_id = organization_id
        self.client = client
        self.counts = SyncCounts()
        self.progress = progress  # called with the records read so far by the initial import
        self._seen: dict[str, str] = {}  # QBO id -> SyncToken this run applied (`not_seen`)

    def _local_rows(self, conn) -> dict[int, dict]:
        """The organization's records of `TABLE` by id."""
        table = self.TABLE
        return {
            row["id"]: dict(row)
            for row in conn.execute(
                select(table).where(table.c.organization_id == self.organization_id)
            ).mappings()
        }

    def not_seen(self, records: list[dict]) -> list[dict]:
        """The records this run has not applied at their SyncToken yet. The first pull after
        the initial import reads QBO's changes since the import's start, which are the records
        the import has just read: applied (and counted) once, a count counts objects."""
        fresh = []
        for record in records:
            key, token = str(record.get("Id")), str(record.get("SyncToken"))
            if self._seen.get(key) != token:
                self._seen[key] = token
                fresh.append(record)
        return fresh

    def _record_conflict(
        self, conn, row: dict, qbo: dict | None, *, decision: str, reason: str, local_version: dict
    ) -> None:
        """`record_conflict` of one of our records (`row`) and QBO's (`qbo`, None where QBO has
        none to name): the sync's `decision`, or a person's to take (manual_review)."""
        record_conflict(
            conn,
            self.organization_id,
            self.ENTITY,
            local_id=row["id"],
            qbo_id=str(qbo["Id"]) if qbo else None,
            reason=reason,
            decision=decision,
            local_version=local_version,
            qbo_version=qbo,
        )

    def pull(self) -> None:
        started = datetime.now(UTC)
        state = read_cursor(self.engine, self.organization_id, self.ENTITY)
        if not state["import_done"]:
            self.initial_import(progress=self.progress)
            state = read_cursor(self.engine, self.organization_id, self.ENTITY)
        cursor = state["cursor"]
        changes = self.client.changes(self.QBO_ENTITY, cursor - CURSOR_OVERLAP if cursor else None)
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            pushes = self._apply_records(conn, storable(self.not_seen(changes.records)))
            write_cursor(
                conn, self.organization_id, self.ENTITY, cursor=newest(changes.records, cursor)
            )
            clear_pull_request(conn, self.organization_id, self.ENTITY, started)
        for row, record in pushes:
            self._push_update(row, str(record["SyncToken"]))

    def initial_import(self, page_size: int = MAX_PAGE, progress=None) -> None:
        """Every QBO record of the entity, page by page; each page commits with the count read so
        far, so an interrupted import goes on after the last committed page. Changes made in QBO
        while it runs are caught by the next pull (the cursor is the import's start)."""
        import_pages(self, self.ENTITY, self.QBO_ENTITY, page_size, progress)

    def run(self) -> SyncCounts:
        self.pull()
        self.push()
        return self.counts
