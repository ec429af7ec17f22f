#!/usr/bin/env bash
# What the host's connection pools are worth: a function running `SELECT 1` on PostgreSQL
# through the pool against the same with a fresh connection per invocation (the Lambda
# pattern), and a Redis GET per request against hello. Run `bench/outbound.sh --help`.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-10}
WARMUP=2
THREADS=2
CONNECTIONS=${CONNECTIONS:-16}
# The fresh-connection server's pools: big enough that no invocation waits for a connection.
FRESH_POOL_SIZE=64
OUTBOUND_WASM=target/guests/wasm32-wasip2/release/spin_outbound.wasm
RESULTS=bench/results/outbound.md

usage() {
    cat <<EOF
Usage: bench/outbound.sh [--help]

Builds Vireo (release), the example components and the spin-outbound test fixture (Spin SDK 5:
one PostgreSQL query or one Redis command per request, the SQL or the command in the body),
starts a throwaway PostgreSQL (initdb into a temporary directory) and redis-server on free
127.0.0.1 ports, and measures with wrk -t$THREADS -c$CONNECTIONS -d\${DURATION}s --latency:
  1. a vireo serve with the default [connections] (pools of 8 per version and destination):
     hello, SELECT 1 through spin_sdk::pg4, and GET of one key through spin_sdk::redis;
  2. a vireo serve with [connections] idle_timeout_secs = 0 and pool_size = $FRESH_POOL_SIZE, so
     every invocation opens, authenticates and closes a connection of its own, as a function
     opening its own connection per cold instance does: SELECT 1 again.
PostgreSQL's own count of sessions opened (pg_stat_database.sessions) shows how many
connections each way made. Prints the results as Markdown, also written with the machine
details and the exact commands to $RESULTS. Installs wrk, curl, postgresql and redis-server
(apt-get) and the wasm32-wasip2 target (rustup) when missing.

Options:
  -h, --help        show this help

Environment:
  DURATION          seconds of each measurement (default 10)
  CONNECTIONS       wrk connections (default 16)
  VIREO_BIN         a prebuilt vireo binary to measure (default: build target/release/vireo)
EOF
}

accept_options "" "" "$@"
require_whole DURATION seconds
require_whole CONNECTIONS connections
init_work vireo-outbound
ensure_wrk
ensure_tool curl
ensure_tool redis-server redis-server
ensure_tool redis-cli redis-tools
ensure_wasip2_target
build_vireo
run cargo build --manifest-path tests/fixtures/Cargo.toml --target wasm32-wasip2 --release \
    --target-dir target/guests -p spin-outbound
[[ -e $OUTBOUND_WASM ]] || die "the build did not produce $OUTBOUND_WASM"

start_postgres
"$PG_BIN/createdb" --host 127.0.0.1 --port "$PG_PORT" --username vireo bench
PG_URL=postgres://vireo@127.0.0.1:$PG_PORT/bench
start_broker_redis
run redis-cli -p "$BROKER_PORT" SET bench value >/dev/null
REDIS_URL=$BROKER_URL
GRANTS=$(printf '{"allowed_outbound_hosts":["postgres://127.0.0.1:%s","redis://127.0.0.1:%s"]}' \
    "$PG_PORT" "$BROKER_PORT")

# sessions : the connections PostgreSQL has accepted into the bench database so far.
sessions() {
    "$PG_BIN/psql" --host 127.0.0.1 --port "$PG_PORT" --username vireo --dbname postgres -tAc \
        "SELECT sessions FROM pg_stat_database WHERE datname = 'bench'"
}

# body_script BODY : a wrk script POSTing BODY, printed as its path (run in a command
# substitution: the caller records it).
body_script() {
    local script=$WORK/$(printf '%s' "$1" | tr -c 'a-zA-Z0-9' _).lua
    printf 'wrk.method = "POST"\nwrk.body = "%s"\n' "$1" >"$script"
    printf '%s' "$script"
}

# check_call NAME PATH BODY ADDRESS : one call must answer "ok ..." (the fixture answers 200
# with "error ..." when the interface failed).
check_call() {
    local answer
    answer=$(curl -fsS --max-time 30 -H "address: $4" --data-binary "$3" "$BASE$2") ||
        die "$1: POST $2 failed"
    [[ $answer == ok* ]] || die "$1: POST $2 answered $answer"
}

