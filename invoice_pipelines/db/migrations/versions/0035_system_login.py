"""the runtime login may no longer switch to the system role: the system scope has a login of its own (issue 54)

Revision ID: 0035
Revises: 0034

Since 0027 the policies let a transaction see every organization only as the system role
(`<application role>_system`), and 0027 let every login that was a member of the application
role (the runtime login) switch to it, since `system_transaction` did so on the runtime engine. So
SQL that ran in a runtime session (a tenant run's) could `SET ROLE invoice_app_system` and read
and write every organization. Now the work over every organization connects as a login of its own
(INVOICE_PIPELINES_SYSTEM_DB_URL, `db/engine.system_engine`), a member of the system role, and
this revision revokes the system role from the runtime logins: every login that is a direct
member of both the application role and the system role, other than the migrating user and the
members of the tables' owner. A `SET ROLE invoice_app_system` of theirs then fails with
"permission denied to set role".

The system login itself is not made here: a LOGIN role has a password, or a certificate or a
cloud IAM binding, and those are the deployment's, not the schema's (a migration would have to
read it from somewhere and would leave it in the database's history). It is created once like the
runtime login, as docs/postgresql-and-scale-out.md shows, and granted the system role (`make
migrate` grants it to the login of INVOICE_PIPELINES_SYSTEM_DB_URL). A deployment that migrates
without one stops at the next start of its services with "... may not switch to
'invoice_app_system' ... INVOICE_PIPELINES_SYSTEM_DB_URL is not set ...".

A membership this role may not revoke (granted by another role, on PostgreSQL 16 and later) is
named in a warning; the services refuse to start with a system login configured while the
runtime login still has it. The downgrade leaves the memberships as they are: granting the system
role to every login of the application role in the cluster would hand back what this revision
took away to logins of other databases too; code older than this revision needs `GRANT
invoice_app_system TO <runtime login>` by hand. SQLite has no roles: nothing to do there.
"""

import logging

from alembic import op
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.rls import system_role

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None

log = logging.getLogger(__name__)

# the runtime logins: logins (other than the migrating user) that are direct members of both the
# application role and the system role, and not members of the tables' owner
_RUNTIME_LOGINS = """
SELECT r.rolname FROM pg_roles r
WHERE r.rolcanlogin AND r.rolname <> current_user
AND EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid
            AND m.roleid = (SELECT oid FROM pg_roles WHERE rolname = :app))
AND EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid
            AND m.roleid = (SELECT oid FROM pg_roles WHERE rolname = :system))
AND NOT pg_has_role(r.oid, (SELECT relowner FROM pg_class WHERE oid = 'organizations'::regclass),
                    'MEMBER')
ORDER BY r.rolname
"""


def _runtime_logins(bind, app: str, system: str) -> list[str]:
    return list(bind.execute(text(_RUNTIME_LOGINS), {"app": app, "system": system}).scalars())


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    app = app_role()
    system = system_role(app)
    if not app:
        log.warning(
            "INVOICE_PIPELINES_DB_APP_ROLE is empty: revoke %s from the runtime login yourself "
            "(docs/postgresql-and-scale-out.md)",
            system,
        )
        return
    for login in _runtime_logins(bind, app, system):
        quoted = bind.execute(
            text("SELECT quote_ident(:r), quote_ident(:l)"), {"r": system, "l": login}
        ).one()
        try:
            with bind.begin_nested():
                bind.exec_driver_sql(f"REVOKE {quoted[0]} FROM {quoted[1]}")
        except DBAPIError as exc:  # named in the warning below; the others are revoked
            log.warning("REVOKE %s FROM %s failed: %s", system, login, exc.orig)
    left = _runtime_logins(bind, app, system)
    if left:
        log.warning(
            "still members of %s, so SQL of theirs can reach every organization: %s; revoke it "
            "as the role that granted it (REVOKE %s FROM ...)",
            system,
            ", ".join(left),
            system,
        )


def downgrade() -> None:
    # the memberships stay as they are (see the docstring)
    pass
