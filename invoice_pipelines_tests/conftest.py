"""Shared fixtures: a real PostgreSQL and a real SQLite database, migrated to head.

`db` is parametrized over both engines, so a test that takes it runs twice. PostgreSQL comes from
INVOICE_PIPELINES_TEST_PG_URL (default: the local server); the suite creates a scratch database on
it and drops it at the end. With CI set, an unreachable PostgreSQL fails the run instead of skipping.
Each worker migrates one database per engine; every other database at head is a copy of it
(pg_migrated_factory, sqlite_migrated_factory), so only the migration tests pay for migrating.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, insert, text
from sqlalchemy.engine import make_url

from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.migrate import upgrade
from invoice_pipelines.db.tables import organizations
from invoice_pipelines.db.tenancy import system_transaction
from invoice_pipelines_tests.processes import guard_this_process

os.environ.setdefault("NO_GCE_CHECK", "true")
# The suite logs in to its scratch databases as the server's superuser (and migrates with the same
# login), which the pipelines refuse outside tests; test_runtime_role.py unsets this and logs in
# as roles of its own to test the refusal.
os.environ.setdefault("INVOICE_PIPELINES_ALLOW_OWNER_RUNTIME", "true")
# one machine: the audit chain is sealed with the key generated into the data folder, on
# PostgreSQL too (test_seal_key_deployment.py unsets this to test the refusal)
os.environ.setdefault("INVOICE_PIPELINES_AUDIT_SEAL_LOCAL_KEY", "true")
# commands tell no Dagster webserver unless a test starts one and names it (a make run on this
# machine's port 3000 would get the tests' organizations otherwise)
os.environ["INVOICE_PIPELINES_DAGSTER_URL"] = ""

DEFAULT_TEST_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
# ../shared beside the repository: the official rules and the sample documents many tests use
# (INVOICE_PIPELINES_TEST_SHARED_DIR points elsewhere; the guard's own test uses it)
SHARED_DIR = Path(
    os.environ.get("INVOICE_PIPELINES_TEST_SHARED_DIR")
    or Path(__file__).resolve().parents[2] / "shared"
)
SAMPLES_DIR = SHARED_DIR / "samples" / "einvoice"
# the KoSIT XRechnung rules every XRechnung the tests build is checked against (the product reads
# them from this setting; a test about the missing setting removes it)
XRECHNUNG_RULES_DIR = SHARED_DIR / "reference" / "xrechnung"
if XRECHNUNG_RULES_DIR.is_dir():
    os.environ.setdefault("INVOICE_PIPELINES_XRECHNUNG_RULES_DIR", str(XRECHNUNG_RULES_DIR))
# the official CEN EN 16931 rules every received CII and UBL invoice is judged by (the same:
# a deployment provides the folder through this setting; a test about its absence removes it)
EN16931_RULES_DIR = SHARED_DIR / "reference" / "en16931"
if EN16931_RULES_DIR.is_dir():
    os.environ.setdefault("INVOICE_PIPELINES_EN16931_RULES_DIR", str(EN16931_RULES_DIR))
# OpenPEPPOL's Peppol BIS Billing 3.0 rules every Peppol document the tests build is proved with
PEPPOL_RULES_DIR = SHARED_DIR / "reference" / "peppol"
PEPPOL_SAMPLES_DIR = SHARED_DIR / "samples" / "peppol"
if PEPPOL_RULES_DIR.is_dir():
    os.environ.setdefault("INVOICE_PIPELINES_PEPPOL_RULES_DIR", str(PEPPOL_RULES_DIR))
# each parse server's worker reads this many made-up invoices as it starts (128 in production,
# intake/domain/warm_up.py): the suite starts dozens of servers, and 8 go the same way
os.environ.setdefault("INVOICE_PIPELINES_PARSE_WARM_DOCUMENTS", "8")
IN_CI = bool(os.environ.get("CI"))
_org_counter = itertools.count(1)


def samples_dir() -> Path:
    """The shared sample e-invoices; missing samples fail under CI and skip elsewhere."""
    if not SAMPLES_DIR.is_dir():
        message = (
            f"sample e-invoices not found at {SAMPLES_DIR} (../shared must sit beside the repo)"
        )
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return SAMPLES_DIR


def pg_server_url() -> str:
    raw = os.environ.get("INVOICE_PIPELINES_TEST_PG_URL", DEFAULT_TEST_PG_URL)
    url = make_url(raw.replace("postgres://", "postgresql://", 1))
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg2")
    return url.render_as_string(hide_password=False)


@dataclass
class TestDatabase:
    """A migrated database plus helpers to create tenants in it."""

    kind: str
    url: str
    engine: Engine  # the application engine (PostgreSQL: SET ROLE to the RLS-bound app role)
    owner_engine: Engine  # the migrating owner (no RLS on SQLite; superuser in our PG tests)
    created_orgs: list[int] = field(default_factory=list)

    __test__ = False  # not a test class

    @property
    def system_engine(self) -> Engine:
        """The engine of the work over every organization (`system_transaction`): the suite
        configures no system login, so it is the application engine (single-login mode, the
        login allowed by INVOICE_PIPELINES_ALLOW_OWNER_RUNTIME); test_system_scope.py makes
        logins of its own for the system login."""
        return self.engine

    def new_organization(self, **values) -> dict:
        """A fresh organization, unique per call, so tests never see each other's rows."""
        slug = values.pop("slug", None) or f"org-{next(_org_counter)}-{uuid.uuid4().hex[:6]}"
        row = {"slug": slug, "name": values.pop("name", slug.title()), **values}
        with system_transaction(self.system_engine, write=True) as conn:
            org_id = conn.execute(
                insert(organizations).values(**row).returning(organizations.c.id)
            ).scalar_one()
        self.created_orgs.append(org_id)
        return {"id": org_id, **row}


