"""The document_parser resource owns its worker processes: started at setup, gone at teardown."""

import os
import threading

from dagster import build_resources

from invoice_pipelines.intake.parser_resource import DocumentParser
from invoice_pipelines_tests.conftest import samples_dir

GOOD_CII = "ZUGFeRD-corpus/XML-Rechnung/CII/EN16931_Einfach.cii.xml"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_workers_live_exactly_as_long_as_the_resource():
    with build_resources({"parser": DocumentParser(workers=2)}) as resources:
        parser = resources.parser
        pids = parser.process_ids
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)
        [outcome] = parser.parse_many([((samples_dir() / GOOD_CII).read_bytes(), "a.xml")])
        assert outcome.status == "VALIDATED"
    # teardown stopped and reaped them
    assert parser.process_ids == []
    assert not any(_alive(pid) for pid in pids)


def test_two_callers_on_one_parser_each_get_their_own_outcomes():
    """parse_many is not re-entrant: the resource runs one batch at a time, so concurrent callers
    (threads of one run) never receive each other's results."""
    data = (samples_dir() / GOOD_CII).read_bytes()
    batches = {
        name: [(data.replace(b"471102", number.encode()), f"{number}.xml") for number in numbers]
        for name, numbers in {
            "first": [f"A-{i}" for i in range(6)],
            "second": [f"B-{i}" for i in range(6)],
        }.items()
    }
    results: dict[str, list] = {}
    errors: list[BaseException] = []
    with build_resources({"parser": DocumentParser(workers=1)}) as resources:

        def work(name: str) -> None:
            try:
                results[name] = resources.parser.parse_many(batches[name])
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(name,)) for name in batches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    for name, items in batches.items():
        numbers = [o.invoice.number if o.invoice else None for o in results[name]]
        assert numbers == [filename.removesuffix(".xml") for _, filename in items]


def test_the_size_and_time_limits_are_the_resource_fields():
    data = (samples_dir() / GOOD_CII).read_bytes()
    with build_resources({"parser": DocumentParser(workers=1, max_upload_bytes=100)}) as small:
        [outcome] = small.parser.parse_many([(data, "big.xml")])
    assert outcome.status == "FAILED"
    assert "100" in outcome.errors[0].message
    # a limit no real document can meet: schematron validation alone takes far longer
    with build_resources({"parser": DocumentParser(workers=1, timeout_seconds=0.001)}) as hasty:
        [outcome] = hasty.parser.parse_many([(data, "slow.xml")])
    assert outcome.status == "FAILED"
    assert "timed out" in outcome.errors[0].message


def test_a_stream_in_the_runs_own_workers_goes_batch_by_batch():
    """Without a parse server, parse_stream is parse_many per batch: each batch's outcomes in
    order, the next batch taken only once those of the one before it are handed out, and the
    resource held (another caller waits) until the stream ends."""
    data = (samples_dir() / GOOD_CII).read_bytes()
    sizes = [2, 0, 3]
    batches = [
        [(data.replace(b"471102", f"W{k}-{i}".encode()), f"w{k}-{i}.xml") for i in range(n)]
        for k, n in enumerate(sizes)
    ]
    events: list[str] = []

    def taken():
        for k, items in enumerate(batches):
            events.append(f"take {k}")
            yield items

    with build_resources({"parser": DocumentParser(workers=1)}) as resources:
        got = []
        for k, outcomes in enumerate(resources.parser.parse_stream(taken())):
            assert resources.parser._lock.locked()
            events.append(f"got {k}")
            got.append([o.invoice.number if o.invoice else None for o in outcomes])
        assert not resources.parser._lock.locked()
    assert events == ["take 0", "got 0", "take 1", "got 1", "take 2", "got 2"]
    assert got == [[f"W{k}-{i}" for i in range(n)] for k, n in enumerate(sizes)]
