"""Side by side: each bench scenario at BASE and at HEAD, alternately, on fresh databases.

`scripts/bench-compare.sh BASE [SCENARIO ...]` (this module's `main`) checks BASE and HEAD out as
git worktrees under one temporary folder (or takes the working tree as it is for HEAD,
`--working-tree`), gives each an interpreter, and runs every scenario A B A B ... (`--pairs`, at
least 3), each run on a database of its own created on the local PostgreSQL server and dropped
after it. It prints per scenario the median HEAD/BASE ratio of the headline figure with its
min and max over the pairs, and the median `fraction_of_limit` of each side; the last stdout
line is the same as JSON.

Before the first measured pair of each scenario, `--warm-up` pairs (default 1) run and are left
out, and each side's own modules are compiled to bytecode before any run (`warm_up`,
`compile_sources`): the first minutes of a comparison ran slower, the head more than base.

Why alternately and not one side after the other: our machines are shared, and their speed
drifts by more than the changes we want to see. A ratio of neighbouring runs cancels most of
it; the min and max say how much was left.

An interpreter: the project's own venv, with the worktree first on PYTHONPATH, when every pin of
the worktree's `requirements-dev.lock` is installed there (a BASE from the same locks, or one
whose lock is a subset); otherwise a venv of its own from that lock (`uv pip sync` when uv is
installed, else pip with `--require-hashes`), as `make install` does.

A BASE from before the headline keys existed has no `per_s`: its headline is read from the key
each scenario printed then (OLD_HEADLINES). The scenarios' own arguments can be given with them:
`"export --n 20000"`. Standard library only: it runs under any Python 3.11.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from invoice_pipelines.cli_args import non_negative_int, positive_int

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
# small sizes: four scenarios, three pairs, a few minutes on two cores
DEFAULT_SCENARIOS = (
    "batch-invoicing --orders 10000",
    "export --n 10000",
    "documents --n 60",
    "intake --n 120 --ocr-pages 0",
)
MIN_PAIRS = 3
LOCK = "requirements-dev.lock"
CLI = "import sys; from invoice_pipelines.cli import main; sys.exit(main(sys.argv[1:]))"


def _tick_seconds(result: dict) -> float:
    ticks = list(result.get("schedule_tick_seconds", {}).values())
    for value in result.get("sensor_tick_seconds", {}).values():
        ticks += value if isinstance(value, list) else [value]
    return sum(ticks)


def _ratio(count: float | None, seconds: float | None) -> float | None:
    return count / seconds if count and seconds else None


# The headline of a result printed before `headline`/`per_s` existed (issue 26): the key each
# scenario printed then, or the same figure worked out from what it printed.
OLD_HEADLINES: dict[str, str | Callable[[dict], float | None]] = {
    "intake": "docs_per_s",
    "batch-invoicing": "orders_per_s",
    "export": "invoices_per_s",
    "documents": "documents_per_s",
    "overdue": "invoices_per_s",
    "housekeeping": "uploads_removed_per_second",
    "ocr": "ocr_pages_per_s",
    "qbo-push": lambda r: _ratio(r.get("invoices"), r.get("seconds")),
    "tenants": lambda r: _ratio(r.get("organizations"), _tick_seconds(r)),
    # the intake stage's supplier uploads: three in four inputs
    "hostile": lambda r: _ratio(
        r.get("inputs", 0) - r.get("inputs", 0) // 4,
        r.get("seconds_by_stage", {}).get("intake"),
    ),
}
# figures compared beside the headline
SECONDARY: dict[str, tuple[str, ...]] = {"documents": ("emails_per_s",)}
# the brief's floors: HEAD/BASE with BASE d3afcdb, by scenario (headline) or (scenario, figure);
# a round holds a floor when its median ratio reaches it, with margin when 10 % above it
FLOORS: dict[str | tuple[str, str], float] = {
    "export": 1.5,
    "intake": 2.0,
    "documents": 2.0,
    ("documents", "emails_per_s"): 0.95,
}
MARGIN = 1.10
FLOOR_BASE = "d3afcdb"


def headline(scenario: str, result: dict) -> float | None:
    """The per-second figure a result is judged by: `per_s` when it names one, else the one the
    scenario printed before it did."""
    if result.get("per_s") is not None:
        return float(result["per_s"])
    old = OLD_HEADLINES.get(scenario)
    value = old(result) if callable(old) else result.get(old) if old else None
    return float(value) if value is not None else None


@dataclass
class Scenario:
    """One scenario and its arguments, as given: `"export --n 20000"`."""

    spec: str
    name: str = field(init=False)
    args: list[str] = field(init=False)

    def __post_init__(self) -> None:
        parts = shlex.split(self.spec)
        if not parts:
            raise ValueError("an empty scenario")
        self.name, self.args = parts[0], parts[1:]


@dataclass
class Side:
    """BASE or HEAD: a source tree and the interpreter that runs it."""

    label: str
    rev: str
    commit: str
    root: Path
    python: str = sys.executable
    environment: str = "the project's venv"


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return round(value, digits) if value is not None else None


def summarize(runs: list[dict]) -> dict:
    """Per-pair HEAD/BASE ratios of the headline (and secondary figures) and each side's
    median fraction of its limit. `runs`: {"pair", "side", "per_s", "fraction", "figures"}."""
    by_pair: dict[int, dict[str, dict]] = {}
    for run in runs:
        by_pair.setdefault(run["pair"], {})[run["side"]] = run
    ratios, secondary = [], {}
    for sides in by_pair.values():
        base, head = sides.get("base"), sides.get("head")
        if not base or not head:
            continue
        if base.get("per_s") and head.get("per_s") is not None:
            ratios.append(head["per_s"] / base["per_s"])
        for key, value in head.get("figures", {}).items():
            before = base.get("figures", {}).get(key)
            if before and value is not None:
                secondary.setdefault(key, []).append(value / before)

    def side(name: str) -> dict:
        mine = [r for r in runs if r["side"] == name]
        fractions = [r["fraction"] for r in mine if r.get("fraction") is not None]
        per_s = [r["per_s"] for r in mine if r.get("per_s") is not None]
        return {
            "per_s": [r.get("per_s") for r in mine],
            "median_per_s": _rounded(_median(per_s), 1),
            "median_fraction_of_limit": _rounded(_median(fractions)),
            "failed": sum(1 for r in mine if r.get("error")),
        }

    return {
        "pairs": len(ratios),
        "ratio_median": _rounded(_median(ratios)),
        "ratio_min": _rounded(min(ratios, default=None)),
        "ratio_max": _rounded(max(ratios, default=None)),
        "ratios": [round(r, 3) for r in ratios],
        "base": side("base"),
        "head": side("head"),
        "secondary": {
            key: {
                "ratio_median": _rounded(_median(values)),
                "ratio_min": _rounded(min(values)),
                "ratio_max": _rounded(max(values)),
            }
            for key, values in secondary.items()
        },
    }


def _floor_record(floor: float | None, medians: list[float | None]) -> dict:
    """How the medians of the rounds stand against a floor: their spread, the rounds that held
    it and the rounds that held it by MARGIN."""
    known = [m for m in medians if m is not None]
    record: dict = {
        "round_medians": medians,
        "spread": {
            "min": _rounded(min(known, default=None)),
            "median": _rounded(_median(known)),
            "max": _rounded(max(known, default=None)),
        },
    }
    if floor is not None:
        record["floor"] = floor
        record["rounds_holding"] = sum(1 for m in known if m >= floor)
        record["rounds_with_margin"] = sum(1 for m in known if m >= floor * MARGIN)
        record["every_round_with_margin"] = len(known) == len(medians) and all(
            m >= floor * MARGIN for m in known
        )
    return record


def rounds_summary(scenario: str, rounds: list[dict]) -> dict:
    """`--repeat`: the spread of the rounds' median ratios, headline and secondary figures, each
    against its floor (FLOORS) where the brief states one. `rounds`: summarize() per round."""
    secondary = {
        key: _floor_record(
            FLOORS.get((scenario, key)),
            [r["secondary"].get(key, {}).get("ratio_median") for r in rounds],
        )
        for key in SECONDARY.get(scenario, ())
    }
    return {
        "rounds": len(rounds),
        **_floor_record(FLOORS.get(scenario), [r["ratio_median"] for r in rounds]),
        "secondary": secondary,
    }


# --- git, interpreters, databases -----------------------------------------------------------


def _git(*args: str, cwd: Path = REPO_ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lock: Path) -> dict[str, str]:
    pins = {}
    for line in lock.read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#", "-")):
            name, _, version = line.split(" ")[0].partition("==")
            pins[_normal(name)] = version
    return pins


def _installed(python: str) -> dict[str, str]:
    script = (
        "import json, importlib.metadata as m; print(json.dumps([(d.metadata['Name'], d.version)"
        " for d in m.distributions() if d.metadata['Name']]))"
    )
    done = subprocess.run([python, "-c", script], capture_output=True, text=True, check=True)
    return {_normal(name): version for name, version in json.loads(done.stdout)}


def interpreter(side: Side, workdir: Path, log) -> None:
    """Give `side` an interpreter with its lock's pins: ours when it has them all, else its own
    venv built from its lock."""
    lock = side.root / LOCK
    ours = sys.executable
    wanted = _pins(lock) if lock.is_file() else {}
    have = _installed(ours)
    missing = {name: v for name, v in wanted.items() if have.get(name) != v}
    if not missing:
        side.python, side.environment = ours, "the project's venv (its lock's pins all installed)"
        return
    venv = workdir / f"venv-{side.label}"
    log(f"{side.label}: {len(missing)} pins differ from this venv; installing {lock} into {venv}")
    if shutil.which("uv"):
        subprocess.run(["uv", "venv", "-q", "-p", sys.executable, str(venv)], check=True)
        python = str(venv / "bin" / "python")
        sync = ["uv", "pip", "sync", "-q", "-p", python, "--require-hashes", str(lock)]
        subprocess.run(sync, check=True)
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = str(venv / "bin" / "python")
        pip = [python, "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "--require-hashes", "-r", str(lock)], check=True)
    side.python, side.environment = python, f"a venv of its own from its {LOCK}"


# the packages of a side whose modules its runs import
PACKAGES = ("invoice_pipelines", "invoice_pipelines_devtools")


def compile_sources(side: Side, log) -> None:
    """Each side's own modules compiled to bytecode before its first run, with its interpreter,
    as `make run` and an installed package have them. A new worktree has none: its first run
    compiled each module it imported, and the first pair of a series measured that (HEAD
    against HEAD, the first export ran at 18.1k invoices a second, the next nine at 22.4-26.7k)."""
    folders = [str(side.root / name) for name in PACKAGES if (side.root / name).is_dir()]
    if not folders:
        return
    done = subprocess.run(
        [side.python, "-m", "compileall", "-q", "-j", "0", *folders],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:  # a module that does not compile fails its run, as it would have
        log(f"{side.label}: compileall: {(done.stdout + done.stderr).strip()[-300:]}")


def _admin(server: str, sql: str) -> None:
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", server, "-c", sql],
        capture_output=True,
        text=True,
        check=True,
    )


def database_url(server: str, name: str) -> str:
    """The application URL for database `name` on the server `server` names."""
    parts = urlsplit(server)
    return urlunsplit(("postgresql+psycopg2", parts.netloc, f"/{name}", parts.query, ""))


# --- the runs -------------------------------------------------------------------------------


@dataclass
class Runner:
    server: str
    workdir: Path
    log: Callable[[str], None]
    counter: int = 0

    def run(self, side: Side, scenario: Scenario, pair: int) -> dict:
        """One run of `scenario` at `side` on a fresh database; what the summary needs."""
        self.counter += 1
        name = f"bench_cmp_{os.getpid()}_{self.counter}"
        _admin(self.server, f'CREATE DATABASE "{name}"')
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(side.root), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
            "INVOICE_PIPELINES_DB_URL": database_url(self.server, name),
            # files the benches keep (exports, sample PDFs) go with the temporary folder
            "INVOICE_PIPELINES_DATA_DIR": str(self.workdir / "data" / side.label),
            "OMP_THREAD_LIMIT": "1",
            "NO_GCE_CHECK": "true",
        }
        env.pop("INVOICE_PIPELINES_EXPORT_DIR", None)
        logfile = self.workdir / "logs" / f"{scenario.name}-{pair}-{side.label}.log"
        logfile.parent.mkdir(parents=True, exist_ok=True)
        command = [side.python, "-c", CLI, "bench", scenario.name, *scenario.args]
        started = time.perf_counter()
        try:
            done = subprocess.run(
                command, cwd=side.root, env=env, capture_output=True, text=True, check=False
            )
        finally:
            try:
                _admin(self.server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except subprocess.CalledProcessError as exc:
                self.log(f"could not drop {name}: {exc.stderr.strip()}")
        logfile.write_text(done.stdout + "\n--- stderr ---\n" + done.stderr)
        run: dict = {"pair": pair, "side": side.label, "seconds": time.perf_counter() - started}
        lines = done.stdout.strip().splitlines()
        try:
            result = json.loads(lines[-1]) if done.returncode == 0 and lines else None
        except json.JSONDecodeError:
            result = None
        if not isinstance(result, dict):
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            run["error"] = f"exit {done.returncode}: {tail[:300]} (log: {logfile})"
            return run
        run["per_s"] = headline(scenario.name, result)
        run["fraction"] = result.get("fraction_of_limit")
        run["limit_per_s"] = result.get("limit_per_s")
        run["figures"] = {k: result.get(k) for k in SECONDARY.get(scenario.name, ())}
        return run


def warm_up(runner: Runner, sides: list[Side], scenario: Scenario, pairs: int, log) -> None:
    """`pairs` pairs of `scenario` before its first measured pair, their figures logged and left
    out. The first minutes of a comparison ran both sides slower, and the head (whose export
    and intake work on two cores at once) more than base: in the five rounds at 398fa88 the
    head's first two exports ran at 16.0k and 18.3k invoices a second against 23.4-28.8k in the
    other thirteen, and round one's median was the lowest of the five."""
    for number in range(1, pairs + 1):
        for side in sides:
            run = runner.run(side, scenario, 0)
            log(f"{scenario.spec} warm-up {number} {side.label}: {_shown(run)} (left out)")


