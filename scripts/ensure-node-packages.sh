#!/usr/bin/env bash
# The npm packages of the QBO conformance suite (node-quickbooks and intuit-oauth, pinned with
# integrity hashes in invoice_pipelines_tests/quickbooks/conformance/node/package-lock.json):
# `npm ci` there whenever that lock differs from the one last installed, quietly, nothing otherwise.
# Node and npm are Debian's packages, installed here where we are root. Without them this fails:
# the conformance tests drive the QBO simulator with the Node client (and fail under CI without it).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=invoice_pipelines_tests/quickbooks/conformance/node
STAMP="$DIR/node_modules/.installed-from-lock"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
    fi
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "ensure-node-packages: node and npm are missing (sudo apt-get install -y nodejs npm);" \
        "the QBO conformance tests need them" >&2
    exit 1
fi

want="$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    exit 0
fi
(cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
echo "$want" >"$STAMP"
