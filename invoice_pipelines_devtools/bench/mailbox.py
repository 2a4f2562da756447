"""Benchmark: supplier invoices by e-mail, from a real IMAP server (Dovecot on loopback) to
VALIDATED, beside the same files through the upload folder in the same run (issue 86).

N messages, each with one synthetic XML e-invoice, are delivered into one organization's mailbox;
the mailbox reader (`read_mailboxes`, what `mailbox_sensor` calls each tick) takes them tick by
tick, and the intake (`process_documents`, with the document_parser's workers) validates them.
Then the same N files go through the drop zone (`scan_uploads`) into another organization and the
same intake. `ratio_to_upload_folder` is the e-mail path's documents per second over the drop
zone's (both: registration plus intake). With `--organizations M` there are M-1 more organizations,
each with a mailbox of its own (an empty folder of the same account, made on disk as provisioning
would), and two ticks over all of them: `first_tick_<M>_s`, the server's first look at the new
folders (Dovecot builds their indexes: once), and `tick_<M>_s`, what every later tick costs (one
login, one LIST-STATUS, no folder opened). `read_cpu_s` is this process's CPU while reading: what the wall time `read_s`
spends beyond it is the IMAP server's.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid

from invoice_pipelines.cli_args import positive_int

SEED = 86


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--messages", type=positive_int, default=1000, help="messages, one XML each"
    )
    parser.add_argument(
        "--organizations", type=positive_int, default=1, help="mailboxes read per tick (one each)"
    )
    parser.add_argument(
        "--workers", type=positive_int, default=os.cpu_count() or 2, help="parser processes"
    )


def _organizations(system, prefix: str, count: int) -> list[tuple[int, str]]:
    from invoice_pipelines.db.tables import organizations
    from invoice_pipelines.db.tenancy import system_transaction

    rows = [{"slug": f"{prefix}-{i}", "name": f"Benchmark mailbox {i}"} for i in range(count)]
    with system_transaction(system, write=True) as conn:
        for start in range(0, len(rows), 1000):
            conn.execute(organizations.insert(), rows[start : start + 1000])
        found = conn.execute(
            organizations.select()
            .with_only_columns(organizations.c.id, organizations.c.slug)
            .where(organizations.c.slug.like(f"{prefix}-%"))
            .order_by(organizations.c.id)
        ).all()
    return [(row.id, row.slug) for row in found]


def _configure(engine, server, orgs: list[tuple[int, str]]) -> None:
    from invoice_pipelines.db.tables import mailboxes
    from invoice_pipelines.db.tenancy import tenant_transaction

    for org_id, slug in orgs:  # each organization writes its own row, as `mailbox set` does
        with tenant_transaction(engine, org_id, write=True) as conn:
            conn.execute(
                mailboxes.insert().values(
                    organization_id=org_id, host=server.host, port=server.port, tls="none",
                    username=server.user, secret_name="BENCH_IMAP_PASSWORD", folder=slug,
                    processed_folder=f"{slug}-done",
                )
            )  # fmt: skip


def _sellers(seed: int):
    """The synthetic invoices' sellers (as synthetic_xml_invoices draws them for `seed`)."""
    import random

    from invoice_pipelines_devtools.demo.invoices import _synthetic_company

    rng = random.Random(seed)
    return [_synthetic_company(rng, i, seller=True) for i in range(24)]


def _register(engine, org_id: int, sellers) -> None:
    """The sellers in the organization's register with their addresses, as a person confirmed
    them: an e-mail from a seller's address is then no finding (docs/intake.md, the sender rule)."""
    from invoice_pipelines.db.tenancy import tenant_transaction
    from invoice_pipelines.supplier_register import add_supplier

    with tenant_transaction(engine, org_id, write=True) as conn:
        for seller in {s.vat_id: s for s in sellers}.values():
            add_supplier(
                conn, org_id, name=seller.name, vat_id=seller.vat_id, notice_email=seller.email,
                ibans=[(seller.iban, None)],
                changed_by="bench", reason="the benchmark's suppliers",
            )  # fmt: skip


