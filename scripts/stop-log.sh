# What the stop of `make run` writes into stop.log about the processes that ended themselves at
# their deadline (invoice_pipelines/resources/workers/stop_deadline.py): sourced by run-dagster.sh, and by
# invoice_pipelines_tests/resources/test_stop_deadline.py.
#
# Each such process left `<stop file>.<pid>`: its line ("daemon (pid 123) still ending 5 s after
# the stop, where:") and, as faulthandler wrote it at the deadline, where each of its threads was.
# Ending at its deadline is how a slow process ends in a normal stop (the daemon joins its threads
# for up to 30 s, the code server waits for its runs): one line each. The threads, 100 lines and
# more a process, are written only when the stop hangs: a process was still running at the end of
# the grace and needed SIGKILL (issue 73: a normal stop wrote a 130-line thread dump).
said_where_they_stood() {  # $1: the stop file; $2: non-empty when the stop hung
  local dump
  for dump in "$1".[0-9]*; do
    [ -s "$dump" ] && [ "$(wc -l <"$dump")" -gt 1 ] || continue
    if [ -n "${2:-}" ]; then
      cat "$dump"
    else
      echo "$(head -n 1 "$dump" | sed 's/, where:$//'): ended itself at its deadline"
    fi
  done
  return 0
}
