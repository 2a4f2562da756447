"""Tenant scope: every unit of work names the organization it works for.

On PostgreSQL the organization goes into a transaction-local setting that the row-level security
policies read (see `db/rls.py`); on SQLite (one local user) it is a no-op and queries filter by
`organization_id` themselves, as they should on both engines. The work over every organization
runs on PostgreSQL as the system login, a login of its own (INVOICE_PIPELINES_SYSTEM_DB_URL):
`system_transaction` takes that work's engine, the system engine, as `tenant_transaction` takes the
runtime engine; the entry points get both from what made them (the `database` and
`system_database` resources, a command's `args.resources`) and hand them down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from copy import deepcopy
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, Subquery, func, or_, select, text, update
from sqlalchemy.engine import Connection

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.rls import ORG_SETTING, SYSTEM_SETTING, system_role
from invoice_pipelines.db.tables import organizations


class UnknownOrganization(LookupError):
    """No organization with that id or slug."""

    def __init__(self, key: str | int) -> None:
        super().__init__(f"no organization {key!r}")
        self.key = key


def scope_to_organization(conn: Connection, organization_id: int) -> None:
    """Make the current transaction see only `organization_id` (PostgreSQL RLS): both settings
    in one statement, one round trip per transaction (a message's commit of the deliveries is
    three statements and the commit, issue 59)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT set_config(:org, :value, true), set_config(:system, 'off', true)"),
            {"org": ORG_SETTING, "value": str(int(organization_id)), "system": SYSTEM_SETTING},
        )


