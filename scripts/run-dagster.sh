#!/usr/bin/env bash
# `make run`: Dagster on the embedded instance. Starts what `dagster dev` starts (one code server,
# the webserver, the daemon) without that superseded command, in one process group of their own;
# prints the UI address and a short tour once the UI answers, as the last thing in the terminal:
# what the services print (run events, sensor ticks, the stand-ins) goes to <data dir>/logs/, the
# runs' events are in the UI. VERBOSE=1 prints it all in the terminal instead, at INFO level.
# Ctrl-C or SIGTERM (to make, to its process group, to this script) stops the group: the services,
# the runs they launched and the runs' workers, within 10 s; runs in flight record their end
# (README, "Recovery"). A stop is a normal end (exit 0, so make reports no error). SIGINT to
# make's process group does the same when `make run` was started with SIGINT ignored (below).
# The Dagster instance is the repository's dagster.yaml: DAGSTER_HOME is the repository root, always
# (an exported DAGSTER_HOME of another project does not apply here), and that file keeps Dagster's
# own files in the two folders set below, under the data dir.
# Overrides: HOST, PORT, INVOICE_PIPELINES_DATA_DIR (default .data), INVOICE_PIPELINES_UPLOAD_DIR,
# INVOICE_PIPELINES_DAGSTER_DIR, INVOICE_PIPELINES_DAGSTER_COMPUTE_LOGS_DIR, VERBOSE.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
# Started with SIGINT ignored (`make run &` from a script, a supervisor without a terminal: a
# non-interactive shell's `&` ignores SIGINT and SIGQUIT for what it starts, and make passes that
# on), bash cannot trap SIGINT: the stop below never ran, and a SIGINT to make's process group
# reached only the sweep, which gave up after its timeout while Dagster ran on (and the runs a
# later kill ended were worded as crashes). So this script says so and starts itself again with
# SIGINT at its default, and handles it as it handles SIGTERM; everything it starts then gets
# SIGINT at its default too. make itself keeps ignoring it and ends when this script does.
sigint_ignored() {  # SigIgn is a hex mask, bit 1 (value 2) is SIGINT
  local mask
  mask=$(awk '/^SigIgn:/ {print $2}' "/proc/$$/status" 2>/dev/null) || return 1
  [ -n "$mask" ] && (((16#$mask & 2) != 0))
}
make_pid() {  # make, if this script's parent (or the shell between them) is make; else this script
  local pid=$$ parent comm
  for _ in 1 2; do
    parent=$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ') || break
    comm=$(ps -o comm= -p "$parent" 2>/dev/null) || break
    case "$comm" in make | gmake) echo "$parent"; return 0 ;; esac
    pid=$parent
  done
  echo $$
}
if [ -z "${INVOICE_PIPELINES_RUN_SIGINT_RESET:-}" ] && sigint_ignored; then
  echo "make run: SIGINT is ignored in this shell (started in the background?); make run" \
    "stops on it all the same: SIGINT or SIGTERM to its process group, or kill -TERM $(make_pid)"
  export INVOICE_PIPELINES_RUN_SIGINT_RESET=1
  if env --default-signal=INT true 2>/dev/null; then
    exec env --default-signal=INT "$repo/scripts/run-dagster.sh" "$@"
  fi
  exec .venv/bin/python -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$repo/scripts/run-dagster.sh" "$@"
fi
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-3000}"
data_dir="${INVOICE_PIPELINES_DATA_DIR:-.data}"
[[ "$data_dir" = /* ]] || data_dir="$repo/$data_dir"
upload_dir="${INVOICE_PIPELINES_UPLOAD_DIR:-$data_dir/uploads}"
export DAGSTER_HOME="$repo"
export INVOICE_PIPELINES_DAGSTER_DIR="${INVOICE_PIPELINES_DAGSTER_DIR:-$data_dir/dagster}"
export INVOICE_PIPELINES_DAGSTER_COMPUTE_LOGS_DIR="${INVOICE_PIPELINES_DAGSTER_COMPUTE_LOGS_DIR:-$INVOICE_PIPELINES_DAGSTER_DIR/compute_logs}"
# telemetry is off in dagster.yaml, yet the webserver and the daemon start its upload thread, which
# makes empty logs/ and .logs_queue/ folders in DAGSTER_HOME (the repository root) unless this is set
export DAGSTER_DISABLE_TELEMETRY=1
export OMP_THREAD_LIMIT=1  # Tesseract: one thread per page, the parser pool already uses the cores
# the demo's invoice mailbox (demo/mailbox.py): the password mailbox_sensor logs in with, by the
# variable the organization's mailbox names (never stored)
export INVOICE_PIPELINES_DEMO_IMAP_PASSWORD="${INVOICE_PIPELINES_DEMO_IMAP_PASSWORD:-local-imap-password}"

# where each service's output goes: its own file under $logs_dir, or the terminal with VERBOSE=1
logs_dir="$data_dir/logs"
verbose="${VERBOSE:-}"
[ "$verbose" = 0 ] && verbose=""
dagster_level=warning
[ -n "$verbose" ] && dagster_level=info
mkdir -p "$logs_dir"
# Every service starts with SIGINT, SIGQUIT and SIGTERM at their defaults. A non-interactive shell
# starts a background command (`&`, without job control, as in the subshell below) with SIGINT
# and SIGQUIT ignored, and Dagster's code server, its `dagster api grpc` child and the daemon copy
# SIGINT's handling to SIGTERM at start (dagster._utils.interrupts.setup_interrupt_handlers): they
# ignored SIGTERM too and only SIGKILL ended them. `env --default-signal` (coreutils 8.31+) or,
# without it, Python resets them before the service's own program replaces it (exec).
# The sweep (below) takes SIGINT like SIGTERM, as the end of its wait, once its handlers are in
# place; until then (Dagster's import, seconds) SIGINT at its default ended it with a
# KeyboardInterrupt, so it starts with SIGINT ignored instead (Python then leaves it so until the
# sweep sets its handler).
if env --default-signal=INT true 2>/dev/null; then
  default_signals=(env --default-signal=INT,QUIT,TERM)
  sweep_signals=(env --ignore-signal=INT --default-signal=QUIT,TERM)
else
  default_signals=(.venv/bin/python -c 'import os, signal, sys
for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM): signal.signal(s, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])')
  sweep_signals=(.venv/bin/python -c 'import os, signal, sys
for s in (signal.SIGQUIT, signal.SIGTERM): signal.signal(s, signal.SIG_DFL)
signal.signal(signal.SIGINT, signal.SIG_IGN)
os.execvp(sys.argv[1], sys.argv[1:])')
fi
to_log() {  # exec "$@" (in a background subshell) with its output in $logs_dir/$1.log, appended,
  # or in the terminal; with the signals at their defaults
  local name="$1"
  shift
  if [ -n "$verbose" ]; then
    exec "${default_signals[@]}" "$@"
  else
    exec "${default_signals[@]}" "$@" >>"$logs_dir/$name.log" 2>&1
  fi
}
show_logs() {  # the last lines of every service's log, when something went wrong
  [ -n "$verbose" ] && return 0
  for log in "$logs_dir"/*.log; do
    [ -s "$log" ] || continue
    echo "--- last lines of $log" >&2
    tail -n 15 "$log" >&2
  done
}

# the webserver and the daemon reach the one code server through a socket in a private folder
run_dir="$(mktemp -d "${TMPDIR:-/tmp}/invoice-pipelines.XXXXXX")"
socket="$run_dir/code-server.sock"
cat > "$run_dir/workspace.yaml" <<YAML
load_from:
  - grpc_server:
      socket: $socket
      host: localhost
      location_name: invoice_pipelines
YAML

# the demo's QuickBooks Online: the local simulator with one company per demo organization
# (seed-demo connected them, see invoice_pipelines_devtools/demo/quickbooks.py); their tokens are
# encrypted with the demo's own key, generated once into $data_dir/qbo/token.key
qbo_url="${INVOICE_PIPELINES_QBO_BASE_URL:-http://127.0.0.1:8765}"
export INVOICE_PIPELINES_QBO_BASE_URL="$qbo_url"
export INVOICE_PIPELINES_QBO_TOKEN_URL="${INVOICE_PIPELINES_QBO_TOKEN_URL:-$qbo_url/oauth2/v1/tokens/bearer}"
INVOICE_PIPELINES_QBO_TOKEN_KEY="$(.venv/bin/python -m invoice_pipelines_devtools.demo.quickbooks key --data-dir "$data_dir")"
export INVOICE_PIPELINES_QBO_TOKEN_KEY
# the simulator's port when the URL is a loopback one (elsewhere: no simulator, the URL is real)
qbo_port=$(.venv/bin/python -c "import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(p.port or 80 if p.hostname in ('127.0.0.1', 'localhost') else '')" "$qbo_url")

# The stop: 10 s from the signal to the last process. SIGTERM to the whole group first: the run
# workers record their runs as failed ("interrupted") or cancelled, the daemon ends its tick, and
# every process ends on its own within GRACE_SECONDS: each Python process of it has
# PROCESS_SECONDS from the stop on before it ends itself, saying where it stood
# (invoice_pipelines/resources/workers/stop_deadline.py; the stop file tells them the stop has begun).
# KILL for what is left after GRACE_SECONDS, named in stop.log as having needed it. The sweep
# started beside the group records the end of the runs that could not through the instance: from
# the stop's start, each run whose process has gone (while the services still end), and once the
# group is empty the rest (cut off at their deadline, killed, or still starting).
GRACE_SECONDS=7    # for the runs to record their end; then SIGKILL
PROCESS_SECONDS=5  # each process's own deadline, within the grace
STOP_SECONDS=9     # the end of the stop, sweep included (the promise is 10)
now_ms() { local t="${EPOCHREALTIME//[.,]/}"; echo $((t / 1000)); }
group=""
sweep=""
stopping=""
stop_file="$run_dir/stopping"
export INVOICE_PIPELINES_STOP_FILE="$stop_file"
group_left() {  # the processes of the group still running ($1: one to disregard, with its children)
  ps -e -o pgid=,pid=,ppid=,stat=,args= 2>/dev/null |
    awk -v g="$group" -v me="${1:-0}" '$1 == g && $2 != me && $3 != me && $4 !~ /^Z/' |
    cut -c1-160
}
group_pids() {  # the pids of the group's processes, one a line
  ps -e -o pgid=,pid=,stat= 2>/dev/null | awk -v g="$group" '$1 == g && $3 !~ /^Z/ {print $2}'
}
signalled=""
begin_the_stop() {  # the stop file first (atomically), then SIGTERM to the group and the strays
  echo "$PROCESS_SECONDS" >"$stop_file.new" 2>/dev/null && mv -f "$stop_file.new" "$stop_file"
  signalled=" $(group_pids | tr '\n' ' ') "
  kill -TERM -- "-$group" 2>/dev/null || true
  local left
  left=$(strays)
  [ -z "$left" ] || kill -TERM $left 2>/dev/null || true
}
# A process started after the group's SIGTERM never had one: a run at work when the stop began
# may still start a step, and with it Dagster's compute-log tail and its orphan watcher (a Python
# process that ends once its run has gone, if it gets the CPU: a bulk run's, niced, did not within
# the grace beside two busy processes, and needed SIGKILL). Each gets its SIGTERM once, as the
# others did; those that had theirs are not signalled again (a second one means "force" to some).
signal_the_late() {
  local pid
  for pid in $(group_pids); do
    case "$signalled" in *" $pid "*) continue ;; esac
    signalled+="$pid "
    kill -TERM "$pid" 2>/dev/null || true
  done
}
# said_where_they_stood: the processes that ended themselves at their deadline, one line each in
# stop.log; where their threads were only when the stop hung (a process needed SIGKILL)
# shellcheck source=scripts/stop-log.sh
. "$repo/scripts/stop-log.sh"
# Processes of this `make run` that left its process group: the intake's parse server and its
# workers start sessions of their own (they outlive a run and end when their owner has ended, in
# up to half a minute). Every process `make run` starts carries MAKE_RUN_ID in its environment.
MAKE_RUN_ID="$run_dir"
export MAKE_RUN_ID
script_group=$(ps -o pgid= -p $$ 2>/dev/null | tr -d ' ') || true
strays() {
  local file pid pgid
  for file in $(grep -l -s -z -x "MAKE_RUN_ID=$MAKE_RUN_ID" /proc/[0-9]*/environ); do
    pid=${file#/proc/}
    pid=${pid%/environ}
    pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ') || continue
    [ -n "$pgid" ] && [ "$pgid" != "$group" ] && [ "$pgid" != "$script_group" ] &&
      [ "$pid" != "$sweep" ] && echo "$pid"
  done
  return 0
}
stop() {
  # a second signal must not cut the stop short: make forwards its SIGTERM to this script, and a
  # TERM to make's process group reaches both (before, the second one ended the script before its
  # KILL and left what ignored SIGTERM running). A no-op, not '' (ignore): a signal that arrived
  # while this handler began, its trap then set to ignore, made bash print "run_pending_traps: bad
  # value in trap_list[15]: 0x1" into the terminal (1 of 15 rounds under load); a wait below that
  # the no-op interrupts is followed by the polling that bounds it anyway
  trap : INT TERM
  trap - EXIT
  [ -n "$stopping" ] && return 0
  stopping=1
  if [ -n "$group" ] && kill -0 -- "-$group" 2>/dev/null; then
    local started log="$logs_dir/stop.log"
    [ -n "$verbose" ] && log=/dev/stderr
    started=$(now_ms)
    begin_the_stop
    [ -z "$sweep" ] || kill -TERM "$sweep" 2>/dev/null || true  # it waits STOP_SECONDS at most
    local left
    while { [ -n "$(group_left)" ] || [ -n "$(strays)" ]; } &&
      (($(now_ms) - started < GRACE_SECONDS * 1000)); do
      signal_the_late
      sleep 0.1
    done
    local ended=$(($(now_ms) - started))
    left="$(group_left)"
    local strayed
    strayed=$(strays)
    [ -z "$strayed" ] || left+=$'\n'"$(ps -o pgid=,pid=,args= -p "${strayed//$'\n'/,}" 2>/dev/null | cut -c1-160)"
    kill -KILL -- "-$group" 2>/dev/null || true
    [ -z "$strayed" ] || kill -KILL $strayed 2>/dev/null || true
    local hung=""
    [ -z "${left//[[:space:]]/}" ] || hung=1
    { said_where_they_stood "$stop_file" "$hung"
      if [ -n "$hung" ]; then
        echo "$(date +%T) needed SIGKILL (still running $GRACE_SECONDS s after SIGTERM):"
        echo "$left" | grep -v '^[[:space:]]*$'
      else
        echo "$(date +%T) needed SIGKILL: none"
      fi
    } >>"$log" 2>&1 || true
    wait "$group" 2>/dev/null || true  # the group's leader has ended by now (or was killed)
    while [ -n "$sweep" ] && kill -0 "$sweep" 2>/dev/null &&
      (($(now_ms) - started < STOP_SECONDS * 1000)); do
      sleep 0.1
    done
    if [ -n "$sweep" ] && kill -0 "$sweep" 2>/dev/null; then
      kill -KILL "$sweep" 2>/dev/null || true
      echo "make run: runs still in flight are marked failed within a minute of the next start" >&2
    fi
    [ -z "$sweep" ] || wait "$sweep" 2>/dev/null || true
    echo "$(date +%T) stop: the services and runs ended in $ended ms, the stop in" \
      "$(($(now_ms) - started)) ms" >>"$log"
  fi
  rm -rf "$run_dir"
}
# Ctrl-C is how a user ends `make run`, and SIGTERM is how a supervisor does: both a normal end,
# not an error (exit 130 or 143 made make print "make: *** [run] Error 130")
stopped() {
  stop
  echo "make run: stopped (Dagster, its runs and the demo services)"
  exit 0
}
trap stopped INT TERM
trap stop EXIT
script_pid=$$

# job control: the subshell becomes the leader of a new process group that holds everything
# Dagster starts (the subshell's own children do not get groups of their own)
set -m
(
  # stopped with the rest: a normal end (a subshell ended by SIGTERM made bash print "Terminated")
  trap 'exit 0' TERM
  # the code server also runs the sensors and the runs (their events are in the UI, and here)
  # (invoice_pipelines/code_server.py: Dagster's code server, whose runs start from a process that
  # has imported the code already, in milliseconds instead of seconds)
  to_log code-server .venv/bin/python -m invoice_pipelines.code_server code-server start \
    --socket "$socket" \
    --location-name invoice_pipelines -m invoice_pipelines.definitions -d "$repo" \
    --log-level warning &
  code_server=$!
  # the webserver and the daemon look for the code once at start: let it answer first
  until [ -S "$socket" ] && .venv/bin/dagster api grpc-health-check --socket "$socket" >/dev/null 2>&1; do
    kill -0 "$code_server" 2>/dev/null || exit 1
    sleep 0.5
  done
  # the webserver and the daemon through stop_deadline: each ends on its own within the grace
  to_log webserver .venv/bin/python -m invoice_pipelines.resources.workers.stop_deadline \
    .venv/bin/dagster-webserver -w "$run_dir/workspace.yaml" -h "$HOST" \
    -p "$PORT" --dagster-log-level "$dagster_level" &
  webserver=$!
  to_log daemon .venv/bin/python -m invoice_pipelines.resources.workers.stop_deadline \
    .venv/bin/dagster-daemon run -w "$run_dir/workspace.yaml" \
    --log-level "$dagster_level" &
  daemon=$!
  # the demo's mail server (send_invoices_job e-mails there): each message lands in $data_dir/mail
  # as an .eml file; a port already taken only costs the demo its mail, not the rest
  to_log smtp .venv/bin/python -m invoice_pipelines_devtools.standins.smtp \
    --port "${INVOICE_PIPELINES_SMTP_PORT:-1025}" --maildir "$data_dir/mail" &
  # the demo's invoice mailbox (demo/mailbox.py): an IMAP server and an SMTP server that delivers
  # into it; a supplier's e-mail with an XRechnung and a Factur-X, sent once per data dir, which
  # mailbox_sensor reads into mueller-werkzeugbau's intake
  to_log mailbox .venv/bin/python -m invoice_pipelines_devtools.demo.mailbox \
    --port "${INVOICE_PIPELINES_DEMO_IMAP_PORT:-1143}" \
    --smtp-port "${INVOICE_PIPELINES_DEMO_MAIL_SMTP_PORT:-2525}" --data-dir "$data_dir" &
  # the demo's SMS/WhatsApp provider (send_text_messages_job): accepted messages are appended
  # to $data_dir/messages/messages.jsonl; the port is the one INVOICE_PIPELINES_SMS_URL names
  sms_port=$(.venv/bin/python -c "import os, urllib.parse as u; print(u.urlsplit(os.environ.get('INVOICE_PIPELINES_SMS_URL') or 'http://127.0.0.1:8031').port or 8031)")
  to_log sms .venv/bin/python -m invoice_pipelines_devtools.standins.sms --port "$sms_port" \
    --outdir "$data_dir/messages" &
  # the demo's Peppol access point (demo/peppol.py): send_invoices_job sends brandt-it-service's
  # invoices to its customer on Peppol through it, each message kept in $data_dir/peppol/; it
  # forwards one received Peppol invoice to brandt-it-service's intake; the port is the one
  # INVOICE_PIPELINES_PEPPOL_AP_URL names
  peppol_port=$(.venv/bin/python -c "import os, urllib.parse as u; print(u.urlsplit(os.environ.get('INVOICE_PIPELINES_PEPPOL_AP_URL') or 'http://127.0.0.1:8034').port or 8034)")
  to_log peppol .venv/bin/python -m invoice_pipelines_devtools.demo.peppol --port "$peppol_port" \
    --data-dir "$data_dir" &
  # the demo's QuickBooks Online (qbo_* assets, sensors and schedules): companies, records and
  # tokens kept in $data_dir/qbo; its start-up line (stdout) names credentials, so it is dropped
  if [ -n "$qbo_port" ]; then
    if [ -n "$verbose" ]; then qbo_log=/dev/stderr; else qbo_log="$logs_dir/quickbooks.log"; fi
    "${default_signals[@]}" .venv/bin/python -m invoice_pipelines_devtools.demo.quickbooks serve \
      --data-dir "$data_dir" --port "$qbo_port" >/dev/null 2>>"$qbo_log" &
  fi
  # should this script end without its stop (SIGKILL), the group stops itself: TERM, 7 s, KILL
  (
    # the script's own stop; SIGINT too: a subshell started with `&` inside this group (no job
    # control here) has SIGINT and SIGQUIT ignored, and should end on SIGINT as the services do
    trap 'exit 0' INT TERM
    while kill -0 "$script_pid" 2>/dev/null; do sleep 1; done
    trap '' TERM
    me=$BASHPID
    group=$(ps -o pgid= -p "$me" 2>/dev/null | tr -d ' ') || true  # for the functions above
    begin_the_stop
    for _ in $(seq 1 70); do
      [ -n "$group" ] && [ -z "$(group_left "$me")" ] && break
      sleep 0.1
    done
    left=$(strays)
    [ -z "$left" ] || kill -KILL $left 2>/dev/null || true
    # the script's stop removes the private folder (the code server's socket, the workspace);
    # without it (SIGKILL: an interrupted `make test` ends its make run so) the folder stayed in
    # the system's temp directory (issue 85)
    rm -rf "$run_dir" 2>/dev/null || true
    kill -KILL 0
  ) 2>/dev/null &  # its sleep, ended by the group's TERM, made bash print "Terminated"
  wait -n "$code_server" "$webserver" "$daemon"  # the demo needs all three: when one ends, stop
) &
group=$!
set +m
# beside the group, with Dagster loaded while nothing is stopping: once the group has ended,
# however it ended, it records the end of the runs that could not (housekeeping/dead_runs.py)
"${sweep_signals[@]}" .venv/bin/python -m invoice_pipelines.housekeeping.dead_runs \
  --after-group "$group" --gone-socket "$socket" --stop --timeout "$STOP_SECONDS" \
  >>"$logs_dir/stop.log" 2>&1 &
sweep=$!

for _ in $(seq 1 180); do
  # python, not curl: the venv is the one tool a fresh machine is sure to have here
  if .venv/bin/python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" \
      "http://$HOST:$PORT/server_info" >/dev/null 2>&1; then
    ui="http://$HOST:$PORT"
    # where this UI and its instance are, for the commands of a second shell (no variable to
    # set: invoice_pipelines/resources/dagster_instance/local_dagster.py reads it for what is not set)
    .venv/bin/python -c 'import json, os, sys
host, port, home, path = sys.argv[1:]
url = "http://%s:%s" % ("127.0.0.1" if host in ("0.0.0.0", "::") else host, port)
written = {"url": url, "dagster_home": home,
           "dagster_dir": os.environ["INVOICE_PIPELINES_DAGSTER_DIR"],
           "compute_logs_dir": os.environ["INVOICE_PIPELINES_DAGSTER_COMPUTE_LOGS_DIR"]}
with open(path + ".tmp", "w") as out:
    json.dump(written, out)
os.replace(path + ".tmp", path)' "$HOST" "$PORT" "$DAGSTER_HOME" "$data_dir/local-dagster.json"
    cat <<TOUR

Dagster UI is up: $ui   (Ctrl-C stops it and everything it started)
  1. Runs        $ui/runs        the demo at work: batch job 1, then four supplier invoices read
  2. Assets      $ui/assets      per-organization stats; open one and look at its plots
  3. Automation  $ui/automation  sensors and schedules, on; drop invoices into $upload_dir/<org>/
  4. Documents   invoice PDFs land in $data_dir/documents/; send_invoices_job mails them to $data_dir/mail/,
                 send_text_messages_job texts them to $data_dir/messages/; brandt-it-service's
                 invoices to Wiener Softwarehaus go over Peppol ($data_dir/peppol/, group peppol)
  5. QuickBooks  the demo organizations sync with the QBO simulator at $qbo_url (group quickbooks)
  6. Dunning     three overdue invoices of mueller-werkzeugbau: materialize its dunning_notices
                 partition (group overdue) with the config confirm: "send notices" (what sends,
                 issues or pushes asks for its words): a reminder, a first dunning and a final
                 notice, each mailed with its PDF letter to $data_dir/mail/ (the letters:
                 $data_dir/documents/)
  7. Mailbox     a supplier e-mailed mueller-werkzeugbau an XRechnung and a Factur-X (IMAP on
                 127.0.0.1:${INVOICE_PIPELINES_DEMO_IMAP_PORT:-1143}): mailbox_sensor reads them into its intake
                 (asset mailbox_messages); \`incoming show\` gives their source
$( [ -n "$verbose" ] || echo "Logs of the services (runs and sensors: code-server.log): $logs_dir/  (VERBOSE=1 prints them here)")

TOUR
    break
  fi
  if ! kill -0 "$group" 2>/dev/null; then
    show_logs
    echo "Dagster stopped before the UI came up (see the messages above)" >&2
    exit 1
  fi
  sleep 1
done
wait "$group"
show_logs
echo "a Dagster service exited (see the messages above); stopping the others" >&2
exit 1
