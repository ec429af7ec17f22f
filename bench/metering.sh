#!/usr/bin/env bash
# Measures what metering costs: hello throughput of the current checkout against a baseline
# commit without it, in alternating runs. Run `bench/metering.sh --help` for usage.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BASELINE=${BASELINE:-17cd4b3}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=2
THREADS=1
CONNECTIONS=32
RESULTS=bench/results/metering.md

usage() {
    cat <<EOF
Usage: bench/metering.sh [--help]

Builds vireo (release) twice — at BASELINE (default 17cd4b3, the last commit before
invocations were metered: billed time, memory, request and response bytes counted as they
stream, usage columns and index) and at the current checkout — then runs ROUNDS rounds, each
measuring both, alternating which goes first: vireo serve on 127.0.0.1 with hello deployed,
wrk -t$THREADS -c$CONNECTIONS -dDURATION s --latency after a ${WARMUP}s warm-up. Reports every run and the
medians, and the change of the median throughput, as Markdown, also written with the machine
details and the exact commands to $RESULTS.

Options:
  -h, --help      show this help

Environment:
  BASELINE        the commit to compare against (default 17cd4b3)
  ROUNDS          rounds of both (default 3)
  DURATION        seconds per measurement (default 10)
  START_TIMEOUT   seconds to wait for a server to print its address (default 180)
EOF
}

# measure NAME BINARY : one server, one wrk run; appends "RPS P50 P99" to $WORK/NAME.runs.
measure() {
    local name=$1 binary=$2
    start_server "$name" "$binary" serve --listen 127.0.0.1:0 --data "$WORK/$name-data" \
        --deploy "hello=$HELLO_WASM"
    check_hello "$name" "http://$SERVER_ADDR/fn/default/hello/"
    run_wrk "$name" "http://$SERVER_ADDR/fn/default/hello/" "$DURATION"
    stop_server
    rm -rf "$WORK/$name-data"
    printf '%s %s %s\n' "$RPS" "$P50" "$P99" >>"$WORK/$name.runs"
}

median_rps() { awk '{print $1}' "$WORK/$1.runs" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

main() {
    accept_options "" "" "$@"
    require_whole ROUNDS rounds
    require_whole DURATION seconds
    require_whole START_TIMEOUT seconds

    [[ -z $VIREO_PREBUILT ]] || die "metering.sh builds both of its binaries; unset VIREO_BIN"
    init_work vireo-metering
    ensure_wrk
    ensure_wasip2_target
    git rev-parse --verify --quiet "$BASELINE^{commit}" >/dev/null || die "no commit $BASELINE in this checkout"

    run git worktree add --detach "$WORK/baseline" "$BASELINE"
    # The shared target directory keeps the dependencies built once.
    (cd "$WORK/baseline" && run cargo build --release -p vireo-cli --target-dir "$ROOT/target")
    cp "$VIREO_BIN" "$WORK/vireo-baseline"
    build_vireo
    cp "$VIREO_BIN" "$WORK/vireo-metered"
    git worktree remove --force "$WORK/baseline"

    local round
    for ((round = 1; round <= ROUNDS; round++)); do
        if ((round % 2)); then
            measure baseline "$WORK/vireo-baseline"
            measure metered "$WORK/vireo-metered"
        else
            measure metered "$WORK/vireo-metered"
            measure baseline "$WORK/vireo-baseline"
        fi
    done

    local base metered
    base=$(median_rps baseline)
    metered=$(median_rps metered)
    {
        echo "# What metering costs"
        echo
        echo "hello, fresh instance per request, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s after a ${WARMUP}s warm-up; $ROUNDS rounds alternating which build goes first."
        echo
        echo "| build | runs (req/s, p50, p99) | median req/s |"
        echo "|---|---|---:|"
        echo "| baseline ($BASELINE) | $(paste -sd';' "$WORK/baseline.runs" | sed 's/;/; /g') | $(fmt "$base" 0) |"
        echo "| metered ($(git rev-parse --short=12 HEAD)) | $(paste -sd';' "$WORK/metered.runs" | sed 's/;/; /g') | $(fmt "$metered" 0) |"
        echo
        echo "Change of the median: $(awk -v a="$base" -v b="$metered" 'BEGIN { printf "%+.1f %%", (b - a) / a * 100 }')"
        echo
        echo "## Machine"
        echo
        machine_lines
        echo "- $(wrk --version 2>&1 | head -n 1)"
        echo
        commands_section
    } | write_result "$RESULTS"
    cat "$RESULTS"
}

main "$@"
