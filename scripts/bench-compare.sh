#!/usr/bin/env bash
# Side-by-side benchmarks: each scenario at BASE and at HEAD alternately (A B A B ..., at least
# three pairs), every run on a fresh PostgreSQL database; prints per scenario the median HEAD/BASE
# ratio of its headline figure with min and max, and each side's median fraction of its limit.
# The last stdout line is JSON. Logs go to stderr.
#
#   scripts/bench-compare.sh HEAD~20
#   scripts/bench-compare.sh --pairs 5 2ca2105~1 "export --n 20000" "batch-invoicing --orders 100000"
#   scripts/bench-compare.sh --working-tree HEAD "documents --n 100"   # uncommitted changes too
#
# Worktrees and logs live in a temporary folder removed afterwards (--keep keeps them). The logic
# is invoice_pipelines_devtools/bench/compare.py (see its docstring and --help).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${BENCH_COMPARE_PYTHON:-$root/.venv/bin/python}"
if [[ ! -x "$python" ]]; then
  echo "bench-compare: $python not found; run make install first" >&2
  exit 2
fi
cd "$root"
exec "$python" -m invoice_pipelines_devtools.bench.compare "$@"