def _sender(data: bytes, sellers) -> str:
    return next((s.email for s in sellers if s.vat_id.encode() in data), "unknown@bench.example")


def _deliver(server, folder: str, files: list[tuple[str, bytes]], sellers) -> None:
    from email.message import EmailMessage

    # the server's first look at thousands of new folders (the first command) takes long
    client = server.client(timeout=600)
    try:
        for name, data in files:
            mail = EmailMessage()
            mail["From"] = _sender(data, sellers)
            mail["To"] = "invoices@bench.example"
            mail["Subject"] = f"Rechnung {name}"
            mail["Message-ID"] = f"<{uuid.uuid4().hex}@lieferant.example>"
            mail.set_content("Anbei unsere Rechnung.")
            mail.add_attachment(data, maintype="application", subtype="xml", filename=name)
            client.append(f'"{folder}"', None, None, mail.as_bytes())
    finally:
        client.logout()


def _document_ids(engine, org_id: int) -> list[int]:
    from sqlalchemy import select

    from invoice_pipelines.db.tables import incoming_invoices
    from invoice_pipelines.db.tenancy import tenant_transaction

    with tenant_transaction(engine, org_id) as conn:
        return list(
            conn.execute(
                select(incoming_invoices.c.id)
                .where(incoming_invoices.c.organization_id == org_id)
                .order_by(incoming_invoices.c.id)
            ).scalars()
        )


def _intake(engine, store, org_id: int, ids: list[int], parser) -> int:
    from invoice_pipelines.db.tenancy import find_organization
    from invoice_pipelines.intake.domain.pipeline import process_documents

    organization = find_organization(engine, org_id)
    validated = 0
    for start in range(0, len(ids), 200):
        summary = process_documents(
            engine, store, organization, ids[start : start + 200], parser=parser, ocr=None,
            max_bytes=parser.max_upload_bytes,
        )  # fmt: skip
        validated += summary.outcomes.get("VALIDATED", 0)
    return validated


