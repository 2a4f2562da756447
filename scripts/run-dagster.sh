#!/usr/bin/env bash
# Starts `dagster dev` on the embedded instance and prints the UI address once it answers.
# Ctrl-C (or SIGTERM) stops the webserver, the daemon and the code server together.
set -euo pipefail
cd "$(dirname "$0")/.."
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-3000}"
export DAGSTER_HOME="${DAGSTER_HOME:-$(pwd)/.data/dagster_home}"
scripts/dagster-home.sh >/dev/null
export OMP_THREAD_LIMIT=1

set -m  # job control: dagster dev gets its own process group, stopped as one
.venv/bin/dagster dev -w workspace.yaml -h "$HOST" -p "$PORT" &
pid=$!
trap 'kill -TERM -- -$pid 2>/dev/null || true; wait $pid 2>/dev/null || true' INT TERM EXIT

for _ in $(seq 1 180); do
  # python, not curl: the venv is the one tool a fresh machine is sure to have here
  if .venv/bin/python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" \
      "http://$HOST:$PORT/server_info" >/dev/null 2>&1; then
    echo
    echo "Dagster UI is up: http://$HOST:$PORT   (Ctrl-C stops it)"
    echo
    break
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "dagster dev exited before the UI came up" >&2
    exit 1
  fi
  sleep 1
done
wait "$pid"
