"""Commands answer at the speed of their query (issue 47): `--help` lists every command without
importing an area, and a command that reads or writes the database (or its files) imports neither
Dagster nor Alembic nor the areas it does not use. What a process imported is read from
`sys.modules` in a fresh interpreter after `main()`; no timing."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from invoice_pipelines import cli
from invoice_pipelines.areas import AREAS
from invoice_pipelines.areas import commands as listed_commands
from invoice_pipelines.billing.domain.invoicing_kinds import enqueue_sales_orders
from invoice_pipelines.db.tables import incoming_invoices
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.documents.domain.batch import DOCUMENTS_KIND
from invoice_pipelines.queue.domain.items import enqueue_invoice_job
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.billing.shop import make_shop
from invoice_pipelines_tests.billing.test_credit_notes import LATER, invoiced
from invoice_pipelines_tests.delivery.test_email import _shop as shop_with_documents
from invoice_pipelines_tests.exports.books import DATEV, customer, sales_invoice
from invoice_pipelines_tests.housekeeping.helpers import LAST_EXPIRED, at, old_upload
from invoice_pipelines_tests.intake.test_review import basic_wl, run_intake

PACKAGE = Path(cli.__file__).parent
# the areas (the shared layers with a part in the assemblies are no area: resources, db, tenants,
# the queue)
AREA_MODULES = {area.name for area in AREAS} - {"resources", "db", "tenants", "queue"}
# the areas whose kinds of batch job a queue command may meet (and load, when it meets one)
KIND_AREAS = {area.name for area in AREAS if area.kinds}

# a fresh interpreter that imports only the console script, then runs each command in a child
# of its own (fork: every command starts from the same few modules, one interpreter start in all)
# and prints, per command, its exit code, what it printed and the modules it ended with
DRIVER = """
import contextlib, io, json, os, sys
from invoice_pipelines.cli import main
for argv in json.loads(sys.argv[1]):
    pid = os.fork()
    if pid == 0:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code
        modules = sorted(sys.modules)
        sys.__stdout__.write("LOADED " + json.dumps([argv, code, out.getvalue(), modules]) + "\\n")
        sys.__stdout__.flush()
        os._exit(0)
    os.waitpid(pid, 0)
"""


def _run_each(
    commands: list[list[str]], url: str, **settings: str
) -> list[tuple[int, str, set[str]]]:
    env = {**os.environ, "INVOICE_PIPELINES_DB_URL": url, **settings}
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(commands)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    found = []
    for line in done.stdout.splitlines():
        if line.startswith("LOADED "):
            argv, code, said, modules = json.loads(line[len("LOADED ") :])
            found.append((code, said, set(modules)))
    assert len(found) == len(commands), done.stdout + done.stderr
    return found


def _loaded(modules: set[str], package: str) -> bool:
    return any(m == package or m.startswith(package + ".") for m in modules)


def _area_loaded(modules: set[str], area: str) -> bool:
    """Whether anything of the area beyond its package and its `area.py` (what the assemblies
    read of every area, `areas.py`) is loaded: its kind's name module counts as that part."""
    package = f"invoice_pipelines.{area}"
    light = {package, f"{package}.area", f"{package}.kind"}
    return any(m.startswith(package + ".") and m not in light for m in modules)


def _areas(modules: set[str]) -> set[str]:
    return {area for area in AREA_MODULES if _area_loaded(modules, area)}


def _check_imports(commands: dict, found: dict) -> None:
    """Each command (name: (argv, the areas it may import, its exit code)) ended as expected and
    imported neither Dagster nor Alembic nor an area beyond its own."""
    for name, (_argv, areas, code) in commands.items():
        ended, said, modules = found[name]
        assert ended == code, (name, said)
        assert not _loaded(modules, "dagster"), name
        assert not _loaded(modules, "alembic"), name
        assert _areas(modules) <= areas, (name, _areas(modules))


