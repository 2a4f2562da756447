"""PostgreSQL row-level security: the application role, grants, and one tenant policy per table.

Each transaction of the application states whose data it works on with
`set_config('invoice_pipelines.organization_id', ...)` (see `db/tenancy.py`). The policy shows a row
only when its organization matches, so a query that forgets `WHERE organization_id = ...` still sees
one tenant. Maintenance work that must see every tenant (sensors, stuck-job cleanup) says so
explicitly with `invoice_pipelines.system = 'on'`, and the policy honours that only for the system
role (`system_role`: the application role's name plus `_system`, which the system login's
connections are, `db/engine.make_system_engine`) and the tables' owner (migrations). The application
role itself can set the setting, it is an ordinary custom setting, but it then still sees one
tenant; and since migration 0035 the runtime login may not switch to the system role.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

ORG_SETTING = "invoice_pipelines.organization_id"
SYSTEM_SETTING = "invoice_pipelines.system"
POLICY = "tenant_isolation"
DEFAULT_APP_ROLE = "invoice_app"
# what the runtime login may only add to (migration 0056): the application role has SELECT and
# INSERT on them, the system role (the system login's retention path) UPDATE and DELETE as well
# (its own grant: it is a member of the application role, which no longer has them)
APPEND_ONLY = ("audit_log", "audit_seals", "supplier_changes", "supplier_layouts")


def system_role(app_role: str | None) -> str:
    """The role a system transaction runs as: NOLOGIN, no BYPASSRLS, with the application role's
    privileges (it is a member of it), and the only role besides the owner for which the policies
    honour the system setting. The system login is a member of it, the runtime login is not.
    Derived from the application role, so that two deployments with roles of their own in one
    cluster never share it."""
    return f"{app_role or DEFAULT_APP_ROLE}_system"


def _visible(column: str, table: str, app_role: str | None) -> str:
    """The policy's expression: the row's organization is the transaction's, or the scope is system
    and the statement runs as the system role or the table's owner.

    Each setting is read in a scalar subquery of its own, which PostgreSQL plans as an InitPlan:
    evaluated once per statement (and the organization's only when the scope is not system), not
    once per row read or written. Written the plain way (`current_setting(...)` beside the column),
    the two lookups and the cast ran for every row a statement touched, 2-3 % of a
    100,000-order batch job's work (docs/batch-invoicing.md). Which rows pass is the same: the
    settings do not change while a statement runs. The role test is in the system setting's
    subquery, so it too runs once per statement.
    """
    return (
        f"((SELECT current_setting('{SYSTEM_SETTING}', true) = 'on' AND (current_user = "
        f"'{system_role(app_role)}' OR pg_has_role(current_user, c.relowner, 'USAGE')) "
        f"FROM pg_catalog.pg_class c WHERE c.oid = '\"{table}\"'::regclass) OR {column} = "
        f"(SELECT NULLIF(current_setting('{ORG_SETTING}', true), '')::bigint))"
    )


def policy_tables(conn: Connection) -> dict[str, str]:
    """Every table with our tenant policy, and the column the policy keys on."""
    tables = conn.exec_driver_sql(
        "SELECT tablename FROM pg_policies WHERE schemaname = current_schema() "
        f"AND policyname = '{POLICY}' ORDER BY tablename"
    ).scalars()
    return {table: "id" if table == "organizations" else "organization_id" for table in tables}


def set_policy_expression(conn: Connection, table: str, expression: str) -> None:
    """Give an existing tenant policy another expression (USING and WITH CHECK alike)."""
    conn.exec_driver_sql(
        f'ALTER POLICY {POLICY} ON "{table}" USING {expression} WITH CHECK {expression}'
    )


def ensure_app_role(conn: Connection, role: str) -> None:
    _create_role(conn, role)
    conn.exec_driver_sql(f'GRANT USAGE ON SCHEMA public TO "{role}"')


def ensure_system_role(conn: Connection, app_role: str | None) -> str:
    """Create the system role (a member of the application role, so it has its grants) and let
    the migrating owner switch to it.

    Until migration 0035 this also granted it to every login that was a member of the application
    role (the runtime login, whose system transactions switched to it); now only the system login,
    a login of its own, is a member, granted by whoever creates that login (`make migrate`, or
    the deployment: docs/postgresql-and-scale-out.md), and 0035 revoked it from the runtime logins.
    """
    role = system_role(app_role)
    _create_role(conn, role)
    if app_role:
        conn.exec_driver_sql(
            f"""
            DO $$
            BEGIN
                IF NOT pg_has_role('{role}', '{app_role}', 'MEMBER') THEN
                    EXECUTE 'GRANT ' || quote_ident('{app_role}') || ' TO ' || quote_ident('{role}');
                END IF;
            END
            $$;
            """
        )
    else:
        conn.exec_driver_sql(f'GRANT USAGE ON SCHEMA public TO "{role}"')
    return role


def _create_role(conn: Connection, role: str) -> None:
    conn.exec_driver_sql(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE "{role}" NOLOGIN NOSUPERUSER NOBYPASSRLS;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created concurrently by another migration: fine
        END
        $$;
        """
    )
    # the migrating (owner) user must be allowed to SET ROLE to it
    conn.exec_driver_sql(
        f"""
        DO $$
        BEGIN
            IF NOT pg_has_role(current_user, '{role}', 'MEMBER') THEN
                EXECUTE 'GRANT ' || quote_ident('{role}') || ' TO ' || quote_ident(current_user);
            END IF;
        END
        $$;
        """
    )


def protect_tables(
    conn: Connection, role: str | None, tables: list[str], *, key_column: str = "organization_id"
) -> None:
    """Make the rows of `tables` tenant-scoped, and grant the application role (if any) DML on them:
    on an APPEND_ONLY table SELECT and INSERT only (the system role has UPDATE and DELETE of its
    own, granted by 0056), so that protecting such a table again never reopens it to the runtime
    login.

    The policies are created whatever the role setting: a deployment that connects as its own
    non-owner login role (INVOICE_PIPELINES_DB_APP_ROLE empty) is isolated by them just the same.
    Migrations call this too, with today's expression: a change of `_visible` comes with a revision
    that rewrites every table's policy with its expression written out (as 0017 and 0027 did).
    """
    for table in tables:
        if role and table in APPEND_ONLY:
            conn.exec_driver_sql(f'GRANT SELECT, INSERT ON "{table}" TO "{role}"')
            conn.exec_driver_sql(f'REVOKE UPDATE, DELETE, TRUNCATE ON "{table}" FROM "{role}"')
        elif role:
            conn.exec_driver_sql(f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO "{role}"')
        conn.exec_driver_sql(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
        # FORCE: the table owner is subject to the policy too (only superusers/BYPASSRLS are not)
        conn.exec_driver_sql(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
        conn.exec_driver_sql(f'DROP POLICY IF EXISTS {POLICY} ON "{table}"')
        conn.exec_driver_sql(
            f'CREATE POLICY {POLICY} ON "{table}" USING {_visible(key_column, table, role)} '
            f"WITH CHECK {_visible(key_column, table, role)}"
        )
    if role:
        conn.exec_driver_sql(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"')


def unprotect_tables(conn: Connection, role: str | None, tables: list[str]) -> None:
    for table in tables:
        conn.exec_driver_sql(f'DROP POLICY IF EXISTS {POLICY} ON "{table}"')
        conn.exec_driver_sql(f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY')
        conn.exec_driver_sql(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY')
        if role:
            conn.exec_driver_sql(f'REVOKE ALL ON "{table}" FROM "{role}"')
