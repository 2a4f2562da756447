#!/usr/bin/env bash
# The tests that start processes or threads, N times in a row (default 20) with two busy
# processes beside them (a loaded CI machine): a test that fails only sometimes shows here.
#   scripts/stress-concurrency.sh [N] [pytest paths...]
# Prints one line per round and, last, "N passed, M failed" (rounds). Exit code 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-20}
shift || true
tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
  tests=(
    invoice_pipelines_tests/test_scale_out.py
    invoice_pipelines_tests/billing/test_processes.py
    invoice_pipelines_tests/documents/test_batch.py
    invoice_pipelines_tests/delivery/test_batch.py
    invoice_pipelines_tests/outbox
    invoice_pipelines_tests/db/test_locks.py
    invoice_pipelines_tests/quickbooks/test_lease.py
    invoice_pipelines_tests/quickbooks/test_client.py
    invoice_pipelines_tests/overdue/test_notice_sending.py
    invoice_pipelines_tests/overdue/test_pipeline.py::test_two_runs_at_once_create_each_notice_once
    invoice_pipelines_tests/delivery/test_email.py
    invoice_pipelines_tests/exports/test_concurrency.py
    invoice_pipelines_tests/quickbooks/test_webhooks_hostile.py
    invoice_pipelines_tests/delivery/test_gateway_outcomes.py
    invoice_pipelines_tests/intake/test_hostile_uploads.py
    invoice_pipelines_tests/intake/test_hostile_documents.py
  )
fi
busy=()
for _ in 1 2; do
  (while :; do :; done) &
  busy+=($!)
done
trap 'kill "${busy[@]}" 2>/dev/null' EXIT
passed=0
failed=0
for round in $(seq 1 "$rounds"); do
  log=$(mktemp)
  if OMP_THREAD_LIMIT=1 NO_GCE_CHECK=true .venv/bin/pytest -q -p no:cacheprovider "${tests[@]}" >"$log" 2>&1; then
    passed=$((passed + 1))
    echo "round $round: ok ($(tail -1 "$log"))"
  else
    failed=$((failed + 1))
    echo "round $round: FAILED ($(tail -1 "$log")); log kept in $log"
    grep -E "^(FAILED|ERROR)" "$log" | head -5
    continue
  fi
  rm -f "$log"
done
echo "rounds: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
