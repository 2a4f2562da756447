"""tenant policies honour the system setting only for the system role and the owner (issue 46)

Revision ID: 0027
Revises: 0026

Before, every tenant policy let a transaction see every organization when
`invoice_pipelines.system` was 'on', and any role can set a custom setting: a statement of the
application role could `set_config('invoice_pipelines.system', 'on', true)` and read every tenant.
Now the policies honour the setting only when the statement runs as the system role
(`<application role>_system`, NOLOGIN, no BYPASSRLS, a member of the application role, so with its
grants) or as the table's owner (migrations). `system_transaction` switches to the system role for
its transaction (`db/tenancy.py`).

The upgrade creates the system role, lets the owner and every login that is a member of the
application role (the runtime login) switch to it, and rewrites every tenant policy. The
downgrade restores the 0017 expressions (the role stays: it may serve other databases of the
cluster). SQLite has no policies: nothing to do there.
"""

from alembic import op

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.rls import (
    ORG_SETTING,
    SYSTEM_SETTING,
    ensure_system_role,
    policy_tables,
    set_policy_expression,
)

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def _setting_only(column: str) -> str:
    # the expression before this revision (0017), written out here
    return (
        f"((SELECT current_setting('{SYSTEM_SETTING}', true) = 'on') OR {column} = "
        f"(SELECT NULLIF(current_setting('{ORG_SETTING}', true), '')::bigint))"
    )


def _role_and_setting(table: str, column: str, system_role: str) -> str:
    # the expression of this revision, written out here so that a later change of db/rls.py's
    # `_visible` (for new tables) does not change what this revision did
    return (
        f"((SELECT current_setting('{SYSTEM_SETTING}', true) = 'on' AND (current_user = "
        f"'{system_role}' OR pg_has_role(current_user, c.relowner, 'USAGE')) "
        f"FROM pg_catalog.pg_class c WHERE c.oid = '\"{table}\"'::regclass) OR {column} = "
        f"(SELECT NULLIF(current_setting('{ORG_SETTING}', true), '')::bigint))"
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    system_role = ensure_system_role(bind, app_role())
    for table, column in policy_tables(bind).items():
        set_policy_expression(bind, table, _role_and_setting(table, column, system_role))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table, column in policy_tables(bind).items():
        set_policy_expression(bind, table, _setting_only(column))
