"""One kind registry and a typed kind (issue 48): a kind becomes known to a process only by
`queue.registry.register`, the registry is the one dict of kinds in the package, it names the real
`JobKind` (never `Any`), and `JobKind` groups its callables instead of holding them loose."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

import invoice_pipelines
from invoice_pipelines.queue import job_kind, registry
from invoice_pipelines.queue.defs import build_defs
from invoice_pipelines.queue.job_kind import (
    SUCCEEDED,
    Chunks,
    JobKind,
    OwnJob,
    Retry,
    RunsItself,
)
from invoice_pipelines_tests.queue.registrations import register_each, registry_restored

PACKAGE = Path(invoice_pipelines.__file__).resolve().parent
REGISTRY = PACKAGE / "queue" / "registry.py"


def _work(engine, resources, run_id):
    return lambda job, request, invoice_ids: {i: SUCCEEDED for i in invoice_ids}


def _kind_type(node: ast.expr | None) -> bool:
    """Whether an annotation or a value names a kind type (`JobKind`, `queue.job_kind.JobKind`)."""
    return node is not None and any(
        (isinstance(n, ast.Name) and n.id.endswith("Kind"))
        or (isinstance(n, ast.Attribute) and n.attr.endswith("Kind"))
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


def kind_dicts(source: str) -> list[str]:
    """The module-level dicts whose annotation names a kind type: registries of kinds."""
    found = []
    for node in ast.parse(source).body:
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(node.annotation, ast.Subscript)
            and getattr(node.annotation.value, "id", None) == "dict"
            and _kind_type(node.annotation.slice)
        ):
            found.append(node.target.id)
    return found


def _product_sources() -> dict[str, str]:
    return {
        str(path.relative_to(PACKAGE)): path.read_text(encoding="utf-8")
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_the_checks_see_what_issue_48_found():
    """The structure checks below fail on the code before the change (one registry of loaders
    beside a declared one, the kind typed as `Any`)."""
    before = (
        "JobKind = Any  # queue.kinds.JobKind\n"
        "_DECLARED: dict[str, JobKind] = {}\n"
        "_LOADERS: dict[str, Callable[[], JobKind]] = {}\n"
    )
    assert kinds_as_any(before) == [1]
    assert kind_dicts(before) == ["_DECLARED", "_LOADERS"]


def test_no_module_makes_a_kind_type_any():
    found = [
        f"{name}:{line}"
        for name, source in _product_sources().items()
        for line in kinds_as_any(source)
    ]
    assert not found, f"a kind type is Any: {found}"


def test_the_registry_is_the_one_dict_of_kinds():
    found = {
        name: dicts for name, source in _product_sources().items() if (dicts := kind_dicts(source))
    }
    assert found == {"queue/registry.py": ["_KINDS"]}
    # and it names the real type
    assert registry.JobKind is job_kind.JobKind


def test_building_a_kind_does_not_make_it_known_registering_it_does(register_kinds):
    kind = JobKind("unheard_of", runs=Chunks(_work))
    assert registry.described("unheard_of") is None
    register_kinds(kind)
    assert registry.described("unheard_of") is kind
    assert registry.registered()["unheard_of"] is kind


def _own_job_kind(name: str) -> JobKind:
    return JobKind(
        name,
        runs=OwnJob("some_job", lambda job_id, slug, run_key: None),
        retry=Retry(lambda rows, original: {"items": [r.payload for r in rows]}),
    )


def test_build_defs_registers_the_kinds_it_builds_the_queue_for(register_kinds):
    kind = _own_job_kind("only_in_these_defs")
    assert registry.described(kind.name) is None
    build_defs([kind])
    assert registry.described(kind.name) is kind


def test_what_a_test_registers_is_gone_after_it():
    mine, built = JobKind("mine", runs=Chunks(_work)), _own_job_kind("built")
    with registry_restored():
        register_each(mine)
        build_defs([built])
        assert registry.described("mine") is mine and registry.described("built") is built
    assert registry.described("mine") is None and registry.described("built") is None
    # the areas' kinds, registered for the session, stay
    assert registry.described("documents").name == "documents"


def test_a_kind_registered_under_another_name_is_refused(register_kinds):
    kind = JobKind("labels", runs=Chunks(_work))
    registry.register("tags", lambda: kind)
    with pytest.raises(ValueError, match="registered as 'tags' is 'labels'"):
        registry.described("tags")


def test_a_kind_runs_exactly_one_way_and_a_kind_over_no_invoices_says_how_to_retry():
    with pytest.raises(ValueError, match="exactly one of Chunks, RunsItself or OwnJob"):
        JobKind("nothing", runs=None)
    with pytest.raises(ValueError, match="retried"):
        JobKind("whole", runs=RunsItself(lambda engine, job_id, resources, settings: None))
    with pytest.raises(ValueError, match="retried"):
        JobKind("own", runs=OwnJob("some_job", lambda job_id, slug, run_key: None))
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