def run(args: argparse.Namespace) -> dict:
    from sqlalchemy import func, select

    from invoice_pipelines.db.engine import make_engine, make_system_engine
    from invoice_pipelines.db.migrate import ensure_migrated
    from invoice_pipelines.db.tables import uploads
    from invoice_pipelines.db.tenancy import tenant_transaction
    from invoice_pipelines.intake.domain.mailbox import read_mailboxes
    from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
    from invoice_pipelines.intake.parser_resource import DocumentParser
    from invoice_pipelines.resources.files.uploads import LocalUploads
    from invoice_pipelines_devtools.demo.invoices import synthetic_xml_invoices
    from invoice_pipelines_devtools.standins.imap import start_imap_server

    ensure_migrated(make_engine(owner=True))
    engine, system = make_engine(), make_system_engine()
    prefix = f"bench-mail-{uuid.uuid4().hex[:6]}"
    orgs = _organizations(system, prefix, args.organizations)
    [(folder_org, folder_slug)] = [o for o in orgs if o[1] == f"{prefix}-0"]
    [(drop_org, drop_slug)] = _organizations(system, f"{prefix}-drop", 1)
    files = list(synthetic_xml_invoices(args.messages, seed=SEED))
    sellers = _sellers(SEED)
    for org_id in (folder_org, drop_org):
        _register(engine, org_id, sellers)
    server = start_imap_server()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="ip-bench-mail-") as root,
            tempfile.TemporaryDirectory(prefix="ip-bench-parse-") as server_dir,
        ):
            store = LocalUploads(root)
            _configure(engine, server, orgs)
            # the mailboxes' folders, made as provisioning would (the others stay empty)
            server.make_folders([folder_slug, f"{folder_slug}-done"])
            server.make_folders([slug for _, slug in orgs[1:]])
            _deliver(server, folder_slug, files, sellers)
            parser = DocumentParser(
                workers=args.workers, keep_warm_seconds=0.0, server_dir=server_dir
            )
            parser.wait_ready(300)
            # one document through each worker first, so that neither path pays the workers'
            # first reads (the path measured first would)
            warm_org, warm_slug = _organizations(system, f"{prefix}-warm", 1)[0]
            warm = LocalUploads(os.path.join(root, ".warm"))
            old = time.time() - 600
            for name, data in synthetic_xml_invoices(2 * args.workers, seed=SEED + 1):
                warm.put(warm_slug, name, data)
                os.utime(os.path.join(warm.root, warm_slug, name), (old, old))
            scan_uploads(engine, warm, ScanState(), system=system, only_organizations={warm_slug})
            _intake(engine, warm, warm_org, _document_ids(engine, warm_org), parser)

            def password(_name: str) -> str:
                return server.password

            # e-mail: ticks until the folder is empty, then the intake
            t0, cpu0 = time.perf_counter(), time.process_time()
            cursor: dict = {}
            ticks, slowest, errors = 0, 0.0, []
            while True:
                started = time.perf_counter()
                tick = read_mailboxes(
                    engine, system, store, cursor, password_of=password,
                    only_organizations={folder_slug},
                )  # fmt: skip
                slowest = max(slowest, time.perf_counter() - started)
                cursor, ticks = tick.cursor, ticks + 1
                errors += tick.errors
                if (not tick.by_organization and not tick.waiting) or errors:
                    break
            mail_ids = _document_ids(engine, folder_org)
            read_s = time.perf_counter() - t0
            # this process's CPU while reading (the reader, the database, the files): the rest of
            # the wall time is the IMAP server's and waiting for a core
            read_cpu_s = time.process_time() - cpu0
            many = {}
            if args.organizations > 1:  # ticks over every mailbox, most of them empty
                # the first: the server's first look at the new folders builds its indexes of
                # them (a cost of setting them up, once); the second: what every tick costs
                for name in ("first_tick", "tick"):
                    started = time.perf_counter()
                    tick = read_mailboxes(
                        engine, system, store, cursor, password_of=password,
                        only_organizations={slug for _, slug in orgs}, timeout=600,
                    )  # fmt: skip
                    cursor = tick.cursor
                    many[f"{name}_{args.organizations}_s"] = round(time.perf_counter() - started, 3)
                # begun and read in the second tick; the others are first in line next tick
                many["tick_mailboxes_read"] = args.organizations - tick.waiting
                many["tick_errors"] = tick.errors[:3]
            t0 = time.perf_counter()
            validated = _intake(engine, store, folder_org, mail_ids, parser)
            mail_s = read_s + time.perf_counter() - t0

            # the same files through the drop zone
            old = time.time() - 600
            for name, data in files:
                store.put(drop_slug, name, data)
                os.utime(os.path.join(root, drop_slug, name), (old, old))
            t0 = time.perf_counter()
            scan_uploads(
                engine, store, ScanState(), system=system, max_files_per_tick=args.messages + 10,
                only_organizations={drop_slug},
            )  # fmt: skip
            drop_validated = _intake(
                engine, store, drop_org, _document_ids(engine, drop_org), parser
            )
            drop_s = time.perf_counter() - t0
            parser.close()

            result = {
                "messages": args.messages,
                "uploads": len(mail_ids),
                "validated": validated,
                "ticks": ticks,
                "slowest_tick_s": round(slowest, 3),
                "mail_s": round(mail_s, 3),
                "read_s": round(read_s, 3),
                "read_cpu_s": round(read_cpu_s, 3),
                "mail_per_s": round(len(mail_ids) / mail_s, 2) if mail_s else None,
                "upload_folder_validated": drop_validated,
                "upload_folder_s": round(drop_s, 3),
                "errors": errors[:5],
                **many,
            }
            with tenant_transaction(engine, folder_org) as conn:
                result["duplicates"] = conn.execute(
                    select(func.count()).where(
                        uploads.c.organization_id == folder_org, uploads.c.status == "duplicate"
                    )
                ).scalar_one()
            mail_rate = len(mail_ids) / mail_s if mail_s else 0.0
            drop_rate = args.messages / drop_s if drop_s else 0.0
            result["ratio_to_upload_folder"] = (
                round(mail_rate / drop_rate, 3) if drop_rate else None
            )
            return result
    finally:
        server.stop()
