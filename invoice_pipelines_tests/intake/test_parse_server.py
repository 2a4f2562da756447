"""The parse server: a warm pool that outlives the runs using it (document_parser with
keep_warm_seconds). Shared by runs one after another and at once, and when it dies mid-document
the run parses the rest itself: every document gets exactly one outcome."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from dagster import build_resources

from invoice_pipelines.einvoice.verdict import WARM_UP
from invoice_pipelines.intake.domain.parse import ParseOutcome, parse_document
from invoice_pipelines.intake.parser_resource import DocumentParser
from invoice_pipelines.resources.workers.parse_server import (
    ParseServerClient,
    ServerUnavailable,
    server_paths,
)
from invoice_pipelines_tests.conftest import samples_dir

GOOD_CII = "ZUGFeRD-corpus/XML-Rechnung/CII/EN16931_Einfach.cii.xml"
_SELF = "invoice_pipelines_tests.intake.test_parse_server"


def numbered(number: str) -> bytes:
    return (samples_dir() / GOOD_CII).read_bytes().replace(b"471102", number.encode())


def slow_or_misbehaving_parse(data: bytes, filename: str, **options: object) -> ParseOutcome:
    """Run inside the server's workers: slow, hanging or dying on request."""
    if filename.startswith("slow"):
        time.sleep(1.0)
    if filename == "hang.xml":
        time.sleep(120)
    if filename == "crash.xml":
        os._exit(3)
    return parse_document(data, filename, **options)  # type: ignore[arg-type]


class TestParser(DocumentParser):
    """Workers that skip the schematron warm-up (the documents here do not need it warm)."""

    __test__ = False
    target = f"{_SELF}:slow_or_misbehaving_parse"
    warm_up = ""


class WarmTestParser(TestParser):
    """The same, with the workers' own warm-up: each takes a document only once its rules are
    compiled, so a document's time limit measures the document alone."""

    __test__ = False
    warm_up = WARM_UP


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as gone
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited != pid
    except ChildProcessError:
        return True


