"""The at-most-once state machine every outgoing message goes through, whatever its table.

A row's life: waiting (`pending`, or no row yet) -> `sending` -> `sent` | `failed` | `unknown`.

- `claim` / `attempt`: the intent, committed before the request leaves. Both are a compare-and-set
  (an UPDATE conditioned on the current status, an INSERT that does nothing when the attempt's key
  exists), so of two senders only one moves a row to `sending`; the other gets nothing back and
  must not send.
- `finish`: the outcome, only from `sending`. A refusal for good is `failed`; a refusal for now may
  go back to waiting; a broken or ambiguous hand-over is `unknown` and is never sent again on its own.
- `refuse`: a waiting row that must not leave at all (it cannot be composed, it was withdrawn):
  `failed` with the reason, never handed over.
- `mark_unknown`: rows a run that died left `sending`.
- An explicit resend is a new attempt: `attempt` with the next key (a new row), or `claim` of a
  `failed` row when the caller asks for failed ones again.

An area plugs in with an `Outbox` naming its table and columns; the transitions take the caller's
connection, so an outcome can be committed together with the next intent or with a mapping row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, Table, and_, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.resources.messaging.mail_types import SendError

SENDING = "sending"
FAILED = "failed"


@dataclass(frozen=True)
class Outbox:
    """Where one kind of outgoing message keeps its state.

    `key`: the columns that name one attempt (unique in the table), `started_at`: stamped when a
    row becomes `sending` (how old an unfinished attempt is), `waiting`: the statuses a sender may
    claim, `failed_again_when`: a condition under which a `failed` row is claimable without being
    asked (a check of our own that may pass next time), `unknown`: the status of an unknown outcome,
    or None for a table that has none: its dead-run rows stay `sending` and are handed to the
    area to settle (QuickBooks looks them up).
    """

    table: Table
    status: str = "status"
    error: str = "error"
    started_at: str = "updated_at"
    key: tuple[str, ...] = ("id",)
    sent: str = "sent"
    unknown: str | None = "unknown"
    waiting: tuple[str, ...] = ("pending",)
    failed_again_when: Callable[[Table], ColumnElement[bool]] | None = None

    def column(self, name: str):
        return self.table.c[name]

    def claimable(self, *, retry_failed: bool = False) -> ColumnElement[bool]:
        """The rows a sender may take: waiting ones, and failed ones when asked (or when the
        table's `failed_again_when` says so)."""
        status = self.column(self.status)
        if retry_failed:
            return status.in_([*self.waiting, FAILED])
        waiting = status.in_(self.waiting)
        if self.failed_again_when is None:
            return waiting
        return or_(waiting, and_(status == FAILED, self.failed_again_when(self.table)))


def claim(
    conn: Connection,
    box: Outbox,
    where: ColumnElement[bool],
    *,
    retry_failed: bool = False,
    **values: Any,
) -> list[int]:
    """Claimable rows matching `where` -> `sending`, with `values`; the ids this sender got
    (a row another sender claimed first is not among them, and must not be sent)."""
    return list(
        conn.execute(
            update(box.table)
            .where(where, box.claimable(retry_failed=retry_failed))
            .values({box.status: SENDING, box.started_at: utcnow(), **values})
            .returning(box.column("id"))
        ).scalars()
    )


def attempt(
    conn: Connection, box: Outbox, values: dict[str, Any], *, refused: str | None = None
) -> int | None:
    """A new attempt as a new row: `sending`, or with `refused` `failed` with that reason (it is
    never handed over). The new row's id; None when an attempt with this key exists already
    (another sender made it: this one must not send)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    row = {
        **values,
        box.status: FAILED if refused is not None else SENDING,
        box.error: refused,
        box.started_at: utcnow(),
    }
    return conn.execute(
        dialect.insert(box.table)
        .values(row)
        .on_conflict_do_nothing(index_elements=list(box.key))
        .returning(box.column("id"))
    ).scalar_one_or_none()


def finish(
    conn: Connection,
    box: Outbox,
    where: ColumnElement[bool],
    status: str,
    *,
    error: str | None = None,
    **values: Any,
) -> int:
    """The outcome of rows this sender holds (`sending` -> `status`, the error column set to
    `error`); how many moved. A row no longer `sending` keeps what it has: its outcome was
    settled elsewhere (by `mark_unknown`) and must not be overwritten."""
    if status == SENDING:
        raise ValueError("an outcome is not `sending`")
    return conn.execute(
        update(box.table)
        .where(where, box.column(box.status) == SENDING)
        .values({box.status: status, box.error: error, **values})
    ).rowcount


def refuse(
    conn: Connection,
    box: Outbox,
    where: ColumnElement[bool],
    reason: str | ColumnElement,
    *,
    retry_failed: bool = False,
    **values: Any,
) -> list[Row]:
    """Claimable rows that must not leave at all -> `failed` with `reason` (a string, or an SQL
    expression per row); (id, reason) of each row refused."""
    return conn.execute(
        update(box.table)
        .where(where, box.claimable(retry_failed=retry_failed))
        .values({box.status: FAILED, box.error: reason, **values})
        .returning(box.column("id"), box.column(box.error))
    ).all()


def outcome_of(box: Outbox, exc: SendError, *, later: bool = False) -> str:
    """The status a refused or broken hand-over ends in: unknown when the connection broke while
    the message was under way, waiting again when refused for now and `later` is allowed (and
    the table has a waiting status), else failed."""
    if exc.unknown and box.unknown is not None:
        return box.unknown
    if exc.temporary and later and box.waiting and not exc.unknown:
        return box.waiting[0]
    return FAILED


def mark_unknown(
    engine: Engine,
    box: Outbox,
    organization_id: int,
    older_than: timedelta | None,
    *,
    reason: str | None,
    returning: Sequence[str] = (),
    where: ColumnElement[bool] | None = None,
) -> list[Row]:
    """Rows left `sending` longer than `older_than` (None: every one, for a caller that knows no
    other sender runs) by a run that died, among those `where` selects (the caller's own kind of
    rows in a table several senders share): `unknown` with `reason`, never sent again on their own.
    For a table without an unknown status they stay `sending` with `started_at` moved to now, which
    claims them for the caller: a second run looking at the same time finds them fresh. Returns
    (id, *returning) of each, in one transaction."""
    now = utcnow()
    conditions = [
        box.column("organization_id") == organization_id,
        box.column(box.status) == SENDING,
    ]
    if older_than is not None:
        conditions.append(box.column(box.started_at) <= now - older_than)
    if where is not None:
        conditions.append(where)
    if box.unknown is not None:
        values: dict[str, Any] = {box.status: box.unknown, box.error: reason}
    else:
        values = {box.started_at: now}
    with tenant_transaction(engine, organization_id, write=True) as conn:
        return conn.execute(
            update(box.table)
            .where(*conditions)
            .values(values)
            .returning(box.column("id"), *(box.column(name) for name in returning))
        ).all()
