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
import queue
import tempfile
import time
import uuid

from invoice_pipelines.cli_args import positive_int

SEED = 86
# documents one intake run takes (the upload sensor's batch)
INTAKE_GROUP = 200


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


def _intake_group(engine, store, organization, ids: list[int], parser) -> int:
    from invoice_pipelines.intake.domain.pipeline import process_documents

    summary = process_documents(
        engine, store, organization, ids, parser=parser, ocr=None, max_bytes=parser.max_upload_bytes
    )  # fmt: skip
    return summary.outcomes.get("VALIDATED", 0)


def _drain(engine, store, org_id: int, parser, producer: _Producer) -> tuple[float, int, list[int]]:
    """Start `producer` and take its organization's documents through the intake as they are
    registered, `INTAKE_GROUP` at a time (what the upload sensor gives one run), until the producer
    is done and nothing is left: (seconds from the start, VALIDATED, the documents' ids)."""
    from invoice_pipelines.db.tenancy import find_organization

    organization = find_organization(engine, org_id)
    taken: set[int] = set()
    validated = 0
    started = producer.start()
    while True:
        done = producer.done()  # before the listing: what it registered last is in it
        new = [i for i in _document_ids(engine, org_id) if i not in taken]
        for start in range(0, len(new), INTAKE_GROUP):
            validated += _intake_group(
                engine, store, organization, new[start : start + INTAKE_GROUP], parser
            )
        taken.update(new)
        if done and not new:
            return time.perf_counter() - started, validated, sorted(taken)
        if not new:
            time.sleep(0.02)


def _many_ticks(engine, system, store, orgs, cursor: dict, password: str) -> dict:
    """Two ticks over every mailbox, most of them empty: the first (the server's first look at the
    new folders builds its indexes of them, a cost of setting them up, once) and what every later
    tick costs."""
    from invoice_pipelines.intake.domain.mailbox import read_mailboxes

    many: dict = {}
    for name in ("first_tick", "tick"):
        started = time.perf_counter()
        tick = read_mailboxes(
            engine, system, store, cursor, password_of=lambda _name: password,
            only_organizations={slug for _, slug in orgs}, timeout=600,
        )  # fmt: skip
        cursor = tick.cursor
        many[f"{name}_{len(orgs)}_s"] = round(time.perf_counter() - started, 3)
    # begun and read in the second tick; the others are first in line next tick
    many["tick_mailboxes_read"] = len(orgs) - tick.waiting
    many["tick_errors"] = tick.errors[:3]
    return many


class _Producer:
    """A sensor's ticks (`kind` "mail": `read_mailboxes`; "drop": `scan_uploads`) for one
    organization in a process of its own, as Dagster's daemon runs a sensor beside the runs. The
    process is made and its imports done before `start`, so that neither path's time holds them."""

    def __init__(self, kind: str, root: str, slug: str, password: str) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._go, self._ready = context.Event(), context.Event()
        self._out = context.Queue()
        self._process = context.Process(
            target=_produce, args=(kind, root, slug, password, self._go, self._ready, self._out),
            daemon=True,
        )  # fmt: skip
        self._process.start()
        deadline = time.monotonic() + 120
        while not self._ready.wait(0.1):
            if not self._process.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {kind} sensor's process did not start")
        self._result: dict | None = None

    def start(self) -> float:
        started = time.perf_counter()
        self._go.set()
        return started

    def done(self) -> bool:
        if self._result is None:
            try:
                self._result = self._out.get_nowait()
            except queue.Empty:  # still ticking
                if not self._process.is_alive():
                    raise RuntimeError("the sensor's process ended without a result") from None
                return False
        return True

    def result(self) -> dict:
        while not self.done():
            time.sleep(0.02)
        self._process.join(30)
        assert self._result is not None
        if self._result.get("failed"):
            raise RuntimeError(f"the sensor's process failed: {self._result['failed']}")
        return self._result


