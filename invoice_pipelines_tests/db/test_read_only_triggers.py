"""db/read_only_triggers.py is frozen: the offboarded organization's read-only triggers it builds
are, to the character, the ones migration 0055 wrote out when it was made (the text below is
what 0055 emitted for a table), and a fresh `migrate` leaves exactly those on every table that
has them (0055's tables and 0060's mailboxes)."""

from __future__ import annotations

from sqlalchemy import text

from invoice_pipelines.db.read_only_triggers import drop_triggers, triggers

# what 0055's `_pg_triggers("uploads")` and `_sqlite_triggers("uploads")` returned
PG_UPLOADS = [
    "CREATE TRIGGER uploads_read_only_insert AFTER INSERT ON uploads REFERENCING NEW TABLE AS "
    "written_rows FOR EACH STATEMENT EXECUTE FUNCTION refuse_offboarded_writes()",
    "CREATE TRIGGER uploads_read_only_update AFTER UPDATE ON uploads REFERENCING OLD TABLE AS "
    "touched_rows FOR EACH STATEMENT EXECUTE FUNCTION refuse_offboarded_writes()",
    "CREATE TRIGGER uploads_read_only_delete AFTER DELETE ON uploads REFERENCING OLD TABLE AS "
    "touched_rows FOR EACH STATEMENT EXECUTE FUNCTION refuse_offboarded_writes()",
]
SQLITE_RAISE = (
    "            SELECT RAISE(ABORT, 'this organization is offboarded: its data are kept read-only "
    "until its retention periods are over, then deleted (organizations offboard --delete); "
    "nothing else may change them');\n"
)
SQLITE_UPLOADS = [
    "\n"
    f"        CREATE TRIGGER uploads_read_only_{operation} BEFORE {operation.upper()} ON uploads\n"
    "        WHEN EXISTS (\n"
    f"            SELECT 1 FROM organizations WHERE id = {row}.organization_id\n"
    "            AND offboarded_at IS NOT NULL AND offboarding_step IS NULL\n"
    "        )\n"
    "        BEGIN\n" + SQLITE_RAISE + "        END\n"
    "        "
    for operation, row in (("insert", "NEW"), ("update", "OLD"), ("delete", "OLD"))
]


def test_the_triggers_are_the_text_0055_wrote():
    assert triggers("uploads", postgres=True) == PG_UPLOADS
    assert triggers("uploads", postgres=False) == SQLITE_UPLOADS
    assert drop_triggers("uploads", postgres=True) == [
        f"DROP TRIGGER IF EXISTS uploads_read_only_{operation} ON uploads"
        for operation in ("insert", "update", "delete")
    ]
    assert drop_triggers("uploads", postgres=False)[2] == (
        "DROP TRIGGER IF EXISTS uploads_read_only_delete"
    )


def _words(sql: str) -> str:
    return " ".join(sql.split())


def test_a_fresh_migrate_leaves_these_triggers_on_0055s_and_0060s_tables(sqlite_database):
    with sqlite_database.owner_engine.connect() as conn:
        stored = dict(
            conn.execute(
                text(
                    "SELECT name, sql FROM sqlite_master "
                    "WHERE type = 'trigger' AND name LIKE '%\\_read\\_only\\_%' ESCAPE '\\'"
                )
            ).all()
        )
    tables = {name.rsplit("_read_only_", 1)[0] for name in stored}
    assert {
        "uploads",
        "incoming_invoices",
        "mailboxes",
        "mailbox_messages",
        "supplier_layouts",
    } <= tables
    expected = {
        f"{table}_read_only_{operation}": _words(sql)
        for table in tables
        for operation, sql in zip(
            ("insert", "update", "delete"), triggers(table, postgres=False), strict=True
        )
    }
    assert {name: _words(sql) for name, sql in stored.items()} == expected
