#!/usr/bin/env bash
# What key-value operations cost a function: a get and a set per request against hello, and
# increments of one key under 32 concurrent clients. Run `bench/kv.sh --help`.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-10}
WARMUP=2
THREADS=2
CONNECTIONS=${CONNECTIONS:-16}
HOT_CONNECTIONS=32
KV_WASM=target/guests/wasm32-wasip2/release/kv.wasm
RESULTS=bench/results/kv.md

usage() {
    cat <<EOF
Usage: bench/kv.sh [--help]

Builds Vireo (release), the example components and the kv test fixture (one wasi:keyvalue
operation per request), starts vireo serve on 127.0.0.1 with its default SQLite store, and
deploys hello and kv (granted the default store), both with fresh instances per request. Then:
  1. hello with wrk -t$THREADS -c$CONNECTIONS -d\${DURATION}s --latency;
  2. kv's /get-set (a get and a set of one key per request) the same way;
  3. hello and /get-set again on one connection (wrk -t1 -c1), where no request queues
     behind another, for the latency each operation adds;
  4. kv's /increment of one key with wrk -c$HOT_CONNECTIONS, checking that the counter moved
     by the requests answered.
Prints the results as Markdown, also written with the machine details and the exact commands to
$RESULTS. Installs wrk, curl and jq (apt-get) and the wasm32-wasip2 target (rustup) when
missing.

The targets (issue "State for functions"): get+set at >= 60 % of hello's throughput; each
operation adds <= 50 us at p50 ((p50 of get-set - p50 of hello) / 2, on one connection).

Options:
  -h, --help        show this help

Environment:
  DURATION          seconds of each measurement (default 10)
  CONNECTIONS       wrk connections for hello and get-set (default 16)
  VIREO_BIN         a prebuilt vireo binary to measure (default: build target/release/vireo)
EOF
}

accept_options "" "" "$@"
require_whole DURATION seconds
require_whole CONNECTIONS connections
init_work vireo-kv
ensure_wrk
ensure_tool curl
ensure_tool jq
ensure_wasip2_target
build_vireo
run cargo build --manifest-path tests/fixtures/Cargo.toml --target wasm32-wasip2 --release \
    --target-dir target/guests -p kv
[[ -e $KV_WASM ]] || die "the build did not produce $KV_WASM"

start_vireo vireo "$WORK/data"
BASE=http://$SERVER_ADDR
deploy_hello hello
deploy_component kv "$KV_WASM" '{"key_value_stores":["default"]}'
check_hello vireo "$BASE/fn/default/hello/"
check_answer kv "$BASE/fn/default/kv/get-set?key=bench&value=v" "ok
"

run_wrk hello "$BASE/fn/default/hello/" "$DURATION"
HELLO_RPS=$RPS HELLO_P50=$P50 HELLO_P99=$P99 HELLO_ERRORS=$ERRORS HELLO_CPU=$CPU_US
run_wrk get-set "$BASE/fn/default/kv/get-set?key=bench&value=v" "$DURATION"
KV_RPS=$RPS KV_P50=$P50 KV_P99=$P99 KV_ERRORS=$ERRORS KV_CPU=$CPU_US
((HELLO_ERRORS == 0 && KV_ERRORS == 0)) ||
    die "errors during the measurements (hello $HELLO_ERRORS, get-set $KV_ERRORS)"
# per_operation_us KV_P50 HELLO_P50 : what each of get-set's two operations adds at p50.
per_operation_us() {
    awk -v a="$(wrk_ms "$1")" -v b="$(wrk_ms "$2")" 'BEGIN { printf "%.0f", (a - b) * 1000 / 2 }'
}
PER_OP_US=$(per_operation_us "$KV_P50" "$HELLO_P50")

# One connection: what an operation adds when no request waits behind another. Under the
# loaded runs above, p50 is mostly time queued, which the throughput ratio already reports.
THREADS=1 CONNECTIONS=1 run_wrk hello-alone "$BASE/fn/default/hello/" "$DURATION"
HELLO_ALONE_RPS=$RPS HELLO_ALONE_P50=$P50 HELLO_ALONE_ERRORS=$ERRORS
THREADS=1 CONNECTIONS=1 run_wrk get-set-alone "$BASE/fn/default/kv/get-set?key=bench&value=v" \
    "$DURATION"
KV_ALONE_RPS=$RPS KV_ALONE_P50=$P50 KV_ALONE_ERRORS=$ERRORS
((HELLO_ALONE_ERRORS == 0 && KV_ALONE_ERRORS == 0)) ||
    die "errors on one connection (hello $HELLO_ALONE_ERRORS, get-set $KV_ALONE_ERRORS)"
PER_OP_ALONE_US=$(per_operation_us "$KV_ALONE_P50" "$HELLO_ALONE_P50")

# counter : the value of the key `hot`.
counter() {
    curl -fsS "$BASE/fn/default/kv/increment?key=hot&delta=0" | awk '{print $2}'
}
INCREMENT_URL="$BASE/fn/default/kv/increment?key=hot&delta=1"
run wrk -t"$THREADS" -c"$HOT_CONNECTIONS" -d"${WARMUP}s" "$INCREMENT_URL" >/dev/null
BEFORE=$(counter)
run wrk -t"$THREADS" -c"$HOT_CONNECTIONS" -d"${DURATION}s" --latency "$INCREMENT_URL" >"$WORK/hot.wrk"
AFTER=$(counter)
cat "$WORK/hot.wrk" >&2
HOT_RPS=$(awk '$1 == "Requests/sec:" {print $2}' "$WORK/hot.wrk")
HOT_REQUESTS=$(awk '/requests in/ {print $1}' "$WORK/hot.wrk")
HOT_FAILED=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$WORK/hot.wrk")
((${HOT_FAILED:-0} == 0)) || die "$HOT_FAILED increments failed"
COUNTED=$((AFTER - BEFORE))
# wrk counts the requests answered before its deadline; a few more may be answered after it.
((COUNTED >= HOT_REQUESTS && COUNTED <= HOT_REQUESTS + HOT_CONNECTIONS)) ||
    die "the counter moved by $COUNTED for $HOT_REQUESTS requests answered"

report() {
    echo "# Key-value operations from a function (SQLite store)"
    echo
    machine_section "$(wrk_version)"
    echo "## Results"
    echo
    echo "Fresh instance per request; wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s for hello and get-set."
    echo
    echo "| function | req/s | p50 | p99 | server CPU per request |"
    echo "|---|---|---|---|---|"
    echo "| hello | $HELLO_RPS | $HELLO_P50 | $HELLO_P99 | $HELLO_CPU us |"
    echo "| kv: get + set | $KV_RPS | $KV_P50 | $KV_P99 | $KV_CPU us |"
    echo
    echo "- get + set throughput: $(ratio "$KV_RPS" "$HELLO_RPS") of hello's (target >= 0.60x)"
    echo "- added latency per operation at p50, loaded: ${PER_OP_US} us"
    echo "- on one connection (wrk -t1 -c1): hello $HELLO_ALONE_RPS req/s, p50 $HELLO_ALONE_P50;"
    echo "  get + set $KV_ALONE_RPS req/s, p50 $KV_ALONE_P50; added latency per operation at p50:"
    echo "  ${PER_OP_ALONE_US} us (target <= 50 us)"
    echo "- increments of one key, $HOT_CONNECTIONS connections: $HOT_RPS req/s; the counter moved by"
    echo "  $COUNTED for the $HOT_REQUESTS requests wrk counted answered (none lost)"
    echo
    commands_section
}
report | write_result "$RESULTS"
report
