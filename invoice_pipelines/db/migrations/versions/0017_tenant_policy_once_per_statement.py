"""tenant policies read their settings once per statement (issue 26)

Revision ID: 0017
Revises: 0016

Every tenant policy (`db/rls.py`) compared each row's organization with
`NULLIF(current_setting('invoice_pipelines.organization_id', true), '')::bigint` and tested
`current_setting('invoice_pipelines.system', true) = 'on'`: two setting lookups and a cast per row
read or written. Each setting is now read in a scalar subquery of its own, which PostgreSQL plans
as an InitPlan evaluated once per statement. The rows a policy lets through are the same; only
the policies' expressions change (no table, index or row does). SQLite has no policies: nothing
to do there.
"""

from alembic import op

from invoice_pipelines.db.rls import (
    ORG_SETTING,
    SYSTEM_SETTING,
    policy_tables,
    set_policy_expression,
)

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def _per_row(column: str) -> str:
    # the expression before this revision, as 0002-0016 created it
    return (
        f"(current_setting('{SYSTEM_SETTING}', true) = 'on' OR {column} = "
        f"NULLIF(current_setting('{ORG_SETTING}', true), '')::bigint)"
    )


def _per_statement(column: str) -> str:
    # the expression of this revision, written out here so that a later change of db/rls.py's
    # `_visible` (for new tables) does not change what this revision did
    return (
        f"((SELECT current_setting('{SYSTEM_SETTING}', true) = 'on') OR {column} = "
        f"(SELECT NULLIF(current_setting('{ORG_SETTING}', true), '')::bigint))"
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table, column in policy_tables(bind).items():
        set_policy_expression(bind, table, _per_statement(column))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table, column in policy_tables(bind).items():
        set_policy_expression(bind, table, _per_row(column))
