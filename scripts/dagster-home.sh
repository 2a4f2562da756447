#!/usr/bin/env bash
# Writes $DAGSTER_HOME/dagster.yaml from the one instance template, deploy/dagster.yaml.
#   scripts/dagster-home.sh sqlite    embedded SQLite storage under $DAGSTER_HOME (make run)
#   scripts/dagster-home.sh postgres  dagster-postgres storage from the DAGSTER_PG_* variables
# Everything else (our run coordinator, the per-organization concurrency limit, run monitoring,
# retention) is the template's, in both modes. Prints the DAGSTER_HOME it wrote to.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
template="$repo/deploy/dagster.yaml"
mode="${1:-sqlite}"
home="${DAGSTER_HOME:-$repo/.data/dagster_home}"
mkdir -p "$home"
home="$(cd "$home" && pwd)"

case "$mode" in
  sqlite)
    storage="storage:
  sqlite:
    base_dir: '${home//\'/\'\'}'"
    ;;
  postgres)
    storage=""  # the template's own block
    ;;
  *)
    echo "usage: $0 [sqlite|postgres]" >&2
    exit 2
    ;;
esac

{
  echo "# Written by scripts/dagster-home.sh ($mode) from deploy/dagster.yaml: edit the template."
  # drop the template's header comment; swap the top-level storage block when asked to
  awk -v storage="$storage" '
    !started && /^#/ { next }
    { started = 1 }
    storage != "" && /^storage:/ { print storage; skip = 1; next }
    skip && /^[^ ]/ { skip = 0; print "" }
    !skip { print }
  ' "$template"
} > "$home/dagster.yaml.tmp"
mv "$home/dagster.yaml.tmp" "$home/dagster.yaml"
echo "$home"