# measure_call NAME PATH BODY ADDRESS : run_wrk of POST PATH with BODY against ADDRESS, with the
# sessions PostgreSQL opened meanwhile in SESSIONS.
measure_call() {
    local before script
    script=$(body_script "$3")
    record "cat $script  # $(tr '\n' ' ' <"$script")"
    check_call "$1" "$2" "$3" "$4"
    before=$(sessions)
    WRK_SCRIPT=$script run_wrk "$1" "$BASE$2" "$DURATION" "address: $4"
    SESSIONS=$(($(sessions) - before))
    check_call "$1" "$2" "$3" "$4"
}

start_vireo pooled "$WORK/pooled"
BASE=http://$SERVER_ADDR/fn/default/outbound
deploy_hello hello
deploy_component outbound "$OUTBOUND_WASM" "$GRANTS"
check_hello pooled "http://$SERVER_ADDR/fn/default/hello/"
run_wrk hello "http://$SERVER_ADDR/fn/default/hello/" "$DURATION"
HELLO_RPS=$RPS HELLO_P50=$P50 HELLO_P99=$P99 HELLO_ERRORS=$ERRORS HELLO_CPU=$CPU_US
EXTRA_TICKS=postgres_ticks measure_call pooled /pg4/query "SELECT 1" "$PG_URL"
POOL_RPS=$RPS POOL_P50=$P50 POOL_P99=$P99 POOL_ERRORS=$ERRORS POOL_CPU=$CPU_US
POOL_PG_CPU=$EXTRA_CPU_US POOL_SESSIONS=$SESSIONS
measure_call redis /redis/execute "GET bench" "$REDIS_URL"
REDIS_RPS=$RPS REDIS_P50=$P50 REDIS_P99=$P99 REDIS_ERRORS=$ERRORS REDIS_CPU=$CPU_US
stop_server

printf '[connections]\nidle_timeout_secs = 0\npool_size = %s\n' "$FRESH_POOL_SIZE" >"$WORK/fresh.toml"
record "cat $WORK/fresh.toml  # $(tr '\n' ' ' <"$WORK/fresh.toml")"
start_vireo fresh "$WORK/fresh" --config "$WORK/fresh.toml"
BASE=http://$SERVER_ADDR/fn/default/outbound
deploy_component outbound "$OUTBOUND_WASM" "$GRANTS"
EXTRA_TICKS=postgres_ticks measure_call fresh /pg4/query "SELECT 1" "$PG_URL"
FRESH_RPS=$RPS FRESH_P50=$P50 FRESH_P99=$P99 FRESH_ERRORS=$ERRORS FRESH_CPU=$CPU_US
FRESH_PG_CPU=$EXTRA_CPU_US FRESH_SESSIONS=$SESSIONS
stop_server

((HELLO_ERRORS + POOL_ERRORS + REDIS_ERRORS + FRESH_ERRORS == 0)) ||
    die "errors during the measurements (hello $HELLO_ERRORS, pooled $POOL_ERRORS, redis $REDIS_ERRORS, fresh $FRESH_ERRORS)"

report() {
    echo "# Outbound connections from a function: the host's pool against a connection per invocation"
    echo
    machine_section "$(wrk_version)" "$("$PG_BIN/postgres" --version)" "$(redis-server --version | cut -d' ' -f1-3)"
    echo "## Results"
    echo
    echo "Fresh instance per request; wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency; PostgreSQL,"
    echo "redis-server, Vireo and wrk share the machine's cores."
    echo
    echo "| function | req/s | p50 | p99 | Vireo CPU per request | PostgreSQL CPU per request | connections opened (warm-up and measurement) |"
    echo "|---|---|---|---|---|---|---|"
    echo "| hello | $HELLO_RPS | $HELLO_P50 | $HELLO_P99 | $HELLO_CPU us | | |"
    echo "| SELECT 1, pooled | $POOL_RPS | $POOL_P50 | $POOL_P99 | $POOL_CPU us | $POOL_PG_CPU us | $POOL_SESSIONS |"
    echo "| SELECT 1, a connection per invocation | $FRESH_RPS | $FRESH_P50 | $FRESH_P99 | $FRESH_CPU us | $FRESH_PG_CPU us | $FRESH_SESSIONS |"
    echo "| Redis GET, pooled | $REDIS_RPS | $REDIS_P50 | $REDIS_P99 | $REDIS_CPU us | | |"
    echo
    echo "- SELECT 1 through the pool: $(ratio "$POOL_RPS" "$FRESH_RPS") the throughput of a connection per invocation"
    echo "- SELECT 1 through the pool: $(ratio "$POOL_RPS" "$HELLO_RPS") of hello's throughput"
    echo "- Redis GET through the pool: $(ratio "$REDIS_RPS" "$HELLO_RPS") of hello's throughput"
    echo
    commands_section
}
report | write_result "$RESULTS"
report
