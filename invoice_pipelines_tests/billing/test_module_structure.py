"""The billing modules import each other without a cycle; the chunk contract has one home."""

import ast
from pathlib import Path

import invoice_pipelines.billing.domain as billing_domain
from invoice_pipelines.billing.domain import chunk_postgres
from invoice_pipelines.billing.domain.contract import INVOICEABLE_STATUSES

# the chunk contract, the runner and the two implementations are billing's domain modules
PACKAGE = "invoice_pipelines.billing.domain"
BILLING = Path(billing_domain.__file__).parent


def billing_imports(directory: Path) -> dict[str, set[str]]:
    """Module name -> the billing modules it imports, anywhere in the file (functions included)."""
    modules = {p.stem for p in directory.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for name in sorted(modules):
        tree = ast.parse((directory / f"{name}.py").read_text(), filename=f"{name}.py")
        found: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = PACKAGE if node.level else (node.module or "")
                if node.level and node.module:
                    base = f"{PACKAGE}.{node.module}"
                # `from invoice_pipelines.billing import chunk_postgres` names modules
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                if target.startswith(PACKAGE + "."):
                    module = target[len(PACKAGE) + 1 :].split(".")[0]
                    if module in modules and module != name:
                        found.add(module)
        graph[name] = found
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return path[path.index(module) :] + [module]
        if module in done:
            return None
        for imported in sorted(graph[module]):
            cycle = visit(imported, path + [module])
            if cycle:
                return cycle
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = visit(module, [])
        if cycle:
            return cycle
    return None


def test_find_cycle_finds_one_through_a_function_level_import(tmp_path):
    (tmp_path / "a.py").write_text(f"from {PACKAGE}.b import thing\n")
    (tmp_path / "b.py").write_text(f"def f():\n    from {PACKAGE} import a\n")
    (tmp_path / "c.py").write_text(f"import {PACKAGE}.a\n")
    graph = billing_imports(tmp_path)
    assert graph == {"a": {"b"}, "b": {"a"}, "c": {"a"}}
    assert find_cycle(graph) == ["a", "b", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_billing_modules_import_each_other_without_a_cycle():
    graph = billing_imports(BILLING)
    assert {"contract", "invoicing", "chunk_postgres", "chunk_python", "chunks_in_flight"} <= set(
        graph
    )
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle among the billing modules: " + " -> ".join(cycle)


def test_the_chunk_implementations_depend_on_the_contract_not_on_the_runner():
    graph = billing_imports(BILLING)
    assert graph["contract"] == set()
    for chunk_module in ("chunk_postgres", "chunk_python"):
        assert graph[chunk_module] == {"contract"}, chunk_module


def test_chunk_postgres_invoices_the_contract_s_statuses():
    # its SQL spells the statuses out; both CASE branches must stay in step with chunk_python
    listed = ", ".join(f"'{status}'" for status in INVOICEABLE_STATUSES)
    assert chunk_postgres.TAKE_ORDERS.count(f"so.status NOT IN ({listed})") == 2
