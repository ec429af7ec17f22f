#!/usr/bin/env bash
# JavaScript and Python hello components on Vireo, on fresh instances and with instance reuse,
# against `wasmtime serve` running the same component, in one run; and their cold starts after
# scale to zero. Run `bench/languages.sh --help`.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-2}
WARMUP=2
THREADS=2
CONNECTIONS=${CONNECTIONS:-16}
REUSE=${REUSE:-1000}
COLD=${COLD:-20}
IDLE_TTL_MS=50
COLD_TIMEOUT=10 # seconds to wait for a version to be scaled to zero
RESULTS=bench/results/languages.md
PYTHON_TOOLCHAIN=target/templates-python
JS_BODY='hello from js / '
PY_BODY=$'Hello, world!\n'

usage() {
    cat <<USAGE
Usage: bench/languages.sh [--install-wasmtime] [--help]

Builds two hello components that import WASI alone, so that both hosts run the very same file:
JavaScript (tests/js/hello-served.js, exported through the template's serve.js as the template
does, componentize-js, with the template's build.mjs --wasi-only) and
Python (bench/python-hello/app.py, componentize-py, world wasi:http/proxy@0.2.0), with the
toolchains scripts/test.sh installs. Starts vireo serve on 127.0.0.1 ([scaling] idle_ttl_ms =
$IDLE_TTL_MS) with each component deployed twice: fresh (instance_reuse 1) and reuse
(instance_reuse $REUSE). Then, ROUNDS times in turn: each Vireo way, and wasmtime serve
(wasmtime-cli $WASMTIME_VERSION, -S cli, its defaults: a fresh instance per request) with each
component, under wrk -t$THREADS -c$CONNECTIONS -d\${DURATION}s after ${WARMUP}s of warm-up; each
way's best round is kept. Then COLD cold starts of each fresh function: wait until it is scaled
to zero, time one request with curl and read the record's init_us.
The targets (issue "templates"): Vireo fresh >= 3x wasmtime serve on the same component, with
reuse >= 10x.

Options:
  --install-wasmtime  without a wasmtime binary, cargo install --locked wasmtime-cli@$WASMTIME_VERSION
  -h, --help          show this help

Environment:
  DURATION      seconds of each measurement (default 10)
  ROUNDS        measurements of each way (default 2)
  CONNECTIONS   wrk connections (default 16)
  REUSE         instance_reuse of the reuse deployments (default 1000)
  COLD          cold starts of each language (default 20)
  VIREO_BIN     a prebuilt vireo binary to measure (default: build target/release/vireo)
USAGE
}

# build_components : JS_WASM and PY_WASM, the two hello components.
build_components() {
    [[ -d tests/js/node_modules/@bytecodealliance/componentize-js ]] ||
        die "componentize-js is not in tests/js/node_modules: run scripts/test.sh first"
    [[ -x $PYTHON_TOOLCHAIN/bin/componentize-py ]] ||
        die "componentize-py is not in $PYTHON_TOOLCHAIN: run scripts/test.sh first"
    # hello-served.js imports the template's serve.js; componentize-js reads only the source's
    # directory, so both are copied into one.
    JS_WASM=$WORK/js-hello.wasm
    mkdir -p "$WORK/js"
    cp tests/js/hello-served.js templates/js/src/serve.js "$WORK/js/"
    record "cp tests/js/hello-served.js templates/js/src/serve.js JS/"
    record "(cd tests/js && node --preserve-symlinks-main build.mjs JS/hello-served.js JS.wasm --wasi-only)"
    (cd tests/js && node --preserve-symlinks-main build.mjs "$WORK/js/hello-served.js" "$JS_WASM" \
        --wasi-only) >&2 || die "building the JavaScript hello failed"
    # The WASI packages componentize-py resolves the world from: those the Spin SDK ships.
    local wit
    wit=$(find "$PYTHON_TOOLCHAIN" -path '*/site-packages/spin_sdk/wit' -type d | head -n 1)
    [[ -n $wit ]] || die "no spin_sdk/wit under $PYTHON_TOOLCHAIN"
    PY_WASM=$WORK/py-hello.wasm
    record "(cd bench/python-hello && componentize-py -d $wit -w wasi:http/proxy@0.2.0 componentize app -o PY.wasm)"
    (cd bench/python-hello &&
        "$ROOT/$PYTHON_TOOLCHAIN/bin/componentize-py" -d "$ROOT/$wit" -w wasi:http/proxy@0.2.0 \
            componentize app -o "$PY_WASM") >&2 || die "building the Python hello failed"
}

# on_vireo : the Vireo server is the one measured (its CPU, its address).
on_vireo() { SERVER_PID=$VIREO_PID SERVER_ADDR=$VIREO_ADDR; }

# on_wasmtime LANGUAGE WASM BODY : one round of wasmtime serve with WASM.
on_wasmtime() {
    start_server "wasmtime-$1" "$WASMTIME" serve -S cli --addr 127.0.0.1:0 "$2"
    check_answer "wasmtime-$1" "http://$SERVER_ADDR/" "$3"
    measure_best "wasmtime-$1" "http://$SERVER_ADDR/"
    stop_server
    on_vireo
}

# cold_starts FUNCTION BODY : COLD timed first requests after FUNCTION was scaled to zero.
cold_starts() {
    local i
    : >"$WORK/$1.total"
    : >"$WORK/$1.init"
    ANOMALIES[$1]=0
    log "$1: $COLD cold starts"
    for ((i = 1; i <= COLD; i++)); do
        wait_for "$COLD_TIMEOUT" 0.01 scaled_to_zero "$1" ||
            die "$1 was not scaled to zero within ${COLD_TIMEOUT}s"
        timed_cold_request "$1" "$1" "$2"
    done
}

report() {
    echo "# JavaScript and Python hello: Vireo against wasmtime serve"
    echo
    machine_section "$(wrk_version)" "wasmtime: $("$WASMTIME" --version)" \
        "components: js $(stat -c %s "$JS_WASM") bytes, python $(stat -c %s "$PY_WASM") bytes"
    echo "## Throughput"
    echo
    echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds in turn, best round of each way; server CPU from /proc."
    echo
    echo "| way | req/s | p50 | p99 | server CPU per request |"
    echo "|---|---:|---:|---:|---:|"
    local way
    for way in js-fresh js-reuse wasmtime-js py-fresh py-reuse wasmtime-py; do
        echo "| $way | ${BEST_RPS[$way]} | ${BEST_P50[$way]} | ${BEST_P99[$way]} | ${BEST_CPU[$way]} µs |"
    done
    echo
    local language
    for language in js py; do
        echo "- $language: Vireo fresh $(ratio "${BEST_RPS[$language-fresh]}" "${BEST_RPS[wasmtime-$language]}") of wasmtime serve (target 3×), with reuse $(ratio "${BEST_RPS[$language-reuse]}" "${BEST_RPS[wasmtime-$language]}") (target 10×)"
    done
    echo "- versions of js-reuse that fell back to fresh instances (after the last round's Vireo ways): $FALLBACKS"
    echo
    echo "## Cold starts after scale to zero"
    echo
    echo "| function | samples | not cold | client p50 (ms) | client p99 (ms) | client max (ms) | init p50 (ms) | init p99 (ms) | init max (ms) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    cold_row "js (fresh)" js-fresh
    cold_row "python (fresh)" py-fresh
    echo
    commands_section
}

main() {
    INSTALL_WASMTIME=0
    accept_options --install-wasmtime INSTALL_WASMTIME "$@"
    require_whole DURATION seconds
    require_whole ROUNDS rounds
    require_whole CONNECTIONS connections
    require_whole REUSE requests
    require_whole COLD "cold starts"
    init_work vireo-languages
    ensure_wrk
    ensure_tool curl
    ensure_tool jq
    find_wasmtime
    [[ -n $WASMTIME ]] ||
        die "no wasmtime binary: cargo install --locked wasmtime-cli@$WASMTIME_VERSION, or pass --install-wasmtime"
    ensure_wasip2_target
    build_vireo
    build_components

    local config=$WORK/vireo-server.toml
    printf '[scaling]\nidle_ttl_ms = %s\n' "$IDLE_TTL_MS" >"$config"
    start_vireo vireo "$WORK/data" --config "$config"
    VIREO_PID=$SERVER_PID VIREO_ADDR=$SERVER_ADDR
    local base=http://$VIREO_ADDR/fn/default
    deploy_component js-fresh "$JS_WASM" '{"instance_reuse":1}'
    deploy_component js-reuse "$JS_WASM" "{\"instance_reuse\":$REUSE}"
    deploy_component py-fresh "$PY_WASM" '{"instance_reuse":1}'
    deploy_component py-reuse "$PY_WASM" "{\"instance_reuse\":$REUSE}"
    check_answer js-fresh "$base/js-fresh/" "$JS_BODY"
    check_answer py-fresh "$base/py-fresh/" "$PY_BODY"

    local round way
    for ((round = 1; round <= ROUNDS; round++)); do
        log "round $round of $ROUNDS"
        for way in js-fresh js-reuse py-fresh py-reuse; do
            measure_best "$way" "$base/$way/"
        done
        # Read while loaded: an idle version is unloaded after idle_ttl_ms, and its state with it.
        FALLBACKS=$(admin_curl -fsS "$(function_api js-reuse)" | jq -c '.reuse_fallback_versions')
        on_wasmtime js "$JS_WASM" "$JS_BODY"
        on_wasmtime py "$PY_WASM" "$PY_BODY"
    done

    declare -gA ANOMALIES=()
    cold_starts js-fresh "$JS_BODY"
    cold_starts py-fresh "$PY_BODY"
    stop_server

    report | write_result "$RESULTS"
    cat "$RESULTS"
}

main "$@"