def _shown(run: dict) -> str:
    """One run as the log says it: its error, or its headline figure and fraction of the limit."""
    per_s = run.get("per_s")
    return run.get("error") or (
        f"{'-' if per_s is None else round(per_s, 1)}/s, fraction of limit {run.get('fraction')}"
    )


def _side(label: str, rev: str, workdir: Path, in_place: bool) -> Side:
    commit = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
    if in_place:
        return Side(label, "working tree", commit, REPO_ROOT)
    root = workdir / label
    _git("worktree", "add", "--detach", "--quiet", str(root), commit)
    return Side(label, rev, commit, root)


def compare(args: argparse.Namespace, log: Callable[[str], None]) -> dict:
    scenarios = [Scenario(spec) for spec in (args.scenarios or DEFAULT_SCENARIOS)]
    workdir = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    shared = REPO_ROOT.parent / "shared"
    if shared.is_dir():
        # the benches find ../shared beside their repository (samples, the limit script)
        (workdir / "shared").symlink_to(shared)
    sides: list[Side] = []
    try:
        sides.append(_side("base", args.base, workdir, in_place=False))
        sides.append(_side("head", args.head, workdir, in_place=args.working_tree))
        for side in sides:
            interpreter(side, workdir, log)
            compile_sources(side, log)
            log(f"{side.label}: {side.rev} ({side.commit[:10]}) in {side.root}, {side.environment}")
        runner = Runner(args.server, workdir, log)
        load_start = os.getloadavg()
        runs: dict[str, list[dict]] = {s.spec: [] for s in scenarios}
        rounds: dict[str, list[dict]] = {s.spec: [] for s in scenarios}
        for round_ in range(args.repeat):  # each round: every scenario, its pairs A B A B ...
            for scenario in scenarios:
                if round_ == 0:
                    warm_up(runner, sides, scenario, args.warm_up, log)
                mine = []
                for pair in range(round_ * args.pairs + 1, (round_ + 1) * args.pairs + 1):
                    for side in sides:
                        run = runner.run(side, scenario, pair)
                        mine.append(run)
                        log(f"{scenario.spec} pair {pair} {side.label}: {_shown(run)}")
                runs[scenario.spec] += mine
                rounds[scenario.spec].append(summarize(mine))
        results = {}
        for scenario in scenarios:
            results[scenario.spec] = {"scenario": scenario.name, **summarize(runs[scenario.spec])}
            if args.repeat > 1:
                results[scenario.spec]["repeat"] = rounds_summary(
                    scenario.name, rounds[scenario.spec]
                )
        load_end = os.getloadavg()
    finally:
        if not args.keep:
            for side in sides:
                if side.root != REPO_ROOT:
                    subprocess.run(
                        ["git", "worktree", "remove", "--force", str(side.root)],
                        cwd=REPO_ROOT,
                        capture_output=True,
                        check=False,
                    )
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"kept {workdir} (worktrees: git worktree remove --force <path> when done)")
    return {
        "base": {"rev": args.base, "commit": sides[0].commit},
        "head": {"rev": sides[1].rev, "commit": sides[1].commit},
        "pairs": args.pairs,
        "repeat": args.repeat,
        "floors_against": FLOOR_BASE,
        "order": "A B A B ... (base first in every pair), a fresh database per run",
        "warm_up_pairs": args.warm_up,
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in load_end],
        "cores": os.cpu_count(),
        "scenarios": results,
    }


