"""What the runtime login has written it cannot rewrite: the audit, the register's history, every
recorded hash and an organization's lifecycle (issue 83, part A)

Revision ID: 0056
Revises: 0055

Before this revision the login every run uses (a member of the application role) could change or
delete audit rows and their seals, a supplier's change history, and a hash recorded when an original
was stored, and it could write its organization's `offboarded_at`, `suspended_at` and
`offboarding_step`: set the step, write an offboarded organization's data past 0055's guard, clear
the step, or un-offboard it. SQL in any run (or a bug in one) could so rewrite what the archive's
proof rests on. Now, on PostgreSQL, the database refuses it:

- `audit_log`, `audit_seals`, `supplier_changes`: the application role keeps SELECT and INSERT only
  (UPDATE, DELETE revoked; TRUNCATE it never had); the system role gets UPDATE and DELETE of its
  own, for the system login's retention path. And a trigger refuses UPDATE, DELETE and TRUNCATE
  by any other session, whatever its grants (a deployment granting its runtime login by hand);
- `uploads.content_hash`, `sales_invoice_documents.sha256`, `dunning_notices.letter_sha256`,
  `exports.fingerprint` (the export's SHA-256, '' until its files are written): a hash may be
  filled where there is none, never changed, and a row holding one is not deleted;
- `organizations`: adding or deleting one, changing `offboarded_at`, `offboarded_by`,
  `suspended_at`, `suspended_by`, `suspension_reason` or `offboarding_step`, and changing an
  offboarded one's row at all (its settings name its retention and holds) is the lifecycle's
  (tenants/domain/lifecycle.py, offboarding.py: system transactions). So 0055's guard, which
  lets the offboarding's own step write, now trusts a column only the system side can write.

Who may: a session whose login may become the system role or the tables' owner (the system
login; the owner, who migrates), running as the system role or as the owner. The login is
`session_user`, which no session can change without being a superuser: a runtime session that
reaches the owner's rights some other way (a foreign key's cascade runs as the table's owner) is
still refused. No custom setting and no column is read. Every function here, and 0055's
`refuse_offboarded_writes`, looks names up in pg_catalog and this schema before the session's
temporary tables: any login may create a temporary table named `organizations`, and 0055's guard
read that one until now.

SQLite has no logins: the one user who opens the file owns it and could drop any trigger, so
nothing here applies there (docs/postgresql-and-scale-out.md, "What the runtime login can only
append to"); `audit-verify` names what changed.
"""

from alembic import op

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.rls import system_role

revision = "0056"
down_revision = "0055"
branch_labels = None
depends_on = None

APPEND_ONLY = ("audit_log", "audit_seals", "supplier_changes")
RECORDED_HASHES = {
    "uploads": "content_hash",
    "sales_invoice_documents": "sha256",
    "dunning_notices": "letter_sha256",
    "exports": "fingerprint",
}
LIFECYCLE = (
    "offboarded_at",
    "offboarded_by",
    "suspended_at",
    "suspended_by",
    "suspension_reason",
    "offboarding_step",
)
WHERE = 'docs/postgresql-and-scale-out.md, "What the runtime login can only append to"'


def _functions(schema: str, system: str) -> str:
    path = f'SET search_path = pg_catalog, "{schema}", pg_temp'
    return f"""
CREATE FUNCTION rewrite_allowed(target regclass) RETURNS boolean LANGUAGE sql STABLE {path} AS $$
    SELECT (pg_has_role(session_user, '{system}', 'MEMBER')
            OR pg_has_role(session_user, c.relowner, 'MEMBER'))
       AND (current_user = '{system}' OR pg_has_role(current_user, c.relowner, 'USAGE'))
    FROM pg_class c WHERE c.oid = target
$$;

CREATE FUNCTION refuse_rewrite() RETURNS trigger LANGUAGE plpgsql {path} AS $$
BEGIN
    IF NOT rewrite_allowed(TG_RELID) THEN
        RAISE EXCEPTION '% of % refused: the runtime login may only add to it', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'only the system login''s retention path changes or deletes it: {WHERE}';
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION refuse_hash_change() RETURNS trigger LANGUAGE plpgsql {path} AS $$
BEGIN
    IF NOT rewrite_allowed(TG_RELID) THEN
        RAISE EXCEPTION '%.% of row % is recorded and may not be changed', TG_TABLE_NAME,
                TG_ARGV[0], OLD.id
            USING ERRCODE = 'insufficient_privilege', HINT = '{WHERE}';
    END IF;
    RETURN NEW;
END
$$;

CREATE FUNCTION refuse_hash_delete() RETURNS trigger LANGUAGE plpgsql {path} AS $$
DECLARE
    held bigint;
BEGIN
    IF rewrite_allowed(TG_RELID) THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT min(id) FROM gone_rows WHERE %1$I IS NOT NULL AND %1$I <> ''''',
                   TG_ARGV[0]) INTO held;
    IF held IS NOT NULL THEN
        RAISE EXCEPTION 'row % of % holds a recorded %, so it may not be deleted', held,
                TG_TABLE_NAME, TG_ARGV[0]
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'only the system login''s retention path deletes it: {WHERE}';
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION refuse_lifecycle_change() RETURNS trigger LANGUAGE plpgsql {path} AS $$
BEGIN
    IF TG_NARGS > 0 AND NOT rewrite_allowed(TG_RELID) THEN
        RAISE EXCEPTION 'organization % is offboarded: its row too is kept as it is until the '
                'deletion (organizations offboard --delete)', OLD.slug
            USING ERRCODE = 'insufficient_privilege', HINT = '{WHERE}';
    END IF;
    IF NOT rewrite_allowed(TG_RELID) THEN
        RAISE EXCEPTION '% of an organization''s lifecycle refused: only the lifecycle commands '
                'add, suspend, resume, offboard and delete organizations', TG_OP
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'organizations add/suspend/resume/offboard run as the system login: '
                         '{WHERE}';
    END IF;
    IF TG_LEVEL = 'ROW' THEN
        RETURN NEW;
    END IF;
    RETURN NULL;
END
$$;

ALTER FUNCTION refuse_offboarded_writes() {path};
"""


