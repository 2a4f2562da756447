"""PostgreSQL row-level security: the application role, grants, and one tenant policy per table.

Each transaction of the application states whose data it works on with
`set_config('invoice_pipelines.organization_id', ...)` (see `db/tenancy.py`). The policy shows a row
only when its organization matches, so a query that forgets `WHERE organization_id = ...` still sees
one tenant. Maintenance work that must see every tenant (sensors, stuck-job cleanup) says so
explicitly with `invoice_pipelines.system = 'on'`.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

ORG_SETTING = "invoice_pipelines.organization_id"
SYSTEM_SETTING = "invoice_pipelines.system"
POLICY = "tenant_isolation"


def _visible(column: str) -> str:
    """The policy's expression: the row's organization is the transaction's, or the scope is system.

    Each setting is read in a scalar subquery of its own, which PostgreSQL plans as an InitPlan:
    evaluated once per statement (and the organization's only when the scope is not system), not
    once per row read or written. Written the plain way (`current_setting(...)` beside the column),
    the two lookups and the cast ran for every row a statement touched, 2-3 % of a
    100,000-order batch job's work (docs/batch-invoicing.md). Which rows pass is the same: the
    settings do not change while a statement runs.
    """
    return (
        f"((SELECT current_setting('{SYSTEM_SETTING}', true) = 'on') OR {column} = "
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
    conn.exec_driver_sql(f'GRANT USAGE ON SCHEMA public TO "{role}"')


def protect_tables(
    conn: Connection, role: str | None, tables: list[str], *, key_column: str = "organization_id"
) -> None:
    """Make the rows of `tables` tenant-scoped, and grant the application role (if any) DML on them.

    The policies are created whatever the role setting: a deployment that connects as its own
    non-owner login role (INVOICE_PIPELINES_DB_APP_ROLE empty) is isolated by them just the same.
    """
    for table in tables:
        if role:
            conn.exec_driver_sql(f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO "{role}"')
        conn.exec_driver_sql(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
        # FORCE: the table owner is subject to the policy too (only superusers/BYPASSRLS are not)
        conn.exec_driver_sql(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
        conn.exec_driver_sql(f'DROP POLICY IF EXISTS {POLICY} ON "{table}"')
        conn.exec_driver_sql(
            f'CREATE POLICY {POLICY} ON "{table}" USING {_visible(key_column)} '
            f"WITH CHECK {_visible(key_column)}"
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