def scope_to_system(conn: Connection) -> None:
    """Make the current transaction see every organization (PostgreSQL RLS).

    The policies honour the system setting only for the system role (`db/rls.py`), so the
    transaction first switches to it (`SET LOCAL ROLE`, in the same statement). A connection of the
    system login already is the system role; one of the owner (migrations, tests) or of a runtime
    login in single-login mode is the application role again at the transaction's end. Since
    migration 0035 a runtime login may not switch to it (docs/postgresql-and-scale-out.md).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT set_config('role', :role, true), set_config(:name, 'on', true)"),
            {"role": system_role(app_role()), "name": SYSTEM_SETTING},
        )


@contextmanager
def tenant_transaction(
    engine: Engine, organization: Organization | int, *, write: bool = False, snapshot: bool = False
) -> Iterator[Connection]:
    """A transaction that sees only one organization's rows: of the value, or of the id a row
    names (a queued job's, an item's organization_id).

    `write=True` takes SQLite's write lock at BEGIN, so concurrent writers wait instead of failing.
    `snapshot=True` runs it REPEATABLE READ on PostgreSQL: every statement sees the database as of
    the first one, and writing a row someone changed since then fails (SQLSTATE 40001) instead of
    mixing two states. (SQLite's write lock already gives a writer one unchanging view.)
    """
    with engine.connect() as conn:
        if write and conn.dialect.name == "sqlite":
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        if snapshot and conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            scope_to_organization(
                conn, organization.id if isinstance(organization, Organization) else organization
            )
            yield conn


@contextmanager
def system_transaction(system: Engine, *, write: bool = False) -> Iterator[Connection]:
    """A transaction that sees every organization: for sensors and maintenance that span tenants.

    Use it only where the work is about all tenants (listing organizations, finding pending jobs);
    tenant work belongs in `tenant_transaction`. `system` is the system engine
    (`db/engine.make_system_engine`: on PostgreSQL with a system login, that login's; on SQLite or
    in single-login mode one of the runtime login), or the owner's (migrations, tests). It runs
    on the engine it is given: handed the runtime engine where a system login is configured, it
    fails, since the runtime login may not switch to the system role (migration 0035).
    """
    with system.connect() as conn:
        if write and conn.dialect.name == "sqlite":
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            scope_to_system(conn)
            yield conn


def find_organization(system: Engine, key: str | int) -> Organization:
    """The organization of an id or slug (a partition key, a command's `--org`, a queued job's
    organization id): the one lookup, for entry points only (test_organization_lookups.py); what
    they call takes the value. `system`: the system engine (any organization's row)."""
    with system_transaction(system) as conn:
        query = select(organizations)
        # only ASCII digits are an id: "２" (a full-width two) is no organization's id
        if isinstance(key, int) or (isinstance(key, str) and key.isascii() and key.isdigit()):
            query = query.where(organizations.c.id == int(key))
        else:
            query = query.where(organizations.c.slug == key)
        row = conn.execute(query).mappings().first()
    if row is None:
        raise UnknownOrganization(key)
    return Organization.from_row(row)


def find_organizations(
    system: Engine, keys: Iterable[object] | None
) -> tuple[list[Organization], list[str]]:
    """The organizations of many slugs or ids in one query (a run or command over the
    organizations it names), by id, and the keys that are none, in the order given; `None`: every
    organization, deactivated ones included. The lookup of `find_organization`, for many."""
    query = select(organizations).order_by(organizations.c.id)
    names = None if keys is None else [str(k).strip() for k in keys if str(k).strip()]
    if names is not None:
        ids = [int(n) for n in names if n.isascii() and n.isdigit()]
        query = query.where(or_(organizations.c.slug.in_(names), organizations.c.id.in_(ids)))
    with system_transaction(system) as conn:
        found = [Organization.from_row(row) for row in conn.execute(query).mappings()]
    known = {o.slug for o in found} | {str(o.id) for o in found}
    return found, [name for name in dict.fromkeys(names or []) if name not in known]


def active_organizations(system: Engine) -> list[Organization]:
    """Every active organization as a value, by slug: a tick's or a check's organizations, read
    once for all of them."""
    with system_transaction(system) as conn:
        rows = conn.execute(
            select(organizations)
            .where(organizations.c.active.is_(True))
            .order_by(organizations.c.slug)
        ).mappings()
        return [Organization.from_row(row) for row in rows]


def organizations_where(
    system: Engine, condition: Callable[[ColumnElement[int]], ColumnElement[bool]]
) -> list[Organization]:
    """Every organization for which `condition(id)` holds (SQL on the organization's id, such as
    an EXISTS over its rows: the organizations a run over all of them has work for), as values,
    by id: one query, however many organizations there are."""
    with system_transaction(system) as conn:
        rows = conn.execute(
            select(organizations).where(condition(organizations.c.id)).order_by(organizations.c.id)
        ).mappings()
        return [Organization.from_row(row) for row in rows]


def active_organizations_named() -> Subquery:
    """The active organizations' `id` and `slug` as a table to join: rows listed across the
    active organizations (their mailboxes), each named by its organization, in the caller's one
    query."""
    o = organizations.c
    return select(o.id, o.slug).where(o.active.is_(True)).subquery("active_organizations")


def organization_countries() -> Subquery:
    """Every organization's `id` and `country` as a table to join: rows listed across the
    organizations with their organization's country (the Peppol traffic's sending and receiving
    countries), in the caller's one query."""
    o = organizations.c
    return select(o.id, o.country).subquery("organization_countries")


def change_settings(
    conn: Connection, organization_id: int, change: Callable[[dict], dict | None]
) -> tuple[dict, dict]:
    """Change the organization's JSON settings in the caller's transaction: its row locked, `change`
    gets a copy of them as stored now (not as a value found earlier says) and returns them changed,
    or None for no change. (before, after); after is before when nothing changed. The one writer
    of the settings outside the lifecycle (a policy switched, a base rate added)."""
    stored = conn.execute(
        select(organizations.c.settings)
        .where(organizations.c.id == organization_id)
        .with_for_update()
    ).scalar()
    before = dict(stored or {})
    after = change(deepcopy(before))
    if after is None or after == before:
        return before, before
    conn.execute(
        update(organizations).where(organizations.c.id == organization_id).values(settings=after)
    )
    return before, after


def organizations_with_participant(conn: Connection, participant: str) -> list[Organization]:
    """The organizations whose Peppol participant id is `participant` (case-insensitive), by id:
    the receiver a received document names, in the caller's system transaction. More than one
    is a configuration the caller refuses."""
    rows = conn.execute(
        select(organizations)
        .where(func.lower(organizations.c.peppol_participant) == participant.lower())
        .order_by(organizations.c.id)
    ).mappings()
    return [Organization.from_row(row) for row in rows]


def change_participant(
    conn: Connection, organization_id: int, participant: str | None
) -> str | None:
    """Store the organization's Peppol participant id (None: it has none) in the caller's system
    transaction, its row locked; the id it had. The caller checked `participant` and that no
    other organization has it (`organizations_with_participant`)."""
    before = conn.execute(
        select(organizations.c.peppol_participant)
        .where(organizations.c.id == organization_id)
        .with_for_update()
    ).scalar()
    conn.execute(
        update(organizations)
        .where(organizations.c.id == organization_id)
        .values(peppol_participant=participant)
    )
    return before


def first_organization_added(system: Engine) -> datetime | None:
    """When the oldest active organization was added (None: there is none yet): no run over
    the organizations was due before (a freshness check of a new installation)."""
    with system_transaction(system) as conn:
        return conn.execute(
            select(func.min(organizations.c.created_at)).where(organizations.c.active.is_(True))
        ).scalar_one()


def organization_slugs(system: Engine) -> list[str]:
    """Every organization's slug, deactivated ones included, in the order they were added."""
    with system_transaction(system) as conn:
        return list(conn.scalars(select(organizations.c.slug).order_by(organizations.c.id)).all())


def organizations_last_changed(system: Engine) -> tuple[int, datetime | None]:
    """How many organizations there are and when the last one changed: what tells a sensor that
    none did since its last tick, in one cheap query."""
    with system_transaction(system) as conn:
        count, changed = conn.execute(
            select(func.count(), func.max(organizations.c.updated_at))
        ).one()
    return count, changed


def active_organization_slugs(system: Engine) -> list[str]:
    with system_transaction(system) as conn:
        rows = conn.execute(
            select(organizations.c.slug)
            .where(organizations.c.active.is_(True))
            .order_by(organizations.c.slug)
        )
        return [r[0] for r in rows]


def suspended_organizations(system: Engine) -> dict[str, str]:
    """Every suspended organization's slug and reason (what sensors and schedules leave out)."""
    return {slug: reason for slug, reason in _suspended(system).values()}


def suspended_by_id(system: Engine) -> dict[int, tuple[str, str]]:
    """Every suspended organization's (slug, reason) by its id: for the work that finds the
    organizations to serve by id (the supplier notices)."""
    return _suspended(system)


def _suspended(system: Engine) -> dict[int, tuple[str, str]]:
    with system_transaction(system) as conn:
        rows = conn.execute(
            select(
                organizations.c.id, organizations.c.slug, organizations.c.suspension_reason
            ).where(organizations.c.suspended_at.is_not(None))
        )
        return {id_: (slug, reason or "") for id_, slug, reason in rows}