def _version(db, org: dict, doc_id: int) -> int:
    """The processing_version `incoming show` prints: what a reviewer names with --version."""
    with tenant_transaction(db.engine, org["id"]) as conn:
        return conn.execute(
            select(incoming_invoices.c.processing_version).where(incoming_invoices.c.id == doc_id)
        ).scalar_one()


def test_help_lists_every_area_table_without_the_areas():
    """`--help` (what the console script lists without loading an area's parsers) is, command by
    command and in order, the areas' tables (`Area.commands`) with their helps; the areas'
    parsers add exactly those commands (`Area.add_commands` refuses any other)."""
    lazy = cli.build_parser("")
    sub = next(a for a in lazy._actions if isinstance(a, argparse._SubParsersAction))
    listed = [(action.dest, action.help) for action in sub._choices_actions]
    tables = [(command.name, command.help) for command, _area in listed_commands()]
    assert listed == tables + [(c.name, c.help) for c in cli.DEVTOOLS.commands]
    assert list(cli.build_parser().format_help()) == list(lazy.format_help())


def test_help_without_the_areas_reads_as_with_them():
    every = cli.build_parser().format_help()
    assert cli.build_parser("").format_help() == every
    assert cli.build_parser("incoming").format_help() == every
    # the command's own parser is the area's real one
    args = cli.build_parser("batch-status").parse_args(["batch-status", "7", "--json"])
    assert (args.job_id, args.json) == (7, True)


def test_a_commands_help_imports_no_sqlalchemy():
    """`<command> --help` answers from its area's parsers alone: the QuickBooks commands (whose
    module imported SQLAlchemy and every table first, 1.5 s for `qbo-payables --help`, issue 56)
    as the intake's do. Each printed its usage and ended 0."""
    from invoice_pipelines.quickbooks.area import AREA as QUICKBOOKS

    commands = [[c.name, "--help"] for c in QUICKBOOKS.commands] + [["incoming", "list", "-h"]]
    ran = _run_each(commands, "postgresql://nobody@127.0.0.1:1/never-connected")
    for argv, (code, said, modules) in zip(commands, ran, strict=True):
        assert (code, said.startswith("usage: invoice-pipelines " + argv[0])) == (0, True), said
        assert not _loaded(modules, "sqlalchemy"), argv
        assert _areas(modules) <= {"quickbooks", "intake"}, argv


def test_help_and_database_commands_import_no_dagster_alembic_or_other_areas(db, tmp_path):
    org = db.new_organization()
    doc = run_intake(db, tmp_path, org, {"r.xml": basic_wl("LAZY-1")})["r.xml"]
    assert doc["status"] == "NEEDS_REVIEW"
    shop = make_shop(db)
    job_id = enqueue_sales_orders(
        db.engine, find_organization(db.engine, shop.org_id), order_ids=shop.add_orders(1)
    )
    slug, doc_id = org["slug"], str(doc["id"])
    commands = {
        # command: (argv, the areas it may import)
        "--help": (["--help"], set()),
        "incoming list": (["incoming", "list", "--org", slug], {"intake"}),
        "incoming show": (["incoming", "show", "--org", slug, "--id", doc_id], {"intake"}),
        "incoming review": (
            ["incoming", "review", "--org", slug, "--id", doc_id, "--confirm", "--by", "anna"]
            + ["--version", str(doc["processing_version"])],
            {"intake"},
        ),
        "incoming policy": (["incoming", "policy", "--org", slug], {"intake"}),
        # an invoicing job: its kind is billing's, loaded to describe it
        "batch-status": (["batch-status", str(job_id)], {"billing"}),
        "batch-list": (["batch-list", "--org", shop.org["slug"]], KIND_AREAS),
        "qbo-conflicts": (["qbo-conflicts", "--org", slug], {"quickbooks"}),
        "dunning-block": (
            ["dunning-block", "--org", shop.org["slug"], "--reason", "test", "--customers"]
            + [str(shop.customer_ids[0])],
            {"overdue"},
        ),
    }
    ran = _run_each([argv for argv, _ in commands.values()], db.url)
    found = dict(zip(commands, ran, strict=True))

    _check_imports({name: (argv, areas, 0) for name, (argv, areas) in commands.items()}, found)
    code, said, modules = found["--help"]
    assert all(command.name in said for command, _area in listed_commands())
    assert not _loaded(modules, "sqlalchemy")
    assert "LAZY-1" in found["incoming list"][1] and "LAZY-1" in found["incoming show"][1]
    assert "VALIDATED" in found["incoming review"][1]
    # the look-alike table behind the duplicate keys (a 900 KB JSON, ~0.25 s) stays unread where
    # only stored keys are compared; a review reads it, since it compares the seller's name with
    # the supplier register by what a person sees (issue 54)
    assert not _loaded(found["incoming list"][2], "confusable_homoglyphs")
    assert not _loaded(found["incoming show"][2], "confusable_homoglyphs")
    assert f"batch job {job_id}" in found["batch-status"][1]