def _triggers() -> list[str]:
    statements = []
    for table in APPEND_ONLY:
        statements += [
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite()",
            f"CREATE TRIGGER {table}_append_only_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite()",
        ]
    for table, column in RECORDED_HASHES.items():
        statements += [
            # called only for a row whose recorded hash the statement changes: never, normally
            f"CREATE TRIGGER {table}_{column}_write_once BEFORE UPDATE OF {column} ON {table} "
            f"FOR EACH ROW WHEN (OLD.{column} IS NOT NULL AND OLD.{column} <> '' "
            f"AND NEW.{column} IS DISTINCT FROM OLD.{column}) "
            f"EXECUTE FUNCTION refuse_hash_change('{column}')",
            # one call per statement: the offboarding's deletion of many rows asks once
            f"CREATE TRIGGER {table}_{column}_kept AFTER DELETE ON {table} "
            "REFERENCING OLD TABLE AS gone_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION refuse_hash_delete('{column}')",
        ]
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in LIFECYCLE)
    statements += [
        "CREATE TRIGGER organizations_lifecycle BEFORE UPDATE OF "
        f"{', '.join(LIFECYCLE)} ON organizations FOR EACH ROW WHEN ({changed}) "
        "EXECUTE FUNCTION refuse_lifecycle_change()",
        "CREATE TRIGGER organizations_lifecycle_rows BEFORE INSERT OR DELETE OR TRUNCATE "
        "ON organizations FOR EACH STATEMENT EXECUTE FUNCTION refuse_lifecycle_change()",
        # an offboarded organization's row (its settings: retention, holds) as well
        "CREATE TRIGGER organizations_offboarded_kept BEFORE UPDATE ON organizations "
        "FOR EACH ROW WHEN (OLD.offboarded_at IS NOT NULL) "
        "EXECUTE FUNCTION refuse_lifecycle_change('offboarded')",
    ]
    return statements


def _trigger_names() -> list[tuple[str, str]]:
    names = [(t, f"{t}_append_only") for t in APPEND_ONLY]
    names += [(t, f"{t}_append_only_truncate") for t in APPEND_ONLY]
    for table, column in RECORDED_HASHES.items():
        names += [(table, f"{table}_{column}_write_once"), (table, f"{table}_{column}_kept")]
    return names + [
        ("organizations", "organizations_lifecycle"),
        ("organizations", "organizations_lifecycle_rows"),
        ("organizations", "organizations_offboarded_kept"),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    schema = bind.exec_driver_sql("SELECT current_schema()").scalar()
    role = app_role()
    system = system_role(role)
    op.execute(_functions(schema, system))
    for statement in _triggers():
        op.execute(statement)
    if role:
        for table in APPEND_ONLY:
            op.execute(f'REVOKE UPDATE, DELETE, TRUNCATE ON "{table}" FROM "{role}"')
            op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO "{system}"')


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    role = app_role()
    if role:
        for table in APPEND_ONLY:
            op.execute(f'REVOKE ALL ON "{table}" FROM "{system_role(role)}"')
            op.execute(f'GRANT UPDATE, DELETE ON "{table}" TO "{role}"')
    for table, name in _trigger_names():
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    op.execute("ALTER FUNCTION refuse_offboarded_writes() RESET search_path")
    for function in (
        "refuse_lifecycle_change()",
        "refuse_hash_delete()",
        "refuse_hash_change()",
        "refuse_rewrite()",
        "rewrite_allowed(regclass)",
    ):
        op.execute(f"DROP FUNCTION {function}")
