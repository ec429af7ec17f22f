#!/usr/bin/env bash
# Measures Vireo's cold starts of the hello function: after scale to zero and after a restart.
# Run `bench/cold-start.sh --help` for usage.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COUNT=${COUNT:-200}
RESTARTS=${RESTARTS:-30}
IDLE_TTL_MS=${IDLE_TTL_MS:-50}
COLD_TIMEOUT=10  # seconds to wait for a version to be scaled to zero
RESULTS=bench/results/cold-start.md

usage() {
    cat <<EOF
Usage: bench/cold-start.sh [--help]

Builds Vireo (release) and the example components, then measures cold starts of the hello
function on one server (vireo serve on 127.0.0.1, [scaling] idle_ttl_ms = IDLE_TTL_MS):
  after scale to zero  COUNT times: wait (at most ${COLD_TIMEOUT}s) until GET
                       /v1/namespaces/default/functions/hello shows "warm_versions":[],
                       then time one GET /fn/default/hello/ with curl
  after a restart      RESTARTS times: stop the server (SIGTERM, wait), start it again on the
                       same data directory, time its first GET /fn/default/hello/
Each request's invocation record (GET /v1/invocations/ID) gives the server-side init_us
(loading the compiled artifact plus instantiating) and cold, which must be true (other
answers are counted as anomalies). Prints p50/p99/max of curl's time_total and of init_us as
Markdown, also written with the machine details and the exact commands to $RESULTS.

Installs jq (apt-get) and the wasm32-wasip2 target (rustup) when missing.

Options:
  -h, --help     show this help

Environment:
  COUNT          cold starts after scale to zero (default 200)
  RESTARTS       cold starts after a restart (default 30)
  IDLE_TTL_MS    the server's [scaling] idle_ttl_ms (default 50)
  VIREO_BIN      a vireo binary to run as it is, e.g. another build to compare
                 (default: builds target/release/vireo)
  START_TIMEOUT  seconds to wait for a server to print its address (default 180)
EOF
}

# ---------------------------------------------------------------------------
# Measuring

# after_scale_to_zero : COUNT cold starts, each after the version was scaled to zero.
after_scale_to_zero() {
    local i start
    record "# then $COUNT times: poll until warm_versions is [], time one request, read its record"
    record "$(quote curl -fsS -H "Authorization: Bearer \$VIREO_ADMIN_KEY" "$(function_api hello)")  # until .warm_versions == []"
    record "$(quote curl -sS -D headers -o body -w '%{http_code} %{time_total}' "http://$SERVER_ADDR/fn/default/hello/")"
    record "$(quote curl -fsS -H "Authorization: Bearer \$VIREO_ADMIN_KEY" "http://$SERVER_ADDR/v1/invocations/ID")  # ID from x-vireo-invocation-id; until it exists"
    log "after scale to zero: $COUNT cold starts"
    start=$(now_us)
    for ((i = 1; i <= COUNT; i++)); do
        wait_for "$COLD_TIMEOUT" 0.01 scaled_to_zero hello ||
            die "hello was not scaled to zero within ${COLD_TIMEOUT}s (idle_ttl_ms = $IDLE_TTL_MS)"
        timed_cold_request scale hello "$HELLO_BODY"
        if ((i % 50 == 0)); then log "after scale to zero: $i/$COUNT"; fi
    done
    SCALE_SECONDS=$(seconds_since "$start")
}

# after_restart CONFIG : RESTARTS cold starts, each the first request after a restart.
after_restart() {
    local config=$1 i start
    record "# then $RESTARTS times: stop the server (SIGTERM, wait), start it again (same command), time its first request as above"
    log "after a restart: $RESTARTS cold starts"
    start=$(now_us)
    for ((i = 1; i <= RESTARTS; i++)); do
        stop_server
        start_vireo vireo "$WORK/data" --config "$config"
        timed_cold_request restart hello "$HELLO_BODY"
        if ((i % 10 == 0)); then log "after a restart: $i/$RESTARTS"; fi
    done
    RESTART_SECONDS=$(seconds_since "$start")
}

# ---------------------------------------------------------------------------
# Report

table() {
    echo "| cold start after | samples | not cold | client p50 (ms) | client p99 (ms) | client max (ms) | init p50 (ms) | init p99 (ms) | init max (ms) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    cold_row "scale to zero" scale
    cold_row "restart" restart
}

report() {
    {
        echo "# Cold starts of the hello function"
        echo
        echo "One \`vireo serve\` on 127.0.0.1 with \`[scaling] idle_ttl_ms = $IDLE_TTL_MS\`, hello deployed once."
        echo "*client* is curl's \`time_total\` for the request (a new connection each time);"
        echo "*init* is the record's \`init_us\`: loading the version's compiled artifact plus instantiating."
        echo "*not cold* counts records whose \`cold\` was false (expected 0)."
        echo "Percentiles are nearest-rank."
        echo
        table
        echo
        echo "- after scale to zero: $COUNT requests, each once \`warm_versions\` was \`[]\` ($SCALE_SECONDS s in all)"
        echo "- after a restart: $RESTARTS requests, each the first one after SIGTERM and a new \`vireo serve\` on the same data directory ($RESTART_SECONDS s in all)"
        echo
        machine_section "$(curl --version | head -n 1)" "$(rustc --version)"
        echo "## Config"
        echo
        echo '```toml'
        cat "$CONFIG"
        echo '```'
        echo
        commands_section
    } | write_result "$RESULTS"
    cat "$RESULTS"
}

# ---------------------------------------------------------------------------

main() {
    accept_options "" "" "$@"
    require_whole COUNT requests
    require_whole RESTARTS restarts
    require_whole IDLE_TTL_MS milliseconds
    require_whole START_TIMEOUT seconds

    init_work vireo-cold-start
    ensure_tool jq
    ensure_wasip2_target
    build_vireo

    CONFIG=$WORK/vireo-server.toml
    printf '[scaling]\nidle_ttl_ms = %s\n' "$IDLE_TTL_MS" >"$CONFIG"
    declare -gA ANOMALIES=([scale]=0 [restart]=0)
    local file
    for file in scale.total scale.init restart.total restart.init; do : >"$WORK/$file"; done

    start_vireo vireo "$WORK/data" --config "$CONFIG"
    deploy_hello hello
    check_hello vireo "http://$SERVER_ADDR/fn/default/hello/"
    after_scale_to_zero
    after_restart "$CONFIG"
    stop_server

    report
}

main "$@"