def table(report: dict) -> str:
    """The human part: one line per scenario."""
    header = (
        f"{'scenario':<34} {'HEAD/BASE median':>16} {'min':>6} {'max':>6} "
        f"{'BASE/s':>10} {'HEAD/s':>10} {'BASE frac':>9} {'HEAD frac':>9}"
    )
    lines = [header, "-" * len(header)]

    def cell(value, width: int) -> str:
        return f"{'-' if value is None else value:>{width}}"

    for spec, row in report["scenarios"].items():
        lines.append(
            f"{spec:<34} {cell(row['ratio_median'], 16)} {cell(row['ratio_min'], 6)} "
            f"{cell(row['ratio_max'], 6)} {cell(row['base']['median_per_s'], 10)} "
            f"{cell(row['head']['median_per_s'], 10)} "
            f"{cell(row['base']['median_fraction_of_limit'], 9)} "
            f"{cell(row['head']['median_fraction_of_limit'], 9)}"
        )
        for key, extra in row["secondary"].items():
            lines.append(
                f"  {key:<32} {cell(extra['ratio_median'], 16)} {cell(extra['ratio_min'], 6)} "
                f"{cell(extra['ratio_max'], 6)}"
            )
        if "repeat" in row:
            repeat = row["repeat"]
            lines.append(_rounds_line("rounds' medians", repeat))
            lines += [
                _rounds_line(f"  {key} rounds' medians", figure)
                for key, figure in repeat["secondary"].items()
            ]
    load = report["load_average_start"], report["load_average_end"]
    lines.append(
        f"{report['pairs']} pairs, base {report['base']['commit'][:10]}, head "
        f"{report['head']['commit'][:10]} ({report['head']['rev']}); load average "
        f"{load[0][0]} at the start, {load[1][0]} at the end, {report['cores']} cores"
    )
    return "\n".join(lines)


