"""The offboarded organization's read-only triggers, as migration 0055 wrote them (frozen).

Migration 0055 put them on every tenant table of its day; a revision adding a tenant table later
(0060's mailboxes) puts the same ones on it. Both build them here, so the text is written once:
FROZEN (docs/architecture.md, "The import rule"), since a revision must make tomorrow the DDL it
made the day it was written. db/test_read_only_triggers.py holds every statement to that text; a
changed trigger is a new module and a revision rewriting every table's triggers, never an edit
here.
"""

from __future__ import annotations

# what every refusal says after the organization (PostgreSQL: its slug; SQLite: "this organization")
MESSAGE = (
    "is offboarded: its data are kept read-only until its retention periods are over, then "
    "deleted (organizations offboard --delete); nothing else may change them"
)
# each guarded operation and the row (SQLite) or transition table (PostgreSQL) that says whose
OPERATIONS = {"insert": "NEW", "update": "OLD", "delete": "OLD"}


def pg_triggers(table: str) -> list[str]:
    """`table`'s three statement triggers calling 0055's `refuse_offboarded_writes()`."""
    return [
        f"CREATE TRIGGER {table}_read_only_insert AFTER INSERT ON {table} "
        "REFERENCING NEW TABLE AS written_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION refuse_offboarded_writes()",
        # an update moves no row between organizations (the keys carry it): the old rows say whose
        f"CREATE TRIGGER {table}_read_only_update AFTER UPDATE ON {table} "
        "REFERENCING OLD TABLE AS touched_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION refuse_offboarded_writes()",
        f"CREATE TRIGGER {table}_read_only_delete AFTER DELETE ON {table} "
        "REFERENCING OLD TABLE AS touched_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION refuse_offboarded_writes()",
    ]


def sqlite_triggers(table: str) -> list[str]:
    """`table`'s three row triggers, each refusing with RAISE(ABORT)."""
    return [
        f"""
        CREATE TRIGGER {table}_read_only_{operation} BEFORE {operation.upper()} ON {table}
        WHEN EXISTS (
            SELECT 1 FROM organizations WHERE id = {row}.organization_id
            AND offboarded_at IS NOT NULL AND offboarding_step IS NULL
        )
        BEGIN
            SELECT RAISE(ABORT, 'this organization {MESSAGE}');
        END
        """
        for operation, row in OPERATIONS.items()
    ]


def triggers(table: str, *, postgres: bool) -> list[str]:
    """The statements that make `table` read-only for an offboarded organization."""
    return pg_triggers(table) if postgres else sqlite_triggers(table)


def drop_triggers(table: str, *, postgres: bool) -> list[str]:
    """The statements a downgrade drops `table`'s triggers with."""
    return [
        f"DROP TRIGGER IF EXISTS {table}_read_only_{operation}"
        + (f" ON {table}" if postgres else "")
        for operation in OPERATIONS
    ]
