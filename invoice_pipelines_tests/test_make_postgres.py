"""`make migrate`, `make seed-demo` and `make run` on PostgreSQL take three logins (issues 38 and
54, docs/postgresql-and-scale-out.md): migrations log in as the tables' owner (OWNER_DB_URL), and
seed-demo, the code server, the webserver, the daemon and the runs as the runtime role
(INVOICE_PIPELINES_DB_URL), which owns nothing, has no BYPASSRLS and is a member neither of the
owner nor of the system role, and, for the work over every organization, as the system login
(INVOICE_PIPELINES_SYSTEM_DB_URL).

Each test makes a database and three roles of its own on the test server (the roles are the
server's, so their names are unique) and drops them at the end. The suite's allowance to run as
the owner (conftest) is taken away: what is tested is the default a user gets.

`make run` here is started as a supervisor, a container or a CI job starts it (`setsid make run
&`: no terminal, SIGINT and SIGQUIT ignored) and stopped by a TERM to its process group: no
service ignores the stop, and nothing of it is left 10 s later (test_make_run_stop.py's check).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from invoice_pipelines_devtools.demo.seed import DEMO_ORGANIZATIONS
from invoice_pipelines_tests.processes import start_owned
from invoice_pipelines_tests.test_make_run import (
    REPO,
    START_SECONDS,
    _free_port,
    started_by,
)
from invoice_pipelines_tests.test_make_run_stop import (
    Instance,
    _ignore_interrupts,
    assert_no_service_ignores_a_stop,
    assert_nothing_left,
    of_this_checkout,
)

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
DEMO_SECONDS = 300  # a deadline, not a measurement


@dataclass
class TwoRoles:
    owner: str  # role names
    runtime: str
    system: str
    owner_url: str
    runtime_url: str
    system_url: str
    admin_url: str  # the server's superuser, to look from outside

    def superuser(self, sql: str, **params):
        engine = create_engine(self.admin_url)
        try:
            with engine.connect() as conn:
                return conn.execute(text(sql), params).all()
        finally:
            engine.dispose()


# what the demo's supplier invoices become (the German organization's, the US one's as QBO bills)
DEMO_STATUSES = {"VALIDATED": 7, "EXPORTED": 3}


@pytest.fixture
def two_roles(pg_admin_url: str) -> Iterator[TwoRoles]:
    suffix = uuid.uuid4().hex[:8]
    owner, runtime, database = f"ipt_owner_{suffix}", f"ipt_runtime_{suffix}", f"ipt_make_{suffix}"
    system = f"ipt_system_{suffix}"
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        # the owner as a deployment has it: no superuser, allowed to create invoice_app
        conn.exec_driver_sql(f'CREATE ROLE "{owner}" LOGIN NOSUPERUSER NOBYPASSRLS CREATEROLE')
        # the runtime role and the system login as the docs create them, once
        for login in (runtime, system):
            conn.exec_driver_sql(
                f'CREATE ROLE "{login}" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE '
                "INHERIT"
            )
        conn.exec_driver_sql(f'CREATE DATABASE "{database}" OWNER "{owner}"')
    url = make_url(pg_admin_url).set(database=database)
    try:
        yield TwoRoles(
            owner,
            runtime,
            system,
            url.set(username=owner).render_as_string(hide_password=False),
            url.set(username=runtime).render_as_string(hide_password=False),
            url.set(username=system).render_as_string(hide_password=False),
            url.render_as_string(hide_password=False),
        )
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            for role in (runtime, system, owner):
                _drop_role(conn, role)
        admin.dispose()


def _drop_role(conn, role: str) -> None:
    """DROP ROLE, again when PostgreSQL says "tuple concurrently deleted": another test's roles,
    granted the same application role, change the same catalog rows at the same moment (seen in a
    CI run, in this fixture's teardown)."""
    for attempt in range(5):
        try:
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
            return
        except DBAPIError as exc:
            if "concurrently" not in str(exc.orig) or attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {**os.environ, "INVOICE_PIPELINES_DATA_DIR": str(tmp_path / "data"), **values}
    for name in (
        "INVOICE_PIPELINES_ALLOW_OWNER_RUNTIME",  # conftest's allowance: not the user's default
        "OWNER_DB_URL",
        "INVOICE_PIPELINES_SYSTEM_DB_URL",
        "DAGSTER_HOME",
        "INVOICE_PIPELINES_UPLOAD_DIR",
        "INVOICE_PIPELINES_QBO_TOKEN_URL",
        "INVOICE_PIPELINES_QBO_TOKEN_KEY",
        "MAKEFLAGS",
        "MFLAGS",
        # under `make test` (CI) MAKELEVEL is 1: make would then print "make[1]: Leaving
        # directory" after the stop line, which a user's `make run` never does
        "MAKELEVEL",
    ):
        if name not in values:
            env.pop(name, None)
    return env


def _make(env: dict[str, str], *targets: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *targets],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_make_migrate_logs_in_as_the_owner_and_seed_demo_as_the_runtime_role(
    two_roles: TwoRoles, tmp_path: Path
) -> None:
    # the runtime URL alone: no owner to migrate as, one sentence and nothing created
    alone = _make(_env(tmp_path, INVOICE_PIPELINES_DB_URL=two_roles.runtime_url), "migrate")
    assert alone.returncode == 2, alone.stdout + alone.stderr
    assert "make migrate: INVOICE_PIPELINES_DB_URL names PostgreSQL, so migrations need the " in (
        alone.stderr
    )
    assert "Traceback" not in alone.stderr
    assert two_roles.superuser("SELECT to_regclass('organizations')") == [(None,)]

    # the owner's and the runtime login's, but no system login: one sentence, nothing created
    no_system = _make(
        _env(
            tmp_path,
            INVOICE_PIPELINES_DB_URL=two_roles.runtime_url,
            OWNER_DB_URL=two_roles.owner_url,
        ),
        "migrate",
    )
    assert no_system.returncode == 2, no_system.stdout + no_system.stderr
    assert (
        "make migrate: the work over every organization (sensors, schedules) needs a login of its "
        "own: set INVOICE_PIPELINES_SYSTEM_DB_URL" in no_system.stderr
    ), no_system.stderr
    assert two_roles.superuser("SELECT to_regclass('organizations')") == [(None,)]

    # the owner's URL as the runtime one: migrated, then refused as what the services would be
    owner_as_runtime = _make(
        _env(
            tmp_path,
            INVOICE_PIPELINES_DB_URL=two_roles.owner_url,
            INVOICE_PIPELINES_SYSTEM_DB_URL=two_roles.system_url,
            OWNER_DB_URL=two_roles.owner_url,
        ),
        "migrate",
    )
    assert owner_as_runtime.returncode == 2
    assert (
        f"make migrate: the pipelines log in as '{two_roles.owner}', the owner of the tables"
        in owner_as_runtime.stderr
    ), owner_as_runtime.stderr

    # the documented default: the owner migrates, the runtime role gets invoice_app and seeds,
    # the system login gets invoice_app_system
    env = _env(
        tmp_path,
        INVOICE_PIPELINES_DB_URL=two_roles.runtime_url,
        INVOICE_PIPELINES_SYSTEM_DB_URL=two_roles.system_url,
        OWNER_DB_URL=two_roles.owner_url,
    )
    done = _make(env, "migrate", "seed-demo")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"granted 'invoice_app' to '{two_roles.runtime}'" in done.stdout
    assert f"granted 'invoice_app_system' to '{two_roles.system}'" in done.stdout
    assert f"the pipelines log in as '{two_roles.runtime}'" in done.stdout
    assert f"the work over every organization logs in as '{two_roles.system}'" in done.stdout
    owners = two_roles.superuser(
        "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
    )
    assert owners == [(two_roles.owner,)]
    # the runtime role owns nothing, bypasses nothing, is a member of invoice_app and neither of
    # the system role nor of the owner; the system login is a member of the system role
    [(owned, bypass, app, system, of_owner, system_login)] = two_roles.superuser(
        "SELECT (SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
        "        WHERE r.rolname = :runtime), "
        "r.rolbypassrls OR r.rolsuper, pg_has_role(:runtime, 'invoice_app', 'MEMBER'), "
        "pg_has_role(:runtime, 'invoice_app_system', 'MEMBER'), "
        "pg_has_role(:runtime, :owner, 'MEMBER'), "
        "pg_has_role(:system, 'invoice_app_system', 'MEMBER') "
        "FROM pg_roles r WHERE r.rolname = :runtime",
        runtime=two_roles.runtime,
        owner=two_roles.owner,
        system=two_roles.system,
    )
    assert (owned, bypass, app, system, of_owner, system_login) == (
        0,
        False,
        True,
        False,
        False,
        True,
    )
    slugs = {slug for (slug,) in two_roles.superuser("SELECT slug FROM organizations")}
    assert slugs == {spec["org"]["slug"] for spec in DEMO_ORGANIZATIONS}

    # again: nothing to migrate or grant, the demo already there
    again = _make(env, "migrate", "seed-demo")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "granted" not in again.stdout


@pytest.mark.slow
@pytest.mark.timeout(900, method="signal")
def test_make_run_on_postgresql_connects_as_the_runtime_role_and_the_system_login_only(
    two_roles: TwoRoles, tmp_path: Path
) -> None:
    env = _env(
        tmp_path,
        INVOICE_PIPELINES_DB_URL=two_roles.runtime_url,
        INVOICE_PIPELINES_SYSTEM_DB_URL=two_roles.system_url,
        OWNER_DB_URL=two_roles.owner_url,
        HOST="127.0.0.1",
        PORT=str(_free_port()),
        INVOICE_PIPELINES_QBO_BASE_URL=f"http://127.0.0.1:{_free_port()}",
        INVOICE_PIPELINES_SMTP_PORT=str(_free_port()),
        INVOICE_PIPELINES_SMS_URL=f"http://127.0.0.1:{_free_port()}",
        INVOICE_PIPELINES_PEPPOL_AP_URL=f"http://127.0.0.1:{_free_port()}",
        INVOICE_PIPELINES_DEMO_IMAP_PORT=str(_free_port()),
        INVOICE_PIPELINES_DEMO_MAIL_SMTP_PORT=str(_free_port()),
    )
    log = tmp_path / "make-run.log"
    with log.open("wb") as out:
        # as a supervisor, a container or a CI job starts it: `setsid make run &`, no terminal,
        # SIGINT and SIGQUIT ignored from the start; marked, so nothing it starts outlives the
        # test or the suite (processes.py)
        owned = start_owned(
            ["make", "run"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_ignore_interrupts,
        )
    proc = owned.proc
    data_dir = str(tmp_path / "data")
    try:
        deadline = time.monotonic() + START_SECONDS
        while "Dagster UI is up" not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text(errors="replace")[-4000:]
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-4000:]
            time.sleep(1)
        # the demo at work as the runtime role: mueller's four supplier invoices and the two its
        # mailbox got read and VALIDATED by the intake's runs, brandt's one received over Peppol
        # VALIDATED too, acme's three pushed to its QuickBooks as bills (EXPORTED), the batch
        # jobs invoiced
        deadline = time.monotonic() + DEMO_SECONDS
        while True:
            statuses = dict(
                two_roles.superuser(
                    "SELECT status, count(*) FROM incoming_invoices GROUP BY status"
                )
            )
            jobs = [s for (s,) in two_roles.superuser("SELECT status FROM batch_jobs")]
            if (statuses == DEMO_STATUSES and set(jobs) == {"completed"}) or (
                time.monotonic() > deadline
            ):
                break
            time.sleep(2)
        assert statuses == DEMO_STATUSES, statuses
        assert jobs and set(jobs) == {"completed"}, jobs
        # every connection the services and runs hold to the database is the runtime role's or,
        # for the work over every organization, the system login's (between runs the services
        # may hold only system connections: their sensors read every organization)
        logins = two_roles.superuser(
            "SELECT usename, count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() GROUP BY usename"
        )
        names = {name for name, _ in logins}
        assert names and names <= {two_roles.runtime, two_roles.system}, logins
        procs = started_by(proc.pid)
        assert_no_service_ignores_a_stop(procs)
        os.killpg(proc.pid, signal.SIGTERM)  # kill -TERM -- -<its process group>
        assert_nothing_left(Instance(proc, log, int(env["PORT"])), tmp_path / "data", procs)
    finally:
        owned.kill()
        for p in of_this_checkout(data_dir):
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
