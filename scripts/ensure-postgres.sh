#!/usr/bin/env bash
# Makes sure the test PostgreSQL answers: starts a local cluster that is installed but stopped.
# It never fails by itself; the test suite decides (under CI an unreachable server is a failure).
set -uo pipefail
url="${INVOICE_PIPELINES_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/test}"
if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -d "$url"; then
  exit 0
fi
if [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null 2>&1; then
  version="$(ls /etc/postgresql | sort -V | tail -1)"
  echo "PostgreSQL is not answering; starting local cluster $version/main"
  if [ "$(id -u)" = 0 ]; then
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  else
    echo "run: sudo pg_ctlcluster --skip-systemctl-redirect $version main start" >&2
  fi
  for _ in $(seq 1 30); do pg_isready -q -d "$url" && exit 0; sleep 1; done
fi
echo "warning: PostgreSQL at $url is not reachable" >&2
exit 0