def _wait_gone(pid: int, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_runs_one_after_another_share_one_warm_pool(server_dir):
    """The real parser (schematrons compiled once, in the server): the second run starts no
    workers and finds the same ones warm."""
    seen = []
    for number in ("RUN-1", "RUN-2"):
        parser = DocumentParser(workers=1, keep_warm_seconds=60, server_dir=server_dir)
        with build_resources({"parser": parser}) as resources:
            [outcome] = resources.parser.parse_many([(numbered(number), f"{number}.xml")])
            assert outcome.status == "VALIDATED" and outcome.invoice.number == number
            assert resources.parser.process_ids == []  # no workers of the run's own
            seen.append((resources.parser.server_pid, resources.parser._server.hello["workers"]))
    (first_pid, first_workers), (second_pid, second_workers) = seen
    assert first_pid == second_pid and _alive(first_pid)
    assert first_workers == second_workers and len(first_workers) == 1
    # the outcome is the one a run's own worker would give
    with build_resources({"parser": DocumentParser(workers=1)}) as own:
        [expected] = own.parser.parse_many([(numbered("RUN-3"), "RUN-3.xml")])
    parser = DocumentParser(workers=1, keep_warm_seconds=60, server_dir=server_dir)
    with build_resources({"parser": parser}) as resources:
        [outcome] = resources.parser.parse_many([(numbered("RUN-3"), "RUN-3.xml")])
    assert outcome.to_json_dict() == expected.to_json_dict()


def test_two_runs_at_once_each_get_their_own_outcomes(server_dir):
    batches = {
        run: [(numbered(f"{run}-{i}"), f"slow-{run}-{i}.xml") for i in range(5)]
        for run in ("A", "B")
    }
    results: dict[str, list] = {}
    servers: dict[str, int] = {}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            parser = TestParser(workers=2, keep_warm_seconds=60, server_dir=server_dir)
            with build_resources({"parser": parser}) as resources:
                results[name] = resources.parser.parse_many(batches[name])
                servers[name] = resources.parser.server_pid
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert servers["A"] == servers["B"]  # one server, started once
    for name in batches:
        assert [o.invoice.number for o in results[name]] == [f"{name}-{i}" for i in range(5)]


def test_a_server_that_dies_mid_document_costs_no_document(server_dir):
    """SIGKILL while the server parses: the run parses what has no outcome yet in workers of its
    own; every document ends with exactly its own outcome, in order."""
    items = [(numbered(f"K-{i}"), f"slow-{i}.xml") for i in range(6)]
    parser = TestParser(workers=1, keep_warm_seconds=60, server_dir=server_dir)
    with build_resources({"parser": parser}) as resources:
        server = resources.parser.server_pid
        killer = threading.Timer(1.5, os.kill, args=(server, signal.SIGKILL))
        killer.start()
        try:
            outcomes = resources.parser.parse_many(items)
        finally:
            killer.cancel()
        assert [o.invoice.number for o in outcomes] == [f"K-{i}" for i in range(6)]
        assert all(o.status == "VALIDATED" for o in outcomes)
        assert _wait_gone(server)
        assert resources.parser.server_pid is None
        assert resources.parser.process_ids  # the rest went to the run's own worker
    # the next run starts a new server
    with build_resources({"parser": parser.model_copy()}) as resources:
        [outcome] = resources.parser.parse_many([(numbered("K-7"), "k7.xml")])
        assert outcome.invoice.number == "K-7"
        assert resources.parser.server_pid not in (None, server)


def test_timeouts_and_crashes_in_the_server_fail_their_document_alone(server_dir):
    items = [
        (numbered("T-1"), "a.xml"),
        (b"<x/>", "hang.xml"),
        (b"<x/>", "crash.xml"),
        (numbered("T-2"), "b.xml"),
    ]
    # warm workers (a worker takes a document only once its rules are compiled; the one started
    # in place of the crashed worker too): the limit is far above what a good document takes
    # in a warm worker on a loaded machine and far below the hang's 120 s. (Cold, a fresh
    # worker compiled the rules within the first document's limit: at 3 s, with CI and two busy
    # processes beside, the good documents timed out too.)
    parser = WarmTestParser(
        workers=2, timeout_seconds=6, keep_warm_seconds=60, server_dir=server_dir
    )
    with build_resources({"parser": parser}) as resources:
        outcomes = resources.parser.parse_many(items)
        assert resources.parser.server_pid is not None  # served, not fallen back
    assert [o.status for o in outcomes] == ["VALIDATED", "FAILED", "FAILED", "VALIDATED"], [
        o.errors[0].message if o.errors else "" for o in outcomes
    ]
    assert "timed out after 6 s" in outcomes[1].errors[0].message
    assert "crashed (exit code 3)" in outcomes[2].errors[0].message
    # the server replaced both workers and goes on
    with build_resources({"parser": parser.model_copy()}) as resources:
        [again] = resources.parser.parse_many([(numbered("T-3"), "c.xml")])
    assert again.status == "VALIDATED"


def test_an_idle_server_stops_and_removes_its_socket(server_dir):
    parser = TestParser(workers=1, keep_warm_seconds=1, server_dir=server_dir)
    with build_resources({"parser": parser}) as resources:
        resources.parser.parse_many([(numbered("I-1"), "i.xml")])
        server = resources.parser.server_pid
        socket_path = resources.parser._server.paths.socket
    assert _wait_gone(server)
    assert not socket_path.exists()
    with build_resources({"parser": parser.model_copy()}) as resources:
        resources.parser.parse_many([(numbered("I-2"), "j.xml")])
        assert resources.parser.server_pid != server


def test_a_different_configuration_gets_a_server_of_its_own(server_dir):
    pids = set()
    for timeout in (20.0, 25.0):
        parser = TestParser(
            workers=1, timeout_seconds=timeout, keep_warm_seconds=60, server_dir=server_dir
        )
        with build_resources({"parser": parser}) as resources:
            resources.parser.parse_many([(numbered("C-1"), "c.xml")])
            pids.add(resources.parser.server_pid)
    assert len(pids) == 2


def test_a_folder_others_may_enter_is_refused_and_the_run_parses_itself(tmp_path):
    folder = tmp_path / "open"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    parser = TestParser(workers=1, keep_warm_seconds=60, server_dir=str(folder))
    with pytest.raises(ServerUnavailable, match="open to other users"):
        server_paths(parser.server_spec(), folder)
    with build_resources({"parser": parser}) as resources:
        assert resources.parser.server_pid is None and resources.parser.process_ids
        [outcome] = resources.parser.parse_many([(numbered("O-1"), "o.xml")])
    assert outcome.invoice.number == "O-1"
    assert list(Path(folder).iterdir()) == []


def test_no_server_is_started_when_asked_not_to(server_dir):
    with pytest.raises(ServerUnavailable):
        ParseServerClient.connect(TestParser(workers=1).server_spec(), server_dir, start=False)


_CONNECT = """
import sys
from dagster import build_resources
from invoice_pipelines_tests.intake.test_parse_server import TestParser, numbered
parser = TestParser(workers=1, keep_warm_seconds=600, server_dir=sys.argv[1])
with build_resources({"parser": parser}) as resources:
    [outcome] = resources.parser.parse_many([(numbered("OWN-1"), "own.xml")])
    assert outcome.invoice.number == "OWN-1", outcome
"""


def test_the_server_ends_with_the_process_that_owns_it(server_dir):
    """The owner is the parent of the run that started the server (for runs of Dagster's default
    launcher: the code location's server). When it ends, so does the parse server, however long
    it was to stay warm."""
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; "
            "subprocess.run([sys.executable, '-c', sys.argv[1], sys.argv[2]], check=True); "
            "print('ran', flush=True); time.sleep(600)",
            _CONNECT,
            server_dir,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout.readline().strip() == "ran"
        [pid_file] = Path(server_dir).glob("*.pid")
        server = int(pid_file.read_text())
        assert _alive(server)
    finally:
        owner.kill()
        owner.wait()
    assert _wait_gone(server)
    assert not pid_file.exists()


def test_a_run_can_wait_until_the_servers_workers_are_warm(server_dir):
    """wait_ready (the bench keeps the warm-up apart with it): answered once every worker of the
    server is warm, while the run's documents still go through the same connection."""
    parser = TestParser(workers=2, keep_warm_seconds=60, server_dir=server_dir)
    with build_resources({"parser": parser}) as resources:
        assert resources.parser.wait_ready(60) == []
        assert resources.parser.process_ids == []  # the server's workers, none of the run's own
        assert len(resources.parser._server.hello["workers"]) == 2
        [outcome] = resources.parser.parse_many([(numbered("READY-1"), "READY-1.xml")])
        assert outcome.invoice is not None and outcome.invoice.number == "READY-1"


def parse_and_stamp(data: bytes, filename: str, **options: object) -> ParseOutcome:
    """As slow_or_misbehaving_parse, and the outcome says which process read the document."""
    outcome = slow_or_misbehaving_parse(data, filename, **options)
    outcome.raw["parsed_by"] = os.getpid()
    return outcome


class StampingParser(TestParser):
    __test__ = False
    target = f"{_SELF}:parse_and_stamp"


def _numbers(outcomes) -> list[str | None]:
    return [o.invoice.number if o.invoice else None for o in outcomes]


def test_a_stream_hands_out_every_outcome_once_in_order_with_the_next_batch_sent_ahead(
    server_dir,
):
    """parse_stream through the server: each batch's outcomes in input order, every document
    exactly once, and batch k+1 taken (read and sent) before the outcomes of batch k are handed
    out, never further ahead."""
    sizes = [3, 1, 0, 4, 2]  # an empty batch (a group whose files could not be read) too
    batches = [
        [(numbered(f"S{k}-{i}"), f"s{k}-{i}.xml") for i in range(n)] for k, n in enumerate(sizes)
    ]
    events: list[str] = []

    def taken():
        for k, items in enumerate(batches):
            events.append(f"take {k}")
            yield items

    parser = StampingParser(workers=2, keep_warm_seconds=60, server_dir=server_dir)
    with build_resources({"parser": parser}) as resources:
        got = []
        for k, outcomes in enumerate(resources.parser.parse_stream(taken())):
            events.append(f"got {k}")
            got.append(outcomes)
        server_workers = set(resources.parser._server.hello["workers"])
        assert resources.parser.process_ids == []  # all through the server
    assert events == [
        "take 0", "take 1", "got 0", "take 2", "got 1", "take 3", "got 2", "take 4", "got 3",
        "got 4",
    ]  # fmt: skip
    assert [_numbers(outcomes) for outcomes in got] == [
        [f"S{k}-{i}" for i in range(n)] for k, n in enumerate(sizes)
    ]
    assert {o.raw["parsed_by"] for outcomes in got for o in outcomes} <= server_workers


def test_a_stream_given_up_early_frees_the_parser_and_its_late_outcomes_are_dropped(server_dir):
    """The caller stops after the first batch while the second is still parsed by the server:
    the resource is free again at once, and the second batch's outcomes, arriving later on the
    same connection, are not taken for those of the next call (documents are numbered per
    connection, not per call)."""
    first = [(numbered("G-0"), "g0.xml")]
    second = [(numbered(f"LATE-{i}"), f"slow-late-{i}.xml") for i in range(2)]
    parser = TestParser(workers=1, keep_warm_seconds=60, server_dir=server_dir)
    with build_resources({"parser": parser}) as resources:
        stream = resources.parser.parse_stream([first, second])
        assert _numbers(next(stream)) == ["G-0"]
        assert resources.parser._lock.locked()  # held while the stream is open
        stream.close()
        assert not resources.parser._lock.locked()
        # queued behind the two late documents: their outcomes come first on the connection
        again = resources.parser.parse_many(
            [(numbered(f"NEXT-{i}"), f"n{i}.xml") for i in range(2)]
        )
        assert _numbers(again) == ["NEXT-0", "NEXT-1"]
        assert resources.parser.server_pid is not None  # still served


def test_a_server_killed_mid_stream_leaves_no_document_without_its_one_outcome(server_dir):
    """SIGKILL between two batches of a stream: batch 0 came back from the server; batch 1 was
    sent and is being parsed (its documents take a second each); batch 2 is read after the kill.
    The documents of both without an outcome are parsed in the run's own workers, and batch 3
    goes there too: every document ends with exactly its own outcome, batch by batch, in order."""
    batches = [
        [(numbered("D0-0"), "d0-0.xml"), (numbered("D0-1"), "d0-1.xml")],
        [(numbered("D1-0"), "slow-d1-0.xml"), (numbered("D1-1"), "slow-d1-1.xml")],
        [(numbered("D2-0"), "d2-0.xml")],
        [(numbered("D3-0"), "d3-0.xml"), (numbered("D3-1"), "d3-1.xml")],
    ]
    parser = StampingParser(workers=1, keep_warm_seconds=60, server_dir=server_dir)
    with build_resources({"parser": parser}) as resources:
        server = resources.parser.server_pid
        server_workers = set(resources.parser._server.hello["workers"])

        def killing():
            for k, items in enumerate(batches):
                if k == 2:  # batch 0's outcomes are out, batch 1 is at the server
                    os.kill(server, signal.SIGKILL)
                    assert _wait_gone(server)
                yield items

        got = list(resources.parser.parse_stream(killing()))
        assert resources.parser.server_pid is None
        own = set(resources.parser.process_ids)
        assert own  # the rest went to the run's own worker
    assert [_numbers(outcomes) for outcomes in got] == [
        [filename.removesuffix(".xml").removeprefix("slow-").upper() for _, filename in items]
        for items in batches
    ]
    assert all(o.status == "VALIDATED" for outcomes in got for o in outcomes)
    by = [[o.raw["parsed_by"] for o in outcomes] for outcomes in got]
    assert set(by[0]) <= server_workers
    assert set(by[1]) <= server_workers | own  # whatever the server finished before it died
    assert set(by[2] + by[3]) <= own