def test_commands_that_write_import_no_dagster_alembic_or_other_areas(db, tmp_path):
    """The commands that change the database or its files, run as a person runs them one after
    the other: a review books a document, an export books it, its correction reopens it, the
    review reopens it; housekeeping removes an upload past its retention; invoicing, credit notes
    and dunning settings. Each did its work and imported no Dagster, no Alembic and no other area."""
    org = db.new_organization(**DATEV)
    uploads = tmp_path / "uploads"
    doc = run_intake(db, uploads, org, {"w.xml": basic_wl("LAZY-2")})["w.xml"]
    assert doc["status"] == "NEEDS_REVIEW" and str(doc["issue_date"]).startswith("2024-03")
    due = old_upload(db, LocalUploads(str(uploads)), org, uploaded=at(LAST_EXPIRED))
    shop = make_shop(db)
    (sales_invoice,) = invoiced(shop, [("TOOL", 1)])
    job_id = enqueue_sales_orders(
        db.engine, find_organization(db.engine, shop.org["id"]), order_ids=shop.add_orders(1)
    )
    slug, doc_id, shop_slug = org["slug"], str(doc["id"]), shop.org["slug"]
    settings = {
        "INVOICE_PIPELINES_STORAGE": "local",
        "INVOICE_PIPELINES_UPLOAD_DIR": str(uploads),
        "INVOICE_PIPELINES_EXPORT_DIR": str(tmp_path / "exports"),
        "INVOICE_PIPELINES_DOCUMENT_DIR": str(tmp_path / "documents"),
    }
    queue = KIND_AREAS
    review = ["incoming", "review", "--org", slug, "--id", doc_id, "--by", "anna"]
    commands = {
        # command: (argv, the areas it may import, its exit code)
        "incoming review --confirm": (
            [*review, "--confirm", "--version", str(doc["processing_version"])],
            {"intake"},
            0,
        ),
        "export": (
            ["export", "--org", slug, "--month", "2024-03", "--direction", "incoming"],
            {"exports"},
            0,
        ),
        "export-reopen": (
            ["export-reopen", "--org", slug, "--documents", doc_id, "--reason", "a correction"],
            {"exports"},
            0,
        ),
        "housekeeping": (["housekeeping", "--org", slug], {"housekeeping"}, 0),
        "documents": (
            ["documents", "--org", shop_slug, "--invoices", str(sales_invoice["id"])],
            {"documents"},
            0,
        ),
        "batch-invoice": (
            ["batch-invoice", "--org", shop_slug, "--orders", str(shop.add_order([("BOOK", 1)]))],
            queue,
            0,
        ),
        "batch-cancel": (["batch-cancel", str(job_id)], queue, 0),
        "batch-retry": (["batch-retry", str(job_id)], queue, 0),
        "credit-note": (
            ["credit-note", "--org", shop_slug, "--invoice", sales_invoice["invoice_number"]]
            + ["--reason", "returned", "--date", LATER.isoformat()],
            queue,
            0,
        ),
        "customer-kind": (
            ["customer-kind", "--org", shop_slug, "--customers", str(shop.customer_ids[0])]
            + ["--kind", "consumer"],
            {"overdue"},
            0,
        ),
        "dunning-base-rate": (
            ["dunning-base-rate", "--org", shop_slug, "--from", "2026-07-01", "--percent", "1.27"],
            {"overdue"},
            0,
        ),
        "overdue --dry-run": (["overdue", "--org", shop_slug, "--dry-run"], {"overdue"}, 0),
    }
    ran = _run_each([argv for argv, _, _ in commands.values()], db.url, **settings)
    found = dict(zip(commands, ran, strict=True))
    _check_imports(commands, found)
    assert '"status": "VALIDATED"' in found["incoming review --confirm"][1]
    exported = json.loads(found["export"][1].strip().splitlines()[-1])
    assert (exported["invoices"], exported["version"]) == (1, 1)
    assert json.loads(found["export-reopen"][1])["reopened"] == [doc["id"]]
    assert json.loads(found["housekeeping"][1])["uploads_removed"] == 1
    assert not (uploads / due["key"]).exists()
    assert '"number": "GS-' in found["credit-note"][1]

    # the reviewer looks again (the version moved on with each change) and reopens it
    reopen = {
        "incoming review --reopen": (
            [*review, "--reopen", "--reason", "wrong account"]
            + ["--version", str(_version(db, org, doc["id"]))],
            {"intake"},
            0,
        )
    }
    found = dict(
        zip(reopen, _run_each([reopen["incoming review --reopen"][0]], db.url), strict=True)
    )
    _check_imports(reopen, found)
    assert '"status": "NEEDS_REVIEW"' in found["incoming review --reopen"][1]


