"""`pytest -m "not slow"` leaves out what starts make run, the browser, real processes or OCR."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from invoice_pipelines_tests import conftest


class _Item:
    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
        self.marks: list[str] = []

    def add_marker(self, mark) -> None:
        self.marks.append(mark.name)

    def get_closest_marker(self, name: str):
        return name if name in self.marks else None


def _config(keyword: str = "", markexpr: str = "", args: tuple[str, ...] = (), **more):
    return SimpleNamespace(
        getoption={"keyword": keyword, "markexpr": markexpr}.get, args=list(args), **more
    )


def test_the_listed_tests_are_marked_slow_and_the_others_not():
    items = [
        _Item("invoice_pipelines_tests/test_browser.py::test_a_new_user_sees_the_pipeline"),
        _Item("invoice_pipelines_tests/resources/test_ocr.py::test_tesseract_ocr_pdf_x[a]"),
        _Item("invoice_pipelines_tests/resources/test_ocr.py::test_vision_ocr_pdf_sends_each"),
        _Item("invoice_pipelines_tests/resources/test_ocr.py::test_vision_retries_after_503"),
        _Item("invoice_pipelines_tests/test_cli.py::test_an_unknown_organization_is_one"),
    ]
    entries = {
        "invoice_pipelines_tests/test_browser.py": "browser",
        "invoice_pipelines_tests/resources/test_ocr.py::test_tesseract_": "OCR",
        "invoice_pipelines_tests/resources/test_ocr.py::test_vision_ocr_pdf_": "OCR",
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conftest, "SLOW_TESTS", entries)
        conftest.pytest_collection_modifyitems(_config(), items)
    assert [item.marks for item in items] == [["slow"], ["slow"], ["slow"], [], []]


def test_an_entry_that_matches_no_test_of_a_collected_file_is_an_error():
    items = [_Item("invoice_pipelines_tests/resources/test_ocr.py::test_vision_retries")]
    entries = {"invoice_pipelines_tests/resources/test_ocr.py::test_renamed_away": "OCR"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conftest, "SLOW_TESTS", entries)
        with pytest.raises(pytest.UsageError, match="test_renamed_away"):
            conftest.pytest_collection_modifyitems(_config(), items)
        # with -k the file's other tests may be deselected: no verdict then
        conftest.pytest_collection_modifyitems(_config(keyword="vision"), items)
        # nor when tests are named by node id (scripts/stress-concurrency.sh file.py::test_x)
        conftest.pytest_collection_modifyitems(
            _config(args=("invoice_pipelines_tests/resources/test_ocr.py::test_vision_retries",)),
            items,
        )
        # a file named whole still gets the verdict
        with pytest.raises(pytest.UsageError, match="test_renamed_away"):
            conftest.pytest_collection_modifyitems(
                _config(args=("invoice_pipelines_tests/resources/test_ocr.py",)), items
            )


def test_every_entry_names_a_test_file_that_exists():
    from pathlib import Path

    root = Path(conftest.__file__).resolve().parents[1]
    for entry in conftest.SLOW_TESTS:
        assert (root / entry.split("::", 1)[0]).is_file(), entry


def test_a_worker_of_pytest_n_takes_the_make_run_tests_first_then_the_slow_ones():
    """make test spreads the suite over workers: a minute-long test started last would keep the
    run going after every other worker has finished (in one process the order is the files')."""
    names = [
        "invoice_pipelines_tests/core/test_money.py::test_rounding",
        "invoice_pipelines_tests/test_browser.py::test_a_new_user_sees_the_pipeline",
        "invoice_pipelines_tests/test_make_postgres.py::test_make_run_on_postgresql",
        "invoice_pipelines_tests/test_cli.py::test_an_unknown_organization_is_one",
        "invoice_pipelines_tests/test_make_run_stop.py::test_a_backfill_stopped_mid_run",
    ]
    entries = {"invoice_pipelines_tests/test_browser.py": "browser"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conftest, "SLOW_TESTS", entries)
        in_one_process = [_Item(name) for name in names]
        conftest.pytest_collection_modifyitems(_config(), in_one_process)
        on_a_worker = [_Item(name) for name in names]
        conftest.pytest_collection_modifyitems(_config(workerinput={}), on_a_worker)
    assert [item.nodeid for item in in_one_process] == names
    assert [item.nodeid for item in on_a_worker] == [
        names[4],  # test_make_run_stop.py, the longest
        names[2],
        names[1],  # slow
        names[0],  # the rest in their order
        names[3],
    ]


def test_each_of_three_workers_starts_with_its_part_of_the_slow_tests():
    """`--dist worksteal` gives each worker a contiguous third of the collection to start with:
    the slow tests are spread over the thirds' beginnings instead of all falling into the first
    third (one worker running every one of them after the other); the make run files stay
    together in the first third, one make run at a time as before."""
    stop = "invoice_pipelines_tests/test_make_run_stop.py::test_a_backfill_stopped_"
    names = [f"invoice_pipelines_tests/core/test_money.py::test_{n}" for n in range(7)]
    names[2:2] = [
        "invoice_pipelines_tests/test_browser.py::test_a_new_user_sees_the_pipeline",
        "invoice_pipelines_tests/test_make_run.py::test_make_run_serves_the_ui",
        stop + "mid_run",
        "invoice_pipelines_tests/resources/test_ocr.py::test_tesseract_reads_a_scan",
        "invoice_pipelines_tests/test_browser.py::test_the_lineage_is_drawn",
    ]
    entries = {
        "invoice_pipelines_tests/test_browser.py": "browser",
        "invoice_pipelines_tests/resources/test_ocr.py::test_tesseract_": "OCR",
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conftest, "SLOW_TESTS", entries)
        items = [_Item(name) for name in names]
        conftest.pytest_collection_modifyitems(_config(workerinput={"workercount": 3}), items)
    order = [item.nodeid for item in items]
    money = names[:2] + names[7:]  # the quick tests, in their order
    assert (
        order
        == [  # as worksteal splits 12 tests over 3 workers: 4 each
            stop + "mid_run",  # the longest file first, then the other make run
            names[3],
            *money[0:2],
            names[2],  # the second third: the browser's two tests together
            names[6],
            *money[2:4],
            names[5],  # the last third: OCR
            *money[4:7],
        ]
    )
