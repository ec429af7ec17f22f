#!/usr/bin/env bash
# Benchmarks the hello function: Vireo vs `wasmtime serve` vs a bare hyper server.
# Run `bench/run.sh --help` for usage.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10}
START_TIMEOUT=${START_TIMEOUT:-180}
WARMUP=2
THREADS=1
CONNECTIONS=32
WASMTIME_VERSION=48.0.8
HELLO_BODY=$'Hello, Vireo!\n'

VIREO_BIN=target/release/vireo
HELLO_WASM=target/guests/wasm32-wasip2/release/hello.wasm
HYPER_BIN=target/bench/release/hyper-hello
RESULTS=bench/results/latest.md

usage() {
    cat <<EOF
Usage: bench/run.sh [--install-wasmtime] [--help]

Builds Vireo (release), the example components and bench/hyper-hello, then runs
  wrk -t$THREADS -c$CONNECTIONS -d\${DURATION}s --latency
against each of these, one at a time, all on 127.0.0.1 with a ${WARMUP}s warm-up:
  vireo (fresh)   vireo serve --deploy hello=hello.wasm   GET /fn/default/hello/
  vireo (reuse)   the same with instance_reuse=100000     GET /fn/default/reuse/
  wasmtime serve  wasmtime serve -S cli hello.wasm        GET /   (skipped without a wasmtime binary)
  hyper           bench/hyper-hello                       GET /
and prints a Markdown table (req/s, p50, p99, ratios), also written with the
machine details and the exact commands to $RESULTS.

Installs wrk (apt-get) and the wasm32-wasip2 target (rustup) when missing.

Options:
  --install-wasmtime  if no wasmtime binary is found, run
                      cargo install --locked wasmtime-cli@$WASMTIME_VERSION
  -h, --help          show this help

Environment:
  DURATION       seconds per wrk run (default 10)
  START_TIMEOUT  seconds to wait for a server to print its address (default 180)
EOF
}

log() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------
# Bookkeeping: every command that matters is recorded for the report, and every
# server started is stopped on exit.

COMMANDS=()
PIDS=()
WORK=""

# quote CMD... : CMD as one shell-quoted line.
quote() {
    local line
    line=$(printf '%q ' "$@")
    printf '%s' "${line% }"
}

# run CMD... : records CMD for the report, then runs it.
run() {
    COMMANDS+=("$(quote "$@")")
    log "$*"
    "$@"
}

alive() {
    # A child that exited but is not reaped yet still answers `kill -0`.
    kill -0 "$1" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]
}

# stop_pid PID : SIGTERM, wait up to 10 s, then SIGKILL.
stop_pid() {
    local pid=$1 i
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            log "pid $pid ignored SIGTERM for 10 s: killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local status=$?
    local pid
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid"
    done
    PIDS=()
    if [[ -n $WORK ]]; then rm -rf "$WORK"; fi
    exit "$status"
}

# ---------------------------------------------------------------------------
# Setup

ensure_wrk() {
    command -v wrk >/dev/null && return
    command -v apt-get >/dev/null || die "wrk is missing and there is no apt-get: install wrk yourself"
    local sudo=()
    ((EUID == 0)) || sudo=(sudo)
    log "installing wrk"
    export DEBIAN_FRONTEND=noninteractive
    # apt-get's chatter goes to stderr: stdout is for the results table.
    "${sudo[@]}" apt-get install -y wrk >&2 ||
        { "${sudo[@]}" apt-get update >&2 && "${sudo[@]}" apt-get install -y wrk >&2; }
    command -v wrk >/dev/null || die "wrk is still missing after apt-get install"
}

ensure_wasip2_target() {
    local installed
    installed=$(rustup target list --installed)
    grep -qx wasm32-wasip2 <<<"$installed" || run rustup target add wasm32-wasip2
}

# Sets WASMTIME to a wasmtime binary, or to "" when there is none.
find_wasmtime() {
    WASMTIME=$(command -v wasmtime || true)
    if [[ -z $WASMTIME && -x $HOME/.cargo/bin/wasmtime ]]; then WASMTIME=$HOME/.cargo/bin/wasmtime; fi
    if [[ -z $WASMTIME && $INSTALL_WASMTIME == 1 ]]; then
        run cargo install --locked "wasmtime-cli@$WASMTIME_VERSION"
        WASMTIME=$HOME/.cargo/bin/wasmtime
    fi
    return 0
}

build() {
    run cargo build --release -p vireo-cli
    run cargo build --manifest-path examples/Cargo.toml --target wasm32-wasip2 --release --target-dir target/guests
    run cargo build --release --manifest-path bench/hyper-hello/Cargo.toml --target-dir target/bench
    local file
    for file in "$VIREO_BIN" "$HELLO_WASM" "$HYPER_BIN"; do
        [[ -e $file ]] || die "the build did not produce $file"
    done
}

