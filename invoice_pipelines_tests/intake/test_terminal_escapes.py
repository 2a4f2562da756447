"""What the `incoming` commands print of a document or an upload reaches the terminal escaped.

An upload's file name is chosen by whoever uploads; a supplier's name and invoice number by
whoever wrote the document. An ESC in one starts a terminal sequence (OSC 8 draws a link that
shows one address and opens another, OSC 0 sets the window title, CSI moves the cursor or clears
the screen), 0x9b is a one-byte CSI, an RTL override shows what follows backwards. Printed raw, a
file name could rewrite the rest of the list a person reads.
"""

from __future__ import annotations

import json
import re
import uuid

from sqlalchemy import insert

from invoice_pipelines.cli import main
from invoice_pipelines.db.tables import incoming_invoices, processing_errors, uploads
from invoice_pipelines.db.tenancy import tenant_transaction

FILENAME = "\x1b]8;;https://evil.example/\x07invoice.pdf\x1b]8;;\x07\x1b[2J\x1b]0;owned\x07.xml"
SELLER = "Lieferant\x9b31m GmbH\x7f"
NUMBER = "RE-\u202e1-6202\u202c"
MESSAGE = "seller name \x1b[1A\x1b[2Kaccepted\u2066!\u2069"
# what a terminal acts on: C0, DEL, C1, bidi embeddings/overrides/isolates
UNSAFE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _document(db) -> tuple[dict, int]:
    org = db.new_organization()
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        upload_id = conn.execute(
            insert(uploads)
            .values(
                organization_id=org["id"],
                filename=FILENAME,
                storage_key=f"{org['slug']}/{uuid.uuid4().hex}",
                size_bytes=10,
                content_hash=uuid.uuid4().hex,
            )
            .returning(uploads.c.id)
        ).scalar_one()
        document_id = conn.execute(
            insert(incoming_invoices)
            .values(
                organization_id=org["id"],
                upload_id=upload_id,
                status="FAILED",
                content_hash=uuid.uuid4().hex,
                seller_name=SELLER,
                invoice_number=NUMBER,
                currency="EUR",
            )
            .returning(incoming_invoices.c.id)
        ).scalar_one()
        conn.execute(
            insert(processing_errors).values(
                organization_id=org["id"],
                incoming_invoice_id=document_id,
                processing_version=0,
                stage="validate",
                rule_id="IP-TEST",
                severity="error",
                message=MESSAGE,
            )
        )
    return org, document_id


def test_incoming_list_and_show_print_control_and_bidi_characters_escaped(
    db, monkeypatch, capsys
) -> None:
    org, document_id = _document(db)
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)

    assert main(["incoming", "list", "--org", org["slug"]]) == 0
    out = capsys.readouterr().out
    assert UNSAFE.search(out) is None, repr(out)
    # shown, escaped: a person sees what the name holds
    assert "\\u001b]8;;https://evil.example/\\u0007invoice.pdf" in out
    assert "Lieferant\\u009b31m GmbH\\u007f" in out
    assert "RE-\\u202e1-6202\\u202c" in out
    assert "seller name \\u001b[1A\\u001b[2Kaccepted\\u2066!\\u2069" in out

    # one JSON object per line: still exactly the stored values once read
    assert main(["incoming", "list", "--org", org["slug"], "--json"]) == 0
    out = capsys.readouterr().out
    assert UNSAFE.search(out) is None, repr(out)
    [listed] = [json.loads(line) for line in out.splitlines()]
    assert (listed["filename"], listed["seller_name"]) == (FILENAME, SELLER)

    assert main(["incoming", "show", "--org", org["slug"], "--id", str(document_id)]) == 0
    out = capsys.readouterr().out
    assert UNSAFE.search(out) is None, repr(out)
    shown = json.loads(out)
    assert (shown["filename"], shown["seller_name"], shown["invoice_number"]) == (
        FILENAME,
        SELLER,
        NUMBER,
    )
    assert shown["findings"][0]["message"] == MESSAGE