def _rounds_line(label: str, record: dict) -> str:
    spread = record["spread"]
    line = (
        f"  {label}: {', '.join('-' if m is None else str(m) for m in record['round_medians'])} "
        f"(min {spread['min']}, median {spread['median']}, max {spread['max']})"
    )
    if "floor" in record:
        rounds = len(record["round_medians"])
        line += (
            f"; floor {record['floor']} (against {FLOOR_BASE}): held in "
            f"{record['rounds_holding']}/{rounds}, by 10 % in {record['rounds_with_margin']}/{rounds}"
        )
    return line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/bench-compare.sh",
        description="Run bench scenarios at BASE and HEAD alternately on fresh databases and "
        "print the median HEAD/BASE ratio of each headline figure (last line: JSON).",
    )
    parser.add_argument("base", help="the git revision to compare against (e.g. HEAD~20)")
    parser.add_argument(
        "scenarios",
        nargs="*",
        help='scenarios with their arguments, one per argument: "export --n 20000" '
        f"(default: {', '.join(repr(s) for s in DEFAULT_SCENARIOS)})",
    )
    parser.add_argument(
        "--pairs", type=positive_int, default=MIN_PAIRS, help="A/B pairs (at least 3)"
    )
    parser.add_argument(
        "--repeat",
        type=positive_int,
        default=1,
        help="rounds of --pairs pairs each, one after another; prints each round's median "
        "ratio, their spread, and the rounds that hold the brief's floor (by 10 %%)",
    )
    parser.add_argument(
        "--warm-up",
        type=non_negative_int,
        default=1,
        help="pairs of each scenario run first and left out (default 1; 0: none)",
    )
    parser.add_argument("--head", default="HEAD", help="the revision to compare (default HEAD)")
    parser.add_argument(
        "--working-tree",
        action="store_true",
        help="HEAD is the working tree as it is, uncommitted changes included",
    )
    parser.add_argument(
        "--server",
        default=os.environ.get("BENCH_COMPARE_SERVER", DEFAULT_SERVER),
        help="PostgreSQL server for the per-run databases (a database to connect to for "
        f"CREATE DATABASE; default {DEFAULT_SERVER})",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the worktrees and logs (path printed)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.pairs < MIN_PAIRS:
        print(f"--pairs must be at least {MIN_PAIRS}", file=sys.stderr)
        return 2

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    report = compare(args, log)
    print(table(report))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
