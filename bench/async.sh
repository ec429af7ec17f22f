#!/usr/bin/env bash
# Measures the durable async queue on SQLite: invocations accepted/s and completed/s under
# sustained load, and the latency from 202 to succeeded. Run `bench/async.sh --help` for usage.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-30}
THREADS=1
CONNECTIONS=${CONNECTIONS:-64}
CONCURRENCY=${CONCURRENCY:-64}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-600}
RESULTS=bench/results/async.md

usage() {
    cat <<EOF
Usage: bench/async.sh [--help]

Builds Vireo (release) and the example components, starts vireo serve on 127.0.0.1 with
  [async] concurrency = CONCURRENCY, max_pending_per_namespace = 10000000
deploys hello (a no-op that answers 14 bytes), then:
  1. load: wrk -t$THREADS -cCONNECTIONS -dDURATION s, every request a
     POST /fn/default/hello/ with Prefer: respond-async (answered 202 once stored and synced);
     accepted/s is wrk's rate (any answer but 2xx is counted as an error);
  2. completed/s: the function's succeeded count (GET .../functions/hello/queue) at the start
     and the end of the load, over the load's duration: deliveries sustained while accepting;
  3. drain: polls the queue until nothing is queued or running (at most DRAIN_TIMEOUT s);
  4. latency: updated_at - accepted_at of every succeeded invocation, read with sqlite3 from
     the data directory after the server stopped: p50/p99/max from 202 to succeeded.
Prints the results as Markdown, also written with the machine details and the exact commands
to $RESULTS. Installs wrk, jq and sqlite3 (apt-get) and the wasm32-wasip2 target (rustup)
when missing.

Options:
  -h, --help      show this help

Environment:
  DURATION        seconds of load (default 30)
  CONNECTIONS     wrk connections (default 64: enough accepts in flight to share each synced commit)
  CONCURRENCY     the server's [async] concurrency (default 64, Vireo's default)
  DRAIN_TIMEOUT   seconds to wait for the queue to empty after the load (default 600)
  VIREO_BIN       a vireo binary to run as it is, e.g. another build to compare
                  (default: builds target/release/vireo)
  START_TIMEOUT   seconds to wait for the server to print its address (default 180)
EOF
}

queue_url() { printf 'http://%s/v1/namespaces/default/functions/hello/queue' "$SERVER_ADDR"; }

succeeded() { admin_curl -fsS --max-time 5 "$(queue_url)" | jq -r .succeeded; }

drained() { admin_curl -fsS --max-time 5 "$(queue_url)" | jq -e '.queued + .running == 0' >/dev/null; }

main() {
    accept_options "" "" "$@"
    require_whole DURATION seconds
    require_whole CONNECTIONS connections
    require_whole CONCURRENCY invocations
    require_whole DRAIN_TIMEOUT seconds

    init_work vireo-async
    ensure_wrk
    ensure_tool jq
    ensure_tool sqlite3
    ensure_wasip2_target
    build_vireo

    local config=$WORK/vireo-server.toml script=$WORK/async.lua
    printf '[async]\nconcurrency = %s\nmax_pending_per_namespace = 10000000\n' "$CONCURRENCY" >"$config"
    printf '%s\n' 'wrk.method = "POST"' "wrk.body = '{\"job\":1}'" \
        'wrk.headers["Prefer"] = "respond-async"' \
        'wrk.headers["Content-Type"] = "application/json"' >"$script"
    start_vireo vireo "$WORK/data" --config "$config"
    deploy_hello hello
    check_hello vireo "http://$SERVER_ADDR/fn/default/hello/"

    local before after start load_seconds
    record "# async.lua: $(tr '\n' ' ' <"$script")"
    record "$(quote curl -fsS -H "Authorization: Bearer \$VIREO_ADMIN_KEY" "$(queue_url)")  # succeeded, before and after the load"
    before=$(succeeded)
    start=$(now_us)
    run wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s "$script" "http://$SERVER_ADDR/fn/default/hello/" \
        >"$WORK/load.wrk"
    load_seconds=$(seconds_since "$start")
    after=$(succeeded)
    cat "$WORK/load.wrk" >&2
    local accepted_rps requests errors completed_rps
    accepted_rps=$(awk '$1 == "Requests/sec:" {print $2}' "$WORK/load.wrk")
    requests=$(awk '/requests in/ {print $1}' "$WORK/load.wrk")
    errors=$(awk '
        /Non-2xx or 3xx responses:/ {n += $NF}
        /Socket errors:/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10}
        END {print n + 0}' "$WORK/load.wrk")
    completed_rps=$(awk -v a="$before" -v b="$after" -v s="$load_seconds" 'BEGIN { printf "%.0f", (b - a) / s }')

    log "draining the queue"
    record "$(quote curl -fsS -H "Authorization: Bearer \$VIREO_ADMIN_KEY" "$(queue_url)")  # until queued + running == 0"
    start=$(now_us)
    wait_for "$DRAIN_TIMEOUT" 0.2 drained || die "the queue did not drain within ${DRAIN_TIMEOUT}s"
    local drain_seconds
    drain_seconds=$(seconds_since "$start")
    stop_server

    run sqlite3 "$WORK/data/vireo.db" \
        "SELECT (updated_at_us - accepted_at_us) / 1000.0 FROM async_invocations WHERE status = 'succeeded'" \
        >"$WORK/latency.ms"
    local count p50 p99 max
    read -r count p50 p99 max < <(stats "$WORK/latency.ms")

    {
        echo "# Async invocations on SQLite"
        echo
        echo "hello (a no-op answering 14 bytes) invoked with \`Prefer: respond-async\` by wrk -t$THREADS -c$CONNECTIONS for ${DURATION}s;"
        echo "each 202 was sent only after the invocation was committed and synced (SQLite WAL, \`synchronous = FULL\`)."
        echo
        echo "| accepted/s | completed/s during the load | requests | errors | drain after the load (s) | 202 → succeeded p50 (ms) | p99 (ms) | max (ms) | succeeded |"
        echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        echo "| $(fmt "$accepted_rps" 0) | $completed_rps | $requests | $errors | $drain_seconds | $(fmt "$p50" 1) | $(fmt "$p99" 1) | $(fmt "$max" 1) | $count |"
        echo
        machine_section "$(wrk_version)"
        echo "## Config"
        echo
        echo '```toml'
        cat "$config"
        echo '```'
        echo
        commands_section
    } | write_result "$RESULTS"
    cat "$RESULTS"
}

main "$@"
