"""The ops and the commands are adapters (issue 87): a request's work is its action's
(`<area>/domain/actions.py` or a module per request), which both call; an op reads its config and
hands the run's report over (resources/dagster_instance/run_report.py), a command reads its options and hands the
terminal over (resources/dagster_instance/dagster_ui.py `Terminal`). This reads every op of every `<area>/jobs.py`
and every function of every `<area>/commands/run.py` and holds its body (the lines from its first
statement after the docstring to its last) to LIMIT lines.

LIMIT is 15: measured on the adapters this issue wrote, the longest are 15
(`review_incoming_invoice`, which also words the review's refusal as the launchpad's failure,
and `run_offboard`, whose two steps take seven keywords); the lifecycle's are 5 to 13. A body
longer than that is doing the work itself, twice. Every op and command fits (the last five,
billing's batch invoice and credit note and the exports' export and reopen, since this round)."""

from __future__ import annotations

import ast
from pathlib import Path

import invoice_pipelines

ROOT = Path(invoice_pipelines.__file__).resolve().parent
LIMIT = 15


def _is_op(node: ast.FunctionDef) -> bool:
    for decorator in node.decorator_list:
        called = decorator.func if isinstance(decorator, ast.Call) else decorator
        if getattr(called, "id", getattr(called, "attr", None)) == "op":
            return True
    return False


def body_lines(node: ast.FunctionDef) -> int:
    """The lines from the first statement after the docstring to the end of the last."""
    body = node.body
    first = body[0]
    if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant):
        body = body[1:]
    if not body:
        return 0
    return (body[-1].end_lineno or body[-1].lineno) - body[0].lineno + 1


def adapters() -> dict[str, int]:
    """Every op of a jobs.py and every function of a commands/run.py, with its body's lines."""
    found = {}
    modules = [*ROOT.glob("*/jobs.py"), *ROOT.glob("*/commands/run.py")]
    for path in sorted(modules):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef):
                continue
            if path.name == "jobs.py" and not _is_op(node):
                continue
            found[f"{path.relative_to(ROOT).as_posix()}:{node.name}"] = body_lines(node)
    return found


def test_ops_and_commands_are_adapters_of_at_most_fifteen_lines():
    found = adapters()
    too_long = {name: lines for name, lines in found.items() if lines > LIMIT}
    assert not too_long, (
        f"these do the work an action (<area>/domain/actions.py) should do, in more than {LIMIT} "
        f"lines: {too_long}"
    )


def test_the_reading_sees_ops_and_commands():
    """The walk finds the lifecycle's adapters, measured as a person counts them."""
    found = adapters()
    assert found["tenants/jobs.py:suspend_organization_op"] <= LIMIT
    assert "tenants/jobs.py:organizations_suspend_job" not in found  # a job, not an op
    assert "tenants/commands/run.py:run_offboard" in found
    long_one = ast.parse('def f():\n    """Doc."""\n' + "    x = 1\n" * (LIMIT + 1)).body[0]
    assert isinstance(long_one, ast.FunctionDef) and body_lines(long_one) == LIMIT + 1