def _produce(kind, root, slug, password, go, ready, out) -> None:
    """The producer process (`_Producer`): ticks until a tick finds nothing new, then its figures
    on `out` (seconds, its own CPU, ticks, the slowest, errors, the mailbox cursor)."""
    try:
        from invoice_pipelines.db.engine import make_engine, make_system_engine
        from invoice_pipelines.intake.domain.mailbox import read_mailboxes
        from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
        from invoice_pipelines.resources.files.uploads import LocalUploads

        engine, system, store = make_engine(), make_system_engine(), LocalUploads(root)
        ready.set()
        go.wait()
        started, cpu = time.perf_counter(), time.process_time()
        cursor: dict = {}
        state = ScanState()
        ticks, slowest, errors = 0, 0.0, []
        while True:
            begun = time.perf_counter()
            if kind == "mail":
                tick = read_mailboxes(
                    engine, system, store, cursor, password_of=lambda _name: password,
                    only_organizations={slug},
                )  # fmt: skip
                cursor, more = tick.cursor, bool(tick.by_organization or tick.waiting)
            else:
                scan = scan_uploads(engine, store, state, system=system, only_organizations={slug})
                state, more, tick = scan.state, bool(scan.registered or scan.waiting), scan
            slowest = max(slowest, time.perf_counter() - begun)
            ticks += 1
            errors += tick.errors
            if not more or errors:
                break
        out.put({
            "seconds": round(time.perf_counter() - started, 3),
            "cpu_s": round(time.process_time() - cpu, 3),
            "ticks": ticks, "slowest_tick_s": round(slowest, 3), "errors": errors[:5],
            "cursor": cursor,
        })  # fmt: skip
    except BaseException as exc:  # noqa: BLE001 - said to the bench, which raises it
        ready.set()
        out.put({"failed": f"{type(exc).__name__}: {exc}"})


def run(args: argparse.Namespace) -> dict:
    from sqlalchemy import func, select

    from invoice_pipelines.db.engine import make_engine, make_system_engine
    from invoice_pipelines.db.migrate import ensure_migrated
    from invoice_pipelines.db.tables import uploads
    from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
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
            _intake_group(
                engine, warm, find_organization(engine, warm_org), _document_ids(engine, warm_org),
                parser,
            )  # fmt: skip

            # e-mail: the mailbox sensor's ticks in a process of their own (as the daemon runs
            # them) while the intake takes what they registered, until every message is read
            # and every upload taken up
            mail = _Producer("mail", root, folder_slug, server.password)
            mail_s, validated, mail_ids = _drain(engine, store, folder_org, parser, mail)
            read = mail.result()
            many = {}
            if args.organizations > 1:  # ticks over every mailbox, most of them empty
                many = _many_ticks(engine, system, store, orgs, read["cursor"], server.password)

            # the same files through the drop zone: the upload sensor's ticks in a process of
            # their own beside the same intake
            old = time.time() - 600
            for name, data in files:
                store.put(drop_slug, name, data)
                os.utime(os.path.join(root, drop_slug, name), (old, old))
            drop = _Producer("drop", root, drop_slug, "")
            drop_s, drop_validated, _ = _drain(engine, store, drop_org, parser, drop)
            scanned = drop.result()
            parser.close()

            result = {
                "messages": args.messages,
                "uploads": len(mail_ids),
                "validated": validated,
                "ticks": read["ticks"],
                "slowest_tick_s": read["slowest_tick_s"],
                "mail_s": round(mail_s, 3),
                "read_s": read["seconds"],
                "read_cpu_s": read["cpu_s"],
                "mail_per_s": round(len(mail_ids) / mail_s, 2) if mail_s else None,
                "upload_folder_validated": drop_validated,
                "upload_folder_s": round(drop_s, 3),
                "scan_s": scanned["seconds"],
                "errors": (read["errors"] + scanned["errors"])[:5],
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