def _pg_reachable(url: str) -> str | None:
    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure means "not usable"
        return str(exc).splitlines()[0]


@pytest.fixture(autouse=True)
def _no_dagster_state_storage_from_an_earlier_test() -> None:
    """Each test starts without the defs-state storage an entered DagsterInstance sets (a context
    variable of Dagster's, `dagster._core.storage.defs_state.base`). A `build_*_context()` made
    without `with` inside an entered instance enters an ephemeral instance of its own and leaves
    it entered until the garbage collector takes the context, possibly during a later test; that
    sets the variable back to the first instance's storage, long disposed, and every
    `Definitions` resolved afterwards on that worker failed with "Attempted to resolve undefined
    DagsterInstance weakref" (29 tests of one CI run). Tests hand such contexts their instance."""
    from dagster._core.storage.defs_state import base

    base._current_storage.set(None)


@pytest.fixture(scope="session")
def batch_kinds():
    """The areas' kinds of batch job as the code location and the console script hand them over
    (`areas.kinds()`: one read-only value, the `batch_kinds` resource of runs and commands); a
    test's own kinds go into a value of its own (`Kinds.of(...)`, `batch_kinds.with_kinds(...)`)."""
    from invoice_pipelines.areas import kinds

    return kinds()


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    url = pg_server_url()
    problem = _pg_reachable(url)
    if problem:
        message = f"PostgreSQL at {make_url(url).render_as_string()} is not reachable: {problem}"
        if IN_CI:
            pytest.fail(message + " (CI requires PostgreSQL)")
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def pg_scratch_factory(pg_admin_url: str) -> Iterator:
    """Creates empty scratch databases on the test server; drops them all at session end.
    `template=` names a database to copy instead of the empty one (`CREATE DATABASE ... TEMPLATE`:
    a fraction of a second where migrating takes several)."""
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    created: list[str] = []

    def create(template: str | None = None) -> str:
        name = f"ipt_{uuid.uuid4().hex[:12]}"
        copy = f' TEMPLATE "{template}"' if template else ""
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"{copy}')
        created.append(name)
        return make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)

    yield create
    with admin.connect() as conn:
        for name in reversed(created):
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="session")
def pg_migrated_factory(pg_scratch_factory) -> Callable[[], str]:
    """New PostgreSQL databases at head, each a copy of one this worker migrated once (nobody
    connects to that one again: PostgreSQL copies only a database nobody is connected to).
    The migrations themselves are tested from an empty database in db/test_migrations.py."""
    template_url = pg_scratch_factory()
    owner = make_engine(template_url, owner=True)
    upgrade(owner)
    owner.dispose()
    template = make_url(template_url).database

    def create() -> str:
        return pg_scratch_factory(template=template)

    return create