# ---------------------------------------------------------------------------
# Servers and load

show_logs() {
    local name=$1 file
    for file in "$WORK/$name.stdout" "$WORK/$name.stderr"; do
        [[ -s $file ]] || continue
        printf -- '--- last lines of %s %s:\n' "$name" "${file##*.}" >&2
        tail -n 20 "$file" >&2
    done
}

# start_server NAME CMD... : starts CMD in the background and waits (at most
# START_TIMEOUT s) for it to print http://127.0.0.1:PORT on stdout or stderr.
# Sets SERVER_ADDR (127.0.0.1:PORT) and SERVER_PID.
start_server() {
    local name=$1
    shift
    local out=$WORK/$name.stdout err=$WORK/$name.stderr
    COMMANDS+=("$(quote "$@") &")
    log "starting $name: $*"
    "$@" >"$out" 2>"$err" </dev/null &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")

    local deadline=$((SECONDS + START_TIMEOUT)) url=""
    while ((SECONDS < deadline)); do
        url=$(grep -ohE 'http://127\.0\.0\.1:[0-9]+' "$out" "$err" 2>/dev/null | head -n 1 || true)
        [[ -n $url ]] && break
        if ! alive "$SERVER_PID"; then
            show_logs "$name"
            die "$name exited before printing its address"
        fi
        sleep 0.1
    done
    if [[ -z $url ]]; then
        show_logs "$name"
        die "$name did not print its address within ${START_TIMEOUT}s"
    fi
    SERVER_ADDR=${url#http://}
    log "$name is listening on $SERVER_ADDR"
}

stop_server() {
    stop_pid "$SERVER_PID"
    local pid kept=()
    for pid in "${PIDS[@]}"; do
        [[ $pid == "$SERVER_PID" ]] || kept+=("$pid")
    done
    PIDS=("${kept[@]}")
}

# check_hello NAME URL : one request must answer 200 with exactly the hello body.
check_hello() {
    local name=$1 url=$2 body=$WORK/$1.body
    COMMANDS+=("$(quote curl -fsS "$url")  # must print exactly: Hello, Vireo!")
    if ! curl -fsS --max-time 30 -o "$body" "$url"; then
        show_logs "$name"
        die "$name: GET $url failed"
    fi
    if ! printf '%s' "$HELLO_BODY" | cmp -s - "$body"; then
        die "$name: GET $url answered $(head -c 200 "$body" | od -c | head -n 3) instead of 'Hello, Vireo!\\n'"
    fi
}

# run_wrk NAME URL : warms up, then measures. Sets RPS, P50, P99, ERRORS and
# leaves wrk's output in $WORK/NAME.wrk.
run_wrk() {
    local name=$1 url=$2 out=$WORK/$1.wrk
    log "$name: warming up for ${WARMUP}s"
    run wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" "$url" >/dev/null
    run wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url" >"$out"
    cat "$out" >&2

    RPS=$(awk '$1 == "Requests/sec:" {print $2}' "$out")
    P50=$(awk '/Latency Distribution/ {d = 1} d && $1 == "50%" {print $2; exit}' "$out")
    P99=$(awk '/Latency Distribution/ {d = 1} d && $1 == "99%" {print $2; exit}' "$out")
    # "Non-2xx or 3xx responses: N" and "Socket errors: connect A, read B, write C, timeout D"
    ERRORS=$(awk '
        /Non-2xx or 3xx responses:/ {n += $NF}
        /Socket errors:/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10}
        END {print n + 0}' "$out")
    [[ -n $RPS && -n $P50 && -n $P99 ]] || die "$name: could not parse wrk's output (in $out)"
    return 0
}

# bench NAME PATH CMD... : start, check, measure, stop; appends a row to RESULT_*.
bench() {
    local name=$1 path=$2
    shift 2
    start_server "$name" "$@"
    measure "$name" "$path"
}

# bench_vireo_reuse : Vireo with hello deployed as `reuse` with instance_reuse, so one instance
# serves many sequential requests (Lambda-style warm environments).
bench_vireo_reuse() {
    local name="vireo (reuse)"
    start_server "$name" "$VIREO_BIN" serve --listen 127.0.0.1:0 --data "$WORK/vireo-reuse-data"
    run curl -fsS -o /dev/null -F 'settings={"instance_reuse":100000}' -F "component=@$HELLO_WASM" \
        "http://$SERVER_ADDR/v1/namespaces/default/functions/reuse/versions"
    measure "$name" /fn/default/reuse/
}

# measure NAME PATH : check the running server, measure, stop it; appends a row to RESULT_*.
measure() {
    local name=$1 path=$2
    local url="http://$SERVER_ADDR$path"
    check_hello "$name" "$url"
    run_wrk "$name" "$url"
    stop_server
    RESULT_NAMES+=("$name")
    RESULT_RPS+=("$RPS")
    RESULT_P50+=("$P50")
    RESULT_P99+=("$P99")
    RESULT_ERRORS+=("$ERRORS")
}

# ---------------------------------------------------------------------------
# Report

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", a / b }'; }

rps_of() {
    local i
    for i in "${!RESULT_NAMES[@]}"; do
        if [[ ${RESULT_NAMES[$i]} == "$1" ]]; then
            printf '%s' "${RESULT_RPS[$i]}"
            return
        fi
    done
}

table() {
    local wasmtime_rps hyper_rps i vs_wasmtime
    wasmtime_rps=$(rps_of "wasmtime serve")
    hyper_rps=$(rps_of hyper)
    echo "| target | req/s | p50 | p99 | vs wasmtime serve | vs hyper | errors |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for i in "${!RESULT_NAMES[@]}"; do
        vs_wasmtime="n/a"
        if [[ -n $wasmtime_rps ]]; then vs_wasmtime=$(ratio "${RESULT_RPS[$i]}" "$wasmtime_rps"); fi
        printf '| %s | %.0f | %s | %s | %s | %s | %s |\n' \
            "${RESULT_NAMES[$i]}" "${RESULT_RPS[$i]}" "${RESULT_P50[$i]}" "${RESULT_P99[$i]}" \
            "$vs_wasmtime" "$(ratio "${RESULT_RPS[$i]}" "$hyper_rps")" "${RESULT_ERRORS[$i]}"
    done
    if [[ -z $wasmtime_rps ]]; then
        echo
        echo "wasmtime serve: $WASMTIME_SKIPPED"
    fi
}

report() {
    local commit cpu wasmtime_version
    commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
    if [[ -n $(git status --porcelain 2>/dev/null) ]]; then commit+=" (plus uncommitted changes)"; fi
    cpu=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
    wasmtime_version="none"
    if [[ -n $WASMTIME ]]; then wasmtime_version=$("$WASMTIME" --version); fi

    table
    mkdir -p "$(dirname "$RESULTS")"
    {
        echo "# Hello-function benchmark"
        echo
        echo "wrk -t$THREADS -c$CONNECTIONS, ${WARMUP}s warm-up then ${DURATION}s measured, one server at a time, all on 127.0.0.1."
        echo "Ratios are req/s divided by the other target's req/s; errors are non-2xx responses plus socket errors."
        echo
        table
        echo
        echo "## Machine"
        echo
        echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
        echo "- nproc: $(nproc)"
        echo "- CPU: ${cpu:-unknown}"
        echo "- kernel: $(uname -r)"
        echo "- vireo commit: $commit"
        echo "- $(wrk -v 2>&1 | head -n 1 || true)"
        echo "- wasmtime: $wasmtime_version"
        echo "- $(rustc --version)"
        echo
        echo "## Commands"
        echo
        echo "Run from the repository root; \`&\` marks servers (port 0, address read from their output)."
        echo
        echo '```sh'
        printf '%s\n' "${COMMANDS[@]}"
        echo '```'
        echo
        echo "## wrk output"
        local name
        for name in "${RESULT_NAMES[@]}"; do
            echo
            echo "### $name"
            echo
            echo '```'
            cat "$WORK/$name.wrk"
            echo '```'
        done
    } >"$RESULTS"
    log "wrote $RESULTS"
}

# ---------------------------------------------------------------------------

main() {
    INSTALL_WASMTIME=0
    WASMTIME_SKIPPED=""
    while (($#)); do
        case $1 in
        --install-wasmtime) INSTALL_WASMTIME=1 ;;
        -h | --help)
            usage
            return 0
            ;;
        *)
            usage >&2
            die "unknown argument: $1"
            ;;
        esac
        shift
    done
    [[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a whole number of seconds, not '$DURATION'"
    [[ $START_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "START_TIMEOUT must be a whole number of seconds"

    cd "$ROOT"
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/vireo-bench.XXXXXX")

    ensure_wrk
    ensure_wasip2_target
    find_wasmtime
    build

    RESULT_NAMES=() RESULT_RPS=() RESULT_P50=() RESULT_P99=() RESULT_ERRORS=()
    bench "vireo (fresh)" /fn/default/hello/ \
        "$VIREO_BIN" serve --listen 127.0.0.1:0 --data "$WORK/vireo-data" --deploy "hello=$HELLO_WASM"
    bench_vireo_reuse
    if [[ -n $WASMTIME ]]; then
        bench "wasmtime serve" / "$WASMTIME" serve -S cli --addr 127.0.0.1:0 "$HELLO_WASM"
    else
        WASMTIME_SKIPPED="skipped: no wasmtime binary; install with cargo install --locked wasmtime-cli@$WASMTIME_VERSION (or pass --install-wasmtime)"
        log "wasmtime serve $WASMTIME_SKIPPED"
    fi
    bench hyper / "$HYPER_BIN" 127.0.0.1:0

    report
}

main "$@"
