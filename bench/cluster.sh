#!/usr/bin/env bash
# Measures Vireo on PostgreSQL against Vireo on SQLite, on one machine: hello's cost per request
# on each store, async invocations accepted and completed per second with one and with two
# nodes, and how long a change (an alias move) takes to reach another node. Run
# `bench/cluster.sh --help` for usage.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
ASYNC_CONNECTIONS=${ASYNC_CONNECTIONS:-64}
MOVES=${MOVES:-100}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-600}
WARMUP=2
THREADS=1
RESULTS=bench/results/cluster.md
ECHO_WASM=target/guests/wasm32-wasip2/release/echo.wasm

usage() {
    cat <<EOF
Usage: bench/cluster.sh [--help]

Builds Vireo (release) and the example components, starts a PostgreSQL server of its own
(Debian's postgresql package, installed when missing; initdb into a temporary directory, a free
loopback port, default durability settings), then on 127.0.0.1:
  1. hello per store: ROUNDS rounds, each a fresh vireo serve on SQLite and one on a fresh
     PostgreSQL database (alternating which goes first), hello deployed, wrk -t$THREADS
     -cCONNECTIONS -dDURATION s --latency after a ${WARMUP}s warm-up: requests/s and the server's
     CPU time per request (user + system from /proc; PostgreSQL's own CPU is not in it);
  2. async on PostgreSQL, one node, then two nodes on one database: wrk with
     Prefer: respond-async (two wrk at once, half the connections each, with two nodes) for
     DURATION s; accepted/s is wrk's rate, completed/s the succeeded count's growth over the
     load; then the queue drains;
  3. propagation: two nodes; MOVES times, the alias prod is moved between hello (version 1)
     and echo (version 2) through node 1, and node 2 is asked for app@prod every millisecond
     until it answers with the new version: the time from the move's answer to then.
Prints the results as Markdown, also written with the machine details and the exact commands
to $RESULTS. This is one machine: read the numbers as cost per request and time to converge,
not as scale-out.

Options:
  -h, --help      show this help

Environment:
  DURATION           seconds per measurement (default 10)
  ROUNDS             rounds of the per-store comparison (default 3)
  CONNECTIONS        wrk connections for hello (default 32)
  ASYNC_CONNECTIONS  wrk connections for async (default 64)
  MOVES              alias moves timed (default 100)
  DRAIN_TIMEOUT      seconds to wait for the queue to empty after a load (default 600)
  VIREO_BIN          a vireo binary to run as it is (default: builds target/release/vireo)
  START_TIMEOUT      seconds to wait for a server to print its address (default 180)
EOF
}

PG_BIN=""
# start_node NAME DATA STORE [ARG...] : a vireo serve on STORE sharing the master key in WORK.
start_node() {
    local name=$1 data=$2 store=$3
    shift 3
    start_vireo "$name" "$data" --store "$store" --master-key-file "$WORK/master.key" "$@"
}

queue_url() { printf 'http://%s/v1/namespaces/default/functions/hello/queue' "$1"; }
succeeded() { admin_curl -fsS --max-time 10 "$(queue_url "$1")" | jq -r .succeeded; }
drained() { admin_curl -fsS --max-time 10 "$(queue_url "$1")" | jq -e '.queued + .running == 0' >/dev/null; }

median() { sort -g | awk '{ v[++n] = $1 } END { print (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }'; }

# hello_on STORE-KIND ROUND : one measured run of hello on a fresh store; appends to the tables.
hello_on() {
    local kind=$1 round=$2 store
    if [[ $kind == sqlite ]]; then
        start_vireo "hello-$kind-$round" "$WORK/sqlite-$round"
    else
        store=$(fresh_database)
        start_node "hello-$kind-$round" "$WORK/pg-node-$round" "$store"
    fi
    deploy_hello hello
    check_hello "hello-$kind-$round" "http://$SERVER_ADDR/fn/default/hello/"
    # PostgreSQL's own CPU counts too: with SQLite that work is in the server's process.
    EXTRA_TICKS=postgres_ticks run_wrk "hello-$kind-$round" "http://$SERVER_ADDR/fn/default/hello/" "$DURATION"
    stop_server
    local total
    total=$(awk -v a="$CPU_US" -v b="$EXTRA_CPU_US" 'BEGIN { printf "%.1f", a + b }')
    echo "$RPS" >>"$WORK/$kind.rps"
    echo "$CPU_US" >>"$WORK/$kind.cpu"
    echo "$total" >>"$WORK/$kind.total"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$round" "$kind" "$(fmt "$RPS" 0)" "$P50" "$P99" \
        "$CPU_US" "$total" "$ERRORS" >>"$WORK/hello.rows"
}

# async_load NODES : accepted/s and completed/s with NODES nodes on one fresh database.
async_load() {
    local nodes=$1 store n addrs=() pids=()
    store=$(fresh_database)
    for ((n = 1; n <= nodes; n++)); do
        start_node "async-$nodes-$n" "$WORK/async-$nodes-$n" "$store" --config "$WORK/async.toml"
        addrs+=("$SERVER_ADDR")
        pids+=("$SERVER_PID")
    done
    SERVER_ADDR=${addrs[0]}
    deploy_hello hello
    for addr in "${addrs[@]}"; do check_hello "async-$nodes" "http://$addr/fn/default/hello/"; done
    local before after start seconds per_node=$((ASYNC_CONNECTIONS / nodes)) wrks=()
    before=$(succeeded "${addrs[0]}")
    start=$(now_us)
    for ((n = 0; n < nodes; n++)); do
        record "$(quote wrk -t"$THREADS" -c"$per_node" -d"${DURATION}s" -s async.lua "http://${addrs[n]}/fn/default/hello/") &"
        wrk -t"$THREADS" -c"$per_node" -d"${DURATION}s" -s "$WORK/async.lua" \
            "http://${addrs[n]}/fn/default/hello/" >"$WORK/async-$nodes-$n.wrk" &
        wrks+=($!)
    done
    wait "${wrks[@]}"
    seconds=$(seconds_since "$start")
    after=$(succeeded "${addrs[0]}")
    cat "$WORK"/async-"$nodes"-*.wrk >&2
    local accepted errors completed drain_start drain
    accepted=$(cat "$WORK"/async-"$nodes"-*.wrk | awk '$1 == "Requests/sec:" {s += $2} END {printf "%.0f", s}')
    errors=$(cat "$WORK"/async-"$nodes"-*.wrk | awk '
        /Non-2xx or 3xx responses:/ {n += $NF}
        /Socket errors:/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10}
        END {print n + 0}')
    completed=$(awk -v a="$before" -v b="$after" -v s="$seconds" 'BEGIN { printf "%.0f", (b - a) / s }')
    drain_start=$(now_us)
    wait_for "$DRAIN_TIMEOUT" 0.2 drained "${addrs[0]}" || die "the queue did not drain within ${DRAIN_TIMEOUT}s"
    drain=$(seconds_since "$drain_start")
    for pid in "${pids[@]}"; do SERVER_PID=$pid stop_server; done
    printf '| %s | %s | %s | %s | %s |\n' "$nodes" "$accepted" "$completed" "$errors" "$drain" >>"$WORK/async.rows"
}

# propagation : MOVES alias moves through one node, timed until another node routes them.
propagation() {
    local store first second
    store=$(fresh_database)
    start_node prop-1 "$WORK/prop-1" "$store"
    first=$SERVER_ADDR
    start_node prop-2 "$WORK/prop-2" "$store"
    second=$SERVER_ADDR
    SERVER_ADDR=$first
    deploy_hello app
    deploy_component app "$ECHO_WASM"
    record "python3 bench/cluster-propagation.py $first $second $MOVES  # prints one time in ms per move"
    VIREO_ADMIN_KEY=$VIREO_ADMIN_KEY python3 "$ROOT/bench/cluster-propagation.py" "$first" "$second" "$MOVES" \
        >"$WORK/propagation.ms"
    read -r PROP_COUNT PROP_P50 PROP_P99 PROP_MAX < <(stats "$WORK/propagation.ms")
}

main() {
    accept_options "" "" "$@"
    require_whole DURATION seconds
    require_whole ROUNDS rounds
    require_whole CONNECTIONS connections
    require_whole ASYNC_CONNECTIONS connections
    require_whole MOVES moves
    require_whole DRAIN_TIMEOUT seconds

    init_work vireo-cluster
    ensure_wrk
    ensure_tool jq
    ensure_tool python3
    ensure_wasip2_target
    build_vireo
    [[ -e $ECHO_WASM ]] || die "the build did not produce $ECHO_WASM"
    start_postgres
    # The first node creates the master key; every other node is given the same file.
    start_vireo keygen "$WORK/keygen" --master-key-file "$WORK/master.key"
    stop_server

    local round kind kinds
    for ((round = 1; round <= ROUNDS; round++)); do
        if ((round % 2)); then kinds=(sqlite postgres); else kinds=(postgres sqlite); fi
        for kind in "${kinds[@]}"; do hello_on "$kind" "$round"; done
    done

    printf '[async]\nconcurrency = 64\nmax_pending_per_namespace = 10000000\n' >"$WORK/async.toml"
    printf '%s\n' 'wrk.method = "POST"' "wrk.body = '{\"job\":1}'" \
        'wrk.headers["Prefer"] = "respond-async"' \
        'wrk.headers["Content-Type"] = "application/json"' >"$WORK/async.lua"
    record "# async.lua: $(tr '\n' ' ' <"$WORK/async.lua")"
    async_load 1
    async_load 2
    propagation

    local sqlite_cpu pg_cpu sqlite_rps pg_rps pg_total
    sqlite_cpu=$(median <"$WORK/sqlite.cpu")
    pg_cpu=$(median <"$WORK/postgres.cpu")
    sqlite_rps=$(median <"$WORK/sqlite.rps")
    pg_rps=$(median <"$WORK/postgres.rps")
    pg_total=$(median <"$WORK/postgres.total")
    {
        echo "# Vireo on PostgreSQL"
        echo
        echo "One machine runs PostgreSQL, every node and the load generator, so these are costs and"
        echo "convergence times, not scale-out."
        echo
        echo "## hello: SQLite against PostgreSQL"
        echo
        echo "Vireo's CPU per request, and with PostgreSQL's processes' CPU added (SQLite's work is"
        echo "inside Vireo's process)."
        echo
        echo "| round | store | requests/s | p50 | p99 | Vireo CPU µs/request | Vireo + PostgreSQL CPU µs/request | errors |"
        echo "|---:|---|---:|---:|---:|---:|---:|---:|"
        cat "$WORK/hello.rows"
        echo
        echo "Medians: SQLite $(fmt "$sqlite_rps" 0) requests/s at $(fmt "$sqlite_cpu" 1) µs Vireo CPU/request; PostgreSQL $(fmt "$pg_rps" 0) requests/s at $(fmt "$pg_cpu" 1) µs Vireo CPU/request ($(fmt "$pg_total" 1) µs with PostgreSQL's own). On PostgreSQL, Vireo's server CPU per request is $(ratio "$pg_cpu" "$sqlite_cpu") SQLite's, and Vireo plus PostgreSQL $(ratio "$pg_total" "$sqlite_cpu")."
        echo
        echo "## Async invocations on PostgreSQL (202 only once committed; default durability)"
        echo
        echo "| nodes | accepted/s | completed/s during the load | errors | drain after the load (s) |"
        echo "|---:|---:|---:|---:|---:|"
        cat "$WORK/async.rows"
        echo
        echo "## An alias moved on node 1, routed by node 2"
        echo
        echo "| moves | p50 (ms) | p99 (ms) | max (ms) |"
        echo "|---:|---:|---:|---:|"
        echo "| $PROP_COUNT | $(fmt "$PROP_P50" 1) | $(fmt "$PROP_P99" 1) | $(fmt "$PROP_MAX" 1) |"
        echo
        machine_section "$(wrk_version)" "PostgreSQL: $("$PG_BIN/postgres" --version)"
        commands_section
    } | write_result "$RESULTS"
    cat "$RESULTS"
}

main "$@"