def test_commands_that_parse_queue_run_or_send_import_no_dagster_or_alembic(db, tmp_path):
    """`parse` (an e-invoice, and a scan through OCR), `batch-run` (a documents job, rendered in
    the command's process), `send-invoices` (to an SMTP server on loopback) and the commands that
    queue documents, communications and credit notes jobs: each did its work and imported no
    Dagster, no Alembic and no other area."""
    org, sent_ids, _store = shop_with_documents(db, tmp_path, 2)
    buyer = customer(db.engine, org["id"], "K-2", "Zweite Kunde GmbH")
    unwritten = sales_invoice(db.engine, org["id"], buyer)
    documents_job = enqueue_invoice_job(
        db.engine, find_organization(db.engine, org["slug"]), DOCUMENTS_KIND, [unwritten]
    )
    (tmp_path / "r.xml").write_bytes(basic_wl("LAZY-3"))
    (tmp_path / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    (tmp_path / "items.json").write_text(
        json.dumps([{"invoice_number": "RE-0", "reason": "returned"}])
    )
    slug, queue = org["slug"], KIND_AREAS
    commands = {
        # command: (argv, the areas it may import, its exit code)
        "parse": (["parse", str(tmp_path / "r.xml"), "--json"], {"intake"}, 3),
        "parse (a scan)": (["parse", str(tmp_path / "scan.png"), "--json"], {"intake"}, 1),
        "batch-run": (["batch-run", str(documents_job)], queue, 0),
        "send-invoices": (
            ["send-invoices", "--org", slug, "--invoices", ",".join(map(str, sent_ids))],
            queue,
            0,
        ),
        "batch-documents": (
            ["batch-documents", "--org", slug, "--invoices", str(unwritten)],
            queue,
            0,
        ),
        "batch-send": (["batch-send", "--org", slug, "--invoices", str(unwritten)], queue, 0),
        "batch-credit-notes": (
            ["batch-credit-notes", "--org", slug, "--items", str(tmp_path / "items.json")],
            queue,
            0,
        ),
    }
    with SmtpSink() as sink:
        ran = _run_each(
            [argv for argv, _, _ in commands.values()],
            db.url,
            INVOICE_PIPELINES_DOCUMENT_DIR=str(tmp_path / "documents"),
            INVOICE_PIPELINES_SMTP_HOST="127.0.0.1",
            INVOICE_PIPELINES_SMTP_PORT=str(sink.port),
            INVOICE_PIPELINES_SMTP_FROM="rechnung@mueller.example",
        )
        received = list(sink.mailbox.messages)
    found = dict(zip(commands, ran, strict=True))
    _check_imports(commands, found)
    assert json.loads(found["parse"][1])["status"] == "NEEDS_REVIEW"
    assert "OCR" in json.loads(found["parse (a scan)"][1])["errors"][0]["message"]
    assert "1 written, 0 failed" in found["batch-run"][1]
    assert json.loads(found["send-invoices"][1])["sent"] == 2 and len(received) == 2
    for name in ("batch-documents", "batch-send", "batch-credit-notes"):
        assert "queued" in found[name][1], name


def test_qbo_payables_sets_and_shows_the_payables_without_dagster_alembic_or_other_areas(db):
    """`qbo-payables` only reads and writes the database: the organization's QuickBooks payables
    settings are set and shown, and nothing else is imported."""
    from cryptography.fernet import Fernet

    from invoice_pipelines.quickbooks.domain.tokens import save_connection, token_cipher

    org = db.new_organization()
    save_connection(
        db.engine,
        org["id"],
        system=db.system_engine,
        realm_id="9130350000000099",
        client_id="app",
        client_secret="secret",
        refresh_token="refresh",
        cipher=token_cipher(Fernet.generate_key().decode()),
    )
    argv = ["qbo-payables", "--org", org["slug"], "--create-vendors", "yes"]
    argv += ["--by", "anna", "--reason", "new suppliers' bills reach QuickBooks"]
    argv += ["--expense-account", "11", "--supplier-vat-id", "DE 123 456 789", "--json"]
    commands = {"qbo-payables": (argv, {"quickbooks"}, 0)}
    found = dict(zip(commands, _run_each([argv], db.url), strict=True))
    _check_imports(commands, found)
    said = json.loads(found["qbo-payables"][1].strip().splitlines()[-1])
    assert (said["create_vendors"], said["expense_accounts"]) == (True, {"vat:DE123456789": "11"})


# What reading commands may load (issue 73): a command that only reads imports no writer of
# documents (Peppol, UBL, XRechnung, PDF, Saxon, the Invoice Response), no supplier notice or
# Peppol answer, no reader of documents where it reads only rows, no Dagster and no Alembic.
# Beyond what every command loads (the console script, the areas' tables, core, db, settings),
# each names the modules of ours it may load: a new import shows up here, to be justified.
NO_READER_LOADS = (
    "dagster",
    "alembic",
    "saxonche",
    "fpdf",
    "fontTools",
    "PIL",
    "pypdf",
    "reportlab",
    "weasyprint",
    "requests",
    "invoice_pipelines.einvoice.invoice_response",
    "invoice_pipelines.einvoice.schematron",
    "invoice_pipelines.einvoice.read",
    "invoice_pipelines.documents.domain.render",
    "invoice_pipelines.intake.domain.notices",
    "invoice_pipelines.intake.domain.peppol_responses",
    "invoice_pipelines.intake.domain.review",
    "invoice_pipelines.resources.peppol.transport",
)
EVERY_COMMAND = {
    "invoice_pipelines",
    "invoice_pipelines.area_parts",
    "invoice_pipelines.areas",
    "invoice_pipelines.cli",
    "invoice_pipelines.cli_args",
    "invoice_pipelines.limits",
    "invoice_pipelines.settings",
    "invoice_pipelines.resources.for_commands",
    "invoice_pipelines.queue.domain.batch_job",
    "invoice_pipelines.queue.domain.job_kind",
    "invoice_pipelines.queue.domain.known_kinds",
    # main's refusal of a write to an offboarded organization (`Refused`), plain Python
    "invoice_pipelines.lib.read_only",
}
INCOMING_READS = {
    "invoice_pipelines.einvoice.classes",
    "invoice_pipelines.intake.commands.cli",
    "invoice_pipelines.intake.commands.cli_mailbox",  # argparse alone, like cli_peppol
    "invoice_pipelines.intake.commands.cli_peppol",
    "invoice_pipelines.intake.commands.cli_suppliers",
    "invoice_pipelines.intake.commands.run",
    "invoice_pipelines.intake.domain.discounts",
    "invoice_pipelines.intake.domain.duplicate_uploads",
    "invoice_pipelines.intake.domain.listing",
    # a document's source, when a mailbox brought it (issue 86): SQL of the intake's own tables
    "invoice_pipelines.intake.domain.mailbox_status",
    "invoice_pipelines.intake.domain.notice_states",
    "invoice_pipelines.intake.domain.payments",
    "invoice_pipelines.metadata",
    "invoice_pipelines.outbox.machine",
    # the messages' edge package (a docstring) and what goes into and out of the mailer
    "invoice_pipelines.resources.messaging",
    "invoice_pipelines.resources.messaging.mail_types",
}
SUPPLIER_READS = {
    "invoice_pipelines.intake.commands.cli",
    "invoice_pipelines.intake.commands.cli_mailbox",
    "invoice_pipelines.intake.commands.cli_peppol",
    "invoice_pipelines.intake.commands.cli_suppliers",
    "invoice_pipelines.intake.domain.figures",
    "invoice_pipelines.intake.domain.incoming_invoices",
    "invoice_pipelines.intake.domain.notice_states",
    "invoice_pipelines.intake.commands.supplier_commands",
    # the register's changes (issue 87: one action each, the op's and the command's), plain
    # Python over supplier_register.py and figures.py, which the reading verbs load anyway
    "invoice_pipelines.intake.domain.supplier_actions",
    "invoice_pipelines.metadata",
    "invoice_pipelines.outbox.machine",
    # the commands that change the register tell Dagster (an HTTP client, no Dagster)
    "invoice_pipelines.resources.dagster_instance",  # the package: a docstring
    "invoice_pipelines.resources.dagster_instance.dagster_ui",
    "invoice_pipelines.resources.dagster_instance.local_dagster",  # where make run's UI is (no Dagster)
    # the messages' edge package (a docstring) and what goes into and out of the mailer
    "invoice_pipelines.resources.messaging",
    "invoice_pipelines.resources.messaging.mail_types",
    "invoice_pipelines.supplier_register",
}
QUICKBOOKS_READS = {
    "invoice_pipelines.outbox.machine",
    "invoice_pipelines.quickbooks.domain.check_findings",
    "invoice_pipelines.quickbooks.commands.cli",
    "invoice_pipelines.quickbooks.domain.company",
    "invoice_pipelines.quickbooks.domain.errors",
    "invoice_pipelines.quickbooks.commands.listings",
    "invoice_pipelines.quickbooks.domain.payables_settings",
    "invoice_pipelines.quickbooks.domain.sync",
    "invoice_pipelines.quickbooks.domain.sync.bill_queue",
    "invoice_pipelines.quickbooks.domain.watch",
    # qbo-payables that sets an account tells Dagster bills_waiting's new evaluation
    "invoice_pipelines.resources.dagster_instance",  # the package: a docstring
    "invoice_pipelines.resources.dagster_instance.dagster_ui",
    "invoice_pipelines.resources.dagster_instance.local_dagster",  # where make run's UI is (no Dagster)
    # the messages' edge package (a docstring) and what goes into and out of the mailer
    "invoice_pipelines.resources.messaging",
    "invoice_pipelines.resources.messaging.mail_types",
    "invoice_pipelines.sales_ledger",
}
QUEUE_READS = {
    "invoice_pipelines.queue.commands.cli",
    "invoice_pipelines.queue.commands.job_text",
    "invoice_pipelines.queue.commands.run",
    "invoice_pipelines.queue.domain.items",
    "invoice_pipelines.queue.domain.jobs",
    "invoice_pipelines.queue.domain.kinds",
    "invoice_pipelines.queue.domain.requests",
    "invoice_pipelines.queue.domain.transitions",
}


def _ours_beyond_every_command(modules: set[str]) -> set[str]:
    """The modules of ours a command loaded beyond EVERY_COMMAND, core, db and the areas'
    tables (`<area>/area.py` and its package, with its `commands` and `domain` packages)."""
    areas = {name.split(".")[1] for name in modules if name.count(".") == 2}
    return {
        m
        for m in modules
        if m.startswith("invoice_pipelines")
        and m not in EVERY_COMMAND
        and not m.startswith(("invoice_pipelines.core", "invoice_pipelines.db"))
        and not m.endswith(".area")
        and m
        not in {
            f"invoice_pipelines.{area}{sub}"
            for area in areas
            for sub in ("", ".commands", ".domain")
        }
    }


def test_reading_commands_load_only_what_reading_needs(db, tmp_path):
    from invoice_pipelines.supplier_register import add_supplier

    org = db.new_organization()
    doc = run_intake(db, tmp_path, org, {"r.xml": basic_wl("LAZY-R")})["r.xml"]
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        supplier = add_supplier(
            conn, org["id"], name="Lesbar GmbH", changed_by="anna", reason="a test"
        )
    shop = make_shop(db)
    job_id = enqueue_sales_orders(
        db.engine, find_organization(db.engine, shop.org_id), order_ids=shop.add_orders(1)
    )
    slug = org["slug"]
    commands = {
        # command: (argv, the modules of ours it may load beyond every command's)
        "incoming list": (["incoming", "list", "--org", slug], INCOMING_READS),
        "incoming show": (
            ["incoming", "show", "--org", slug, "--id", str(doc["id"])],
            INCOMING_READS,
        ),
        # and the drop zone's files not registered yet: the upload store (no Dagster)
        "incoming uploads": (
            ["incoming", "uploads", "--org", slug],
            INCOMING_READS
            | {
                "invoice_pipelines.resources.files",  # the package: a docstring
                "invoice_pipelines.resources.files.files",
                "invoice_pipelines.resources.files.stores",
                "invoice_pipelines.resources.files.uploads",
            },
        ),
        "suppliers list": (["suppliers", "list", "--org", slug], SUPPLIER_READS),
        "suppliers show": (
            ["suppliers", "show", "--org", slug, "--id", str(supplier)],
            SUPPLIER_READS,
        ),
        # an invoicing job: its kind is billing's, loaded to describe it
        "batch-status": (
            ["batch-status", str(job_id)],
            QUEUE_READS | {"invoice_pipelines.billing.domain.invoicing_kinds"},
        ),
        "batch-list": (["batch-list", "--org", shop.org["slug"]], QUEUE_READS),
        # no QuickBooks client, sync or document reader (lxml) for a listing
        "qbo-payables": (["qbo-payables", "--org", slug], QUICKBOOKS_READS),
        "qbo-conflicts": (["qbo-conflicts", "--org", slug], QUICKBOOKS_READS),
    }
    ran = _run_each([argv for argv, _ in commands.values()], db.url)
    for name, (code, said, modules) in zip(commands, ran, strict=True):
        # qbo-payables of an organization not connected to QuickBooks says so in one line
        assert code == (2 if name == "qbo-payables" else 0), (name, said)
        assert not _loaded(modules, "lxml"), name
        loaded = [m for m in NO_READER_LOADS if _loaded(modules, m)]
        assert not loaded, (name, loaded)
        beyond = _ours_beyond_every_command(modules) - commands[name][1]
        assert not beyond, (name, sorted(beyond))
    assert "LAZY-R" in ran[0][1] and "Lesbar GmbH" in ran[3][1]
