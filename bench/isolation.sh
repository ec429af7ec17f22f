#!/usr/bin/env bash
# Measures how CPU-bound guests affect everything else: hello's latency and the control plane's
# answer times while N invocations spin for their whole timeout. Run `bench/isolation.sh --help`.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SPINNERS=${SPINNERS:-"1 2 4 8"}
SPIN_TIMEOUT_MS=${SPIN_TIMEOUT_MS:-10000}
DURATION=${DURATION:-6}
PROBES=${PROBES:-20}
WARMUP=1
THREADS=1
CONNECTIONS=4
SPIN_WASM=target/guests/wasm32-wasip2/release/spin_loop.wasm
RESULTS=bench/results/isolation.md

usage() {
    cat <<EOF
Usage: bench/isolation.sh [--help]

Builds Vireo (release), the example components and the spin-loop test fixture (a guest that
computes until it is interrupted), starts vireo serve on 127.0.0.1 and deploys hello and
spin-loop (timeout_ms = SPIN_TIMEOUT_MS, max_concurrency = 100). Then, first with nothing else
running and then for each N in SPINNERS:
  1. starts N concurrent GETs of spin-loop, each running until its timeout (504);
  2. once they run, measures hello with wrk -t$THREADS -c$CONNECTIONS -d\${DURATION}s --latency
     (p50, p99, max, req/s);
  3. times PROBES requests each to the admin API (GET /v1/namespaces/default/functions),
     GET /metrics and GET /healthz with curl (p50 and max of curl's time_total);
  4. waits for the spinners to end and checks they were interrupted (504), and reads the CPU
     time their records show.
Prints the results as Markdown, also written with the machine details and the exact commands
to $RESULTS. DURATION plus the probes must fit in SPIN_TIMEOUT_MS, so the spinners run
throughout every measurement. Installs wrk and curl (apt-get) and the wasm32-wasip2 target
(rustup) when missing.

The target (issue "Hardening"): with 4 spinners, hello's p99 ≤ 50 ms and the control plane
answers within 50 ms. The fresh-instance hello throughput before and after the change is
measured by bench/compare.sh (BASELINE=<commit before> bench/compare.sh).

Options:
  -h, --help        show this help

Environment:
  SPINNERS          the numbers of concurrent CPU-bound invocations (default "1 2 4 8")
  SPIN_TIMEOUT_MS   spin-loop's timeout, ms (default 10000)
  DURATION          seconds of each hello measurement (default 6)
  PROBES            requests per control-plane endpoint per step (default 20)
  VIREO_BIN         a prebuilt vireo binary to measure (default: build target/release/vireo)
EOF
}

accept_options "" "" "$@"
require_whole SPIN_TIMEOUT_MS milliseconds
require_whole DURATION seconds
require_whole PROBES requests
init_work vireo-isolation
ensure_wrk
ensure_tool curl
ensure_wasip2_target
build_vireo
run cargo build --manifest-path tests/fixtures/Cargo.toml --target wasm32-wasip2 --release \
    --target-dir target/guests -p spin-loop
[[ -e $SPIN_WASM ]] || die "the build did not produce $SPIN_WASM"

start_vireo vireo "$WORK/data"
BASE=http://$SERVER_ADDR
deploy_hello hello
deploy_component spin "$SPIN_WASM" "{\"timeout_ms\":$SPIN_TIMEOUT_MS,\"max_concurrency\":100}"
check_hello vireo "$BASE/fn/default/hello/"

# probe NAME URL [CURL-ARG...] : PROBES sequential requests; prints "P50_MS MAX_MS".
probe() {
    local name=$1 url=$2 i times=$WORK/$1.times
    shift 2
    : >"$times"
    record "$(quote curl -sS -o /dev/null -w '%{time_total}' "$@" "$url")  # $PROBES times"
    for ((i = 0; i < PROBES; i++)); do
        curl -sS -o /dev/null -w '%{time_total}\n' --max-time 60 "$@" "$url" |
            awk '{printf "%.3f\n", $1 * 1000}' >>"$times"
    done
    stats "$times" | awk '{print $2, $4}'
}

# spinning N : starts N spinners in the background and waits until the server counts them in
# flight; their statuses go to $WORK/spin.N.*.
SPIN_PIDS=()
spinning() {
    local n=$1 i
    SPIN_PIDS=()
    record "# $n × in the background:"
    record "$(quote curl -s -o /dev/null -w '%{http_code}' "$BASE/fn/default/spin/")"
    for ((i = 0; i < n; i++)); do
        curl -s -o /dev/null -w '%{http_code}\n' --max-time 120 "$BASE/fn/default/spin/" \
            >"$WORK/spin.$n.$i" &
        SPIN_PIDS+=($!)
    done
    wait_for 30 0.05 in_flight_at_least "$n" || die "the $n spinners never ran"
}

in_flight_at_least() {
    local count
    count=$(admin_curl -fsS "$BASE/metrics" | awk '$1 == "vireo_invocations_in_flight" {print int($2)}')
    ((${count:-0} >= $1))
}

# spinner_cpu_ms N : the mean CPU time, ms, of the last N spin invocation records.
spinner_cpu_ms() {
    admin_curl -fsS "$BASE/v1/namespaces/default/functions/spin/invocations?limit=$1" |
        jq -r '[.invocations[].cpu_us] | add / length / 1000 | floor'
}

ROWS=()
measure() {
    local n=$1 label=$2 started admin metrics health status cpu=n/a
    started=$(now_us)
    ((n == 0)) || spinning "$n"
    run_wrk "hello-$n" "$BASE/fn/default/hello/" "$DURATION"
    admin=$(probe "admin-$n" "$BASE/v1/namespaces/default/functions" \
        -H "Authorization: Bearer $VIREO_ADMIN_KEY")
    metrics=$(probe "metrics-$n" "$BASE/metrics" -H "Authorization: Bearer $VIREO_ADMIN_KEY")
    health=$(probe "health-$n" "$BASE/healthz")
    if ((n > 0)); then
        (($(now_us) - started < SPIN_TIMEOUT_MS * 1000)) ||
            log "warning: the measurements outlasted the spinners; lower DURATION or PROBES"
        wait "${SPIN_PIDS[@]}"
        for status in "$WORK"/spin."$n".*; do
            [[ $(cat "$status") == 504 ]] || die "a spinner answered $(cat "$status"), not 504"
        done
        wait_for 10 0.1 spinners_recorded "$n" || die "the spinners' records never appeared"
        cpu=$(spinner_cpu_ms "$n")
    fi
    local max
    max=$(awk '$1 == "Latency" {print $4; exit}' "$WORK/hello-$n.wrk")
    ROWS+=("| $label | $RPS | $P50 | $P99 | $max | ${admin% *} / ${admin#* } | ${metrics% *} / ${metrics#* } | ${health% *} / ${health#* } | $cpu |")
}

spinners_recorded() {
    local count
    count=$(admin_curl -fsS "$BASE/v1/namespaces/default/functions/spin/invocations?limit=1000" |
        jq '[.invocations[] | select(.status == "timeout")] | length')
    ((count >= SPIN_TOTAL + $1))
}

ensure_tool jq
SPIN_TOTAL=0
measure 0 "alone"
for n in $SPINNERS; do
    measure "$n" "$n spinning"
    SPIN_TOTAL=$((SPIN_TOTAL + n))
done

report() {
    echo "# Isolation: hello and the control plane while CPU-bound guests run"
    echo
    machine_section "$(wrk_version)" "spin-loop timeout: ${SPIN_TIMEOUT_MS} ms"
    echo "## Results"
    echo
    echo "hello: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s. Control plane: $PROBES sequential curl requests"
    echo "each, p50 / max in ms. Spinner CPU: mean CPU time per spinner from its invocation record."
    echo
    echo "| load | hello req/s | hello p50 | hello p99 | hello max | admin API | /metrics | /healthz | spinner CPU ms |"
    echo "|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    commands_section
}
report | write_result "$RESULTS"
report
