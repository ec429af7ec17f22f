#!/usr/bin/env bash
# Benchmarks the hello function: Vireo vs `wasmtime serve` vs a bare hyper server.
# Run `bench/run.sh --help` for usage.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-10}
WARMUP=2
THREADS=1
CONNECTIONS=32

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
  VIREO_BIN      a vireo binary to run as it is, e.g. another build to compare
                 (default: builds target/release/vireo)
  START_TIMEOUT  seconds to wait for a server to print its address (default 180)
EOF
}

# ---------------------------------------------------------------------------
# Setup

build() {
    build_vireo
    run cargo build --release --manifest-path bench/hyper-hello/Cargo.toml --target-dir target/bench
    [[ -e $HYPER_BIN ]] || die "the build did not produce $HYPER_BIN"
}

# ---------------------------------------------------------------------------
# Servers and load

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
    start_vireo "$name" "$WORK/vireo-reuse-data"
    deploy_hello reuse '{"instance_reuse":100000}'
    measure "$name" /fn/default/reuse/
}

# measure NAME PATH : check the running server, measure, stop it; appends a row to RESULT_*.
measure() {
    local name=$1 path=$2
    local url="http://$SERVER_ADDR$path"
    check_hello "$name" "$url"
    run_wrk "$name" "$url" "$DURATION"
    stop_server
    RESULT_NAMES+=("$name")
    RESULT_RPS+=("$RPS")
    RESULT_P50+=("$P50")
    RESULT_P99+=("$P99")
    RESULT_ERRORS+=("$ERRORS")
}

# ---------------------------------------------------------------------------
# Report

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
    local wasmtime_version
    wasmtime_version="none"
    if [[ -n $WASMTIME ]]; then wasmtime_version=$("$WASMTIME" --version); fi

    table
    {
        echo "# Hello-function benchmark"
        echo
        echo "wrk -t$THREADS -c$CONNECTIONS, ${WARMUP}s warm-up then ${DURATION}s measured, one server at a time, all on 127.0.0.1."
        echo "Ratios are req/s divided by the other target's req/s; errors are non-2xx responses plus socket errors."
        echo
        table
        echo
        machine_section "$(wrk_version)" "wasmtime: $wasmtime_version" "$(rustc --version)"
        commands_section
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
    } | write_result "$RESULTS"
}

# ---------------------------------------------------------------------------

main() {
    INSTALL_WASMTIME=0
    WASMTIME_SKIPPED=""
    accept_options --install-wasmtime INSTALL_WASMTIME "$@"
    require_whole DURATION seconds
    require_whole START_TIMEOUT seconds

    init_work vireo-bench

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
