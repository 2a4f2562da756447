"""The kinds as a value and a typed kind (issues 48 and 57): the areas' kinds are one read-only
value (`queue.known_kinds.Kinds`, built by `areas.kinds()` and handed over), no module keeps a
registry of kinds or fills one at import, the value names the real `JobKind` (never `Any`), and
`JobKind` groups its callables instead of holding them loose."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import invoice_pipelines
from invoice_pipelines import areas
from invoice_pipelines.core.batch_kinds import KindName
from invoice_pipelines.queue.defs import build_defs
from invoice_pipelines.queue.domain import job_kind, known_kinds
from invoice_pipelines.queue.domain.job_kind import (
    SUCCEEDED,
    Chunks,
    JobKind,
    OwnJob,
    Retry,
    RunsItself,
)
from invoice_pipelines.queue.domain.known_kinds import Kinds

PACKAGE = Path(invoice_pipelines.__file__).resolve().parent


def _work(engine, resources, run_id):
    return lambda job, request, invoice_ids: {i: SUCCEEDED for i in invoice_ids}


def _kind_type(node: ast.expr | None) -> bool:
    """Whether an annotation or a value names a kind type or a kind (`JobKind`,
    `queue.job_kind.JobKind`, `QueueKind`, `DOCUMENTS_KIND`)."""
    return node is not None and any(
        (isinstance(n, ast.Name) and n.id.endswith(("Kind", "_KIND")))
        or (isinstance(n, ast.Attribute) and n.attr.endswith(("Kind", "_KIND")))
        for n in ast.walk(node)
    )


def _is_any(node: ast.expr | None) -> bool:
    return (isinstance(node, ast.Name) and node.id == "Any") or (
        isinstance(node, ast.Attribute) and node.attr == "Any"
    )


def kinds_as_any(source: str) -> list[int]:
    """The lines where a kind type is made `Any` (`JobKind = Any`, `JobKind: TypeAlias = Any`)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and _is_any(node.value):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and _is_any(node.value):
            targets = [node.target]
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id.endswith("Kind") for t in targets):
            found.append(node.lineno)
    return found


def module_registries(source: str) -> list[str]:
    """The module-level names bound to a mutable container (a dict, list or set: a literal, a
    comprehension, a `dict()`/`defaultdict()` call, or annotated as one) whose annotation or
    contents name a kind type or a loader: registries of kinds, to be filled at import."""
    found = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign):
            targets, value, annotation = [node.target], node.value, node.annotation
        elif isinstance(node, ast.Assign):
            targets, value, annotation = node.targets, node.value, None
        else:
            continue
        mutable = isinstance(
            value, ast.Dict | ast.List | ast.Set | ast.DictComp | ast.ListComp | ast.SetComp
        ) or (
            isinstance(value, ast.Call)
            and getattr(value.func, "id", getattr(value.func, "attr", ""))
            in ("dict", "list", "set", "defaultdict", "OrderedDict")
        )
        annotated = isinstance(annotation, ast.Subscript) and getattr(
            annotation.value, "id", None
        ) in ("dict", "list", "set")
        names_kinds = _kind_type(annotation) or (value is not None and _kind_type(value))
        if (mutable or annotated) and names_kinds:
            found += [t.id for t in targets if isinstance(t, ast.Name)]
    return found


