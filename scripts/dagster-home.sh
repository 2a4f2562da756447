#!/usr/bin/env bash
# Writes the embedded Dagster instance config for `make run`: SQLite storage under
# $DAGSTER_HOME (default .data/dagster_home) plus the same run coordinator (it tags every run with
# the organization its config names) and concurrency rules as dagster.yaml.
set -euo pipefail
home="${DAGSTER_HOME:-$(pwd)/.data/dagster_home}"
mkdir -p "$home"
cat > "$home/dagster.yaml" <<YAML
# written by scripts/dagster-home.sh for make run: embedded SQLite storage
storage:
  sqlite:
    base_dir: $home
run_coordinator:
  module: invoice_pipelines.tenants.run_coordinator
  class: OrganizationRunCoordinator
concurrency:
  runs:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      - key: invoice_pipelines/organization
        value:
          applyLimitPerUniqueValue: true
        limit: 1
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
retention:
  sensor:
    purge_after_days:
      skipped: 1
      failure: 30
      success: -1
telemetry:
  enabled: false
YAML
echo "$home"