@pytest.fixture(scope="session")
def sqlite_migrated_factory(tmp_path_factory) -> Callable[[Path], str]:
    """New SQLite files at head, each a copy of one file this worker migrated once: the URL of a
    copy at the path given. The template is left in rollback-journal mode, so that it is one file
    with nothing in a write-ahead log beside it; every engine turns WAL on again as it connects."""
    template = tmp_path_factory.mktemp("sqlite-template") / "migrated.sqlite3"
    owner = make_engine(f"sqlite:///{template}", owner=True)
    upgrade(owner)
    owner.dispose()
    with closing(sqlite3.connect(template)) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")

    def create(path: Path) -> str:
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"

    return create


def _test_database(kind: str, url: str) -> TestDatabase:
    return TestDatabase(kind, url, make_engine(url), make_engine(url, owner=True))


def _dispose(database: TestDatabase) -> None:
    database.engine.dispose()
    database.owner_engine.dispose()


@pytest.fixture(scope="session")
def pg_database(pg_migrated_factory) -> Iterator[TestDatabase]:
    database = _test_database("postgresql", pg_migrated_factory())
    yield database
    _dispose(database)


@pytest.fixture(scope="session")
def sqlite_database(tmp_path_factory, sqlite_migrated_factory) -> Iterator[TestDatabase]:
    path = tmp_path_factory.mktemp("sqlite") / "invoice_pipelines.sqlite3"
    database = _test_database("sqlite", sqlite_migrated_factory(path))
    yield database
    _dispose(database)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request) -> TestDatabase:
    """The same test on SQLite and on PostgreSQL."""
    fixture = {"sqlite": "sqlite_database", "postgresql": "pg_database"}[request.param]
    return request.getfixturevalue(fixture)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_db(request, tmp_path) -> Iterator[TestDatabase]:
    """A database of the test's own, on SQLite and on PostgreSQL: for checks over every
    organization, which must not see the rows other tests left in the shared ones. At head:
    a copy of the worker's migrated template (pg_migrated_factory, sqlite_migrated_factory)."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_migrated_factory")()
    else:
        url = request.getfixturevalue("sqlite_migrated_factory")(tmp_path / "own.sqlite3")
    database = _test_database(request.param, url)
    yield database
    _dispose(database)


# Tests that start `make run`, the browser, real processes (workers killed mid-work, the command
# line as a subprocess, a webserver) or OCR: marked `slow` here, in one list, so that
# `pytest -m "not slow"` gives a useful answer in minutes (`make test` runs everything). An entry
# is a test file, or a test of it (a name, or the start of names: parametrized variants and
# families); modules that mark themselves (test_make_run.py, the benchmarks) are not repeated.
SLOW_TESTS = {
    "invoice_pipelines_tests/test_browser.py": "the UI in Chromium",
    "invoice_pipelines_tests/test_webserver_smoke.py": "the webserver in a process of its own",
    "invoice_pipelines_tests/test_scale_out.py": "runs in several worker processes",
    "invoice_pipelines_tests/test_compute_logs_s3.py": "a run process and an S3 server",
    "invoice_pipelines_tests/test_code_server.py::test_a_run_starts_": "a code server and its runs",
    "invoice_pipelines_tests/billing/test_processes.py": "invoicing processes, one killed",
    "invoice_pipelines_tests/delivery/test_email.py::test_with_two_connections_a_kill_never": "a "
    "sender process killed",
    "invoice_pipelines_tests/delivery/test_email.py::test_a_sender_killed_mid_batch": "a sender "
    "process killed",
    "invoice_pipelines_tests/delivery/test_batch.py::test_a_sending_job_killed_mid_batch": "a "
    "sending process killed",
    "invoice_pipelines_tests/intake/test_cli_parse.py::test_scanned_image_goes_through_ocr": "OCR",
    "invoice_pipelines_tests/intake/test_cli_parse.py::test_human_summary_and_usage_errors": "the "
    "command line in processes",
    "invoice_pipelines_tests/intake/test_hostile_uploads.py::test_cli_refuses_": "the command "
    "line in processes",
    "invoice_pipelines_tests/intake/test_intake_jobs.py::test_scanned_image_goes_through_ocr": "OCR",
    "invoice_pipelines_tests/intake/test_field_accuracy.py::test_ocr_path_": "OCR",
    "invoice_pipelines_tests/intake/test_text_multilingual.py::test_demo_scan_is_validated": "OCR",
    "invoice_pipelines_tests/resources/test_ocr.py::test_tesseract_": "OCR",
    "invoice_pipelines_tests/resources/test_ocr_pages.py::test_a_turned_noisy_scan": "OCR",
    "invoice_pipelines_tests/resources/test_ocr.py::test_vision_ocr_pdf_": "OCR of every page",
    "invoice_pipelines_tests/resources/test_ocr_limits.py::test_tesseract_": "OCR",
    "invoice_pipelines_tests/devtools/demo/test_writers.py::test_demo_scan_is_read_by_each": "OCR",
    "invoice_pipelines_tests/resources/test_ocr_rapid.py::test_rapidocr_": "OCR",
    "invoice_pipelines_tests/delivery/test_peppol_kill.py": "a Peppol sender process killed",
    "invoice_pipelines_tests/devtools/demo/test_peppol_demo.py": "the demo's access point in a "
    "process of its own",
    "invoice_pipelines_tests/test_interrupted_suite.py": "a pytest of its own, stopped (one with "
    "a make run)",
    "invoice_pipelines_tests/test_assets_alone.py": "every asset materialized alone over GraphQL",
}


# what of ../shared the suite needs; a test needing a missing part skips outside CI
SHARED_PARTS = {
    "the sample e-invoices": SAMPLES_DIR,
    "the KoSIT XRechnung rules": XRECHNUNG_RULES_DIR,
    "the CEN EN 16931 rules": EN16931_RULES_DIR,
    "the OpenPEPPOL rules": PEPPOL_RULES_DIR,
    "the official Peppol examples": PEPPOL_SAMPLES_DIR,
    "the set-based floor": SHARED_DIR / "bench" / "setbased_limit.sql",
}


def missing_shared_parts() -> list[str]:
    return [f"{what} ({path})" for what, path in SHARED_PARTS.items() if not path.exists()]


def pytest_configure(config) -> None:
    """Every process a test starts ends when this pytest process (the controller, a worker) ends,
    however it ends: marked, and swept by a watchdog (processes.py)."""
    if Path("/proc/self/environ").exists():
        guard_this_process()


def pytest_sessionstart(session) -> None:
    """Under CI a missing part of ../shared stops the run before any test: each test needing it
    would skip, and a suite that tested less would still pass."""
    missing = missing_shared_parts()
    if missing and IN_CI and not hasattr(session.config, "workerinput"):
        pytest.exit(
            "CI is set and ../shared is incomplete; missing: " + "; ".join(missing), returncode=3
        )


def pytest_terminal_summary(terminalreporter) -> None:
    missing = missing_shared_parts()
    if missing:
        terminalreporter.write_line(
            "../shared is incomplete, the tests needing it were skipped: " + "; ".join(missing),
            yellow=True,
        )


def pytest_collection_modifyitems(config, items) -> None:
    """Mark the SLOW_TESTS; an entry that matches no test of a file collected whole is an error
    (a renamed test would otherwise drop out of the slow set unnoticed)."""
    collected = {item.nodeid.split("::", 1)[0] for item in items}
    matched = set()
    for item in items:
        for entry in SLOW_TESTS:
            if item.nodeid == entry or item.nodeid.startswith(
                entry if "::" in entry else entry + "::"
            ):
                item.add_marker(pytest.mark.slow)
                matched.add(entry)
    stale = [e for e in SLOW_TESTS if e.split("::", 1)[0] in collected and e not in matched]
    # tests picked by keyword, marker or node id (`file.py::test_x`, as stress-concurrency.sh
    # takes them) leave the rest of their files out on purpose
    picked = any("::" in arg for arg in config.args)
    if (
        stale
        and not picked
        and not config.getoption("keyword")
        and not config.getoption("markexpr")
    ):
        raise pytest.UsageError(f"SLOW_TESTS entries that match no test: {stale}")
    missing = [path for path in LONGEST_FIRST if not (REPOSITORY / path).is_file()]
    if missing:
        raise pytest.UsageError(f"LONGEST_FIRST names files that are gone: {missing}")
    if hasattr(config, "workerinput"):
        # spread over workers (make test: pytest -n): the slow tests first, longest first, so
        # that no worker starts a minute-long test when the others have nothing left to do
        workers = config.workerinput.get("workercount", 1)
        items[:] = _for_workers(sorted(items, key=_longest_first), workers)


REPOSITORY = Path(__file__).resolve().parents[1]
# the tests that take a minute or more (a `make run` each, some two), by their file
LONGEST_FIRST = (
    "invoice_pipelines_tests/test_make_run_stop.py",
    "invoice_pipelines_tests/test_make_run.py",
    "invoice_pipelines_tests/test_make_postgres.py",
    "invoice_pipelines_tests/test_interrupted_suite.py",
    "invoice_pipelines_tests/test_assets_alone.py",
)


def _longest_first(item: pytest.Item) -> tuple[int, int]:
    path = item.nodeid.split("::", 1)[0]
    if path in LONGEST_FIRST:
        return (0, LONGEST_FIRST.index(path))
    return (1 if item.get_closest_marker("slow") else 2, 0)


# how long a test of LONGEST_FIRST and another slow test take, against a test of the rest: only
# their ratio matters, for spreading them over the workers
LONGEST_WEIGHT, SLOW_WEIGHT = 60, 10


def _for_workers(ordered: list[pytest.Item], workers: int) -> list[pytest.Item]:
    """The slow tests (sorted longest first) spread over the workers' first shares.

    `--dist worksteal` hands each worker one contiguous share of the collection at the start
    (the first `len // workers`, then of the rest `len // (workers - 1)`, ...) and later moves
    tests from the end of the longest queue to an idle worker. Sorted alone, every slow test sat
    in the first share: one worker ran all the `make run`s, the browser and the killed processes
    one after the other while the others ran the quick tests. Here each share starts with about as
    much slow work as the others, then takes the quick tests in their order. A file's slow tests
    stay together (its module fixtures), and so do the LONGEST_FIRST files: their `make run`s
    and the pytest they stop keep running one at a time, in the first share, as before."""
    if workers < 2:
        return ordered
    sizes, left = [], len(ordered)
    for remaining in range(workers, 0, -1):
        sizes.append(left // remaining)
        left -= sizes[-1]
    shares: list[list[pytest.Item]] = [[] for _ in sizes]
    load = [0] * workers
    for group in _slow_files(ordered):
        room = [k for k in range(workers) if len(shares[k]) + len(group) <= sizes[k]]
        if not room:
            return ordered
        k = min(room, key=lambda k: load[k])
        shares[k] += group
        load[k] += sum(LONGEST_WEIGHT if _longest_first(i)[0] == 0 else SLOW_WEIGHT for i in group)
    quick = iter([item for item in ordered if _longest_first(item)[0] == 2])
    for k, share in enumerate(shares):
        share += itertools.islice(quick, sizes[k] - len(share))
    return [item for share in shares for item in share]


def _slow_files(ordered: list[pytest.Item]) -> list[list[pytest.Item]]:
    """The slow tests in runs of one file each, in their order; the LONGEST_FIRST files one run."""
    groups: list[list[pytest.Item]] = []

    def run(item: pytest.Item) -> str:
        return "" if _longest_first(item)[0] == 0 else item.nodeid.split("::", 1)[0]

    for item in ordered:
        if _longest_first(item)[0] == 2:
            continue
        if groups and run(groups[-1][0]) == run(item):
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def require_programs(*names: str) -> None:
    """System programs a test needs (tesseract, pdftoppm, pdftotext ...): missing ones fail the
    test under CI, where `make test` installs them, and skip it elsewhere with the reason."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        message = f"{', '.join(missing)} missing; run scripts/ensure-system-packages.sh"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