def _product_sources() -> dict[str, str]:
    return {
        str(path.relative_to(PACKAGE)): path.read_text(encoding="utf-8")
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_the_checks_see_what_issue_48_and_57_found():
    """The structure checks below fail on the code before the changes: one registry of loaders
    beside a declared one, the kind typed as `Any` (issue 48), a module-level dict of loaders
    that `register` filled at import (issue 57)."""
    before = (
        "JobKind = Any  # queue.kinds.JobKind\n"
        "_DECLARED: dict[str, JobKind] = {}\n"
        "_LOADERS: dict[str, Callable[[], JobKind]] = {}\n"
        "_KINDS = {DOCUMENTS: DOCUMENTS_KIND}\n"
        "LISTED = [QueueKind('documents', load)]\n"
    )
    assert kinds_as_any(before) == [1]
    assert module_registries(before) == ["_DECLARED", "_LOADERS", "_KINDS", "LISTED"]
    # a constant kind, a tuple of names and a read-only value are no registries
    fine = (
        "DOCUMENTS_KIND = JobKind('documents', runs=Chunks(work))\n"
        "INVOICING_KINDS = (SALES_ORDERS, CUSTOMER_LINES)\n"
        "KINDS = MappingProxyType({})\n"
    )
    assert module_registries(fine) == []


def test_no_module_makes_a_kind_type_any():
    found = [
        f"{name}:{line}"
        for name, source in _product_sources().items()
        for line in kinds_as_any(source)
    ]
    assert not found, f"a kind type is Any: {found}"


def test_no_module_keeps_a_registry_of_kinds():
    """No module-level container of kinds: the kinds are one value the assembly builds
    (`areas.kinds()`) and hands over."""
    found = {
        name: names
        for name, source in _product_sources().items()
        if (names := module_registries(source))
    }
    assert found == {}
    # and the value names the real type
    assert known_kinds.JobKind is job_kind.JobKind


# what a fresh interpreter reports after importing every module of the package: the module-level
# mutable containers that hold a kind, a kind's loader (`QueueKind`), a `Kinds` value, or are
# keyed by the kinds' names (a registry of loaders: `_KINDS` before issue 57)
_SCAN = """
import importlib, json, pkgutil, sys
import invoice_pipelines
from invoice_pipelines.area_parts import QueueKind
from invoice_pipelines.core.batch_kinds import KindName
from invoice_pipelines.queue.domain.job_kind import JobKind
from invoice_pipelines.queue.domain.known_kinds import Kinds

for info in pkgutil.walk_packages(invoice_pipelines.__path__, "invoice_pipelines."):
    if ".migrations." not in info.name and not info.name.endswith("__main__"):
        importlib.import_module(info.name)

def holds_kinds(value):
    if isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, list | set):
        items = list(value)
    else:
        return False
    keyed = isinstance(value, dict) and any(isinstance(k, KindName) for k in value)
    return keyed or any(isinstance(v, JobKind | QueueKind | Kinds) for v in items)

found = sorted(
    f"{name}.{attr}"
    for name, module in list(sys.modules.items())
    if name.startswith("invoice_pipelines.")
    for attr, value in list(vars(module).items())
    if holds_kinds(value)
)
from invoice_pipelines.definitions import defs
kinds = defs.resources["batch_kinds"]
print(json.dumps({"found": found, "kinds": sorted(kinds)}))
"""


def _scan_in_fresh_interpreters(count: int) -> list[dict]:
    """The scan's report from each of `count` fresh interpreters, started side by side."""
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    scans = [
        subprocess.Popen(
            [sys.executable, "-c", _SCAN],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=PACKAGE.parent,
        )
        for _ in range(count)
    ]
    reports = []
    try:
        for scan in scans:
            out, err = scan.communicate(timeout=600)
            assert scan.returncode == 0, err[-3000:]
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for scan in scans:
            if scan.poll() is None:
                scan.kill()
                scan.wait()
    return reports


def test_importing_every_module_fills_no_registry():
    """Every module of the package imported (the code location among them) in a fresh
    interpreter: no module-level container holds a kind; the code location's kinds are the areas'
    (every `KindName`), the same in a second fresh interpreter."""
    first, second = _scan_in_fresh_interpreters(2)
    assert first["found"] == []
    assert first["kinds"] == sorted(KindName)
    assert second == first


def test_the_kinds_are_a_read_only_value_loaded_when_looked_up():
    loads = []
    kind = JobKind("unheard_of", runs=Chunks(_work))

    def load():
        loads.append(kind.name)
        return kind

    kinds = Kinds({"unheard_of": load})
    assert "unheard_of" in kinds and list(kinds) == ["unheard_of"] and loads == []
    assert kinds.described("unheard_of") is kind and kinds["unheard_of"] is kind
    assert loads == ["unheard_of"]  # loaded once
    assert kinds.described("other") is None
    with pytest.raises(KeyError):
        kinds["other"]
    with pytest.raises(TypeError):
        kinds["other"] = kind  # type: ignore[index]
    assert not hasattr(kinds, "register")
    # another value with a kind more leaves this one as it was
    more = kinds.with_kinds([JobKind("labels", runs=Chunks(_work))])
    assert sorted(more) == ["labels", "unheard_of"] and list(kinds) == ["unheard_of"]


def _own_job_kind(name: str) -> JobKind:
    return JobKind(
        name,
        runs=OwnJob("some_job", "some_op", lambda job_id: {}),
        retry=Retry(lambda rows, original: {"items": [r.payload for r in rows]}),
    )


def test_building_the_queue_makes_a_kind_known_nowhere_else():
    kind = _own_job_kind("only_in_these_defs")
    build_defs(Kinds.of(kind))
    assert kind.name not in areas.kinds()
    assert sorted(areas.kinds()) == sorted(KindName)
    # each call builds a value of its own, from the areas' loaders
    assert areas.kinds() is not areas.kinds()


def test_a_kind_listed_under_another_name_is_refused():
    kind = JobKind("labels", runs=Chunks(_work))
    with pytest.raises(ValueError, match="listed as 'tags' is 'labels'"):
        Kinds({"tags": lambda: kind})["tags"]
    with pytest.raises(ValueError, match="given twice"):
        Kinds.of(kind, kind)


def test_a_kind_runs_exactly_one_way_and_a_kind_over_no_invoices_says_how_to_retry():
    with pytest.raises(ValueError, match="exactly one of Chunks, RunsItself or OwnJob"):
        JobKind("nothing", runs=None)
    with pytest.raises(ValueError, match="retried"):
        JobKind("whole", runs=RunsItself(lambda engine, job_id, resources, settings: None))
    with pytest.raises(ValueError, match="retried"):
        JobKind("own", runs=OwnJob("some_job", "some_op", lambda job_id: {}))
    assert _own_job_kind("own").own_job.job_name == "some_job"


def test_a_kinds_callables_are_grouped():
    """JobKind's own fields hold no loose callable: how it runs, how a request is made, how a
    person reads it and how a retry works are each a small dataclass of their own."""
    loose = [f.name for f in dataclasses.fields(JobKind) if "Callable" in str(f.type)]
    assert not loose
    assert {f.name for f in dataclasses.fields(JobKind)} == {
        "name",
        "runs",
        "requests",
        "reading",
        "retry",
        "resource_keys",
        "refusals",
        "creates_invoices",
        "waits_on",
    }
