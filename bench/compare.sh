#!/usr/bin/env bash
# Compares two builds of Vireo on hello in alternating runs: throughput, latency and the
# server's CPU time per request. Run `bench/compare.sh --help` for usage.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BASELINE=${BASELINE:-}
CANDIDATE=${CANDIDATE:-}
ROUNDS=${ROUNDS:-4}
REUSE=${REUSE:-}
DURATION=${DURATION:-10}
WARMUP=2
THREADS=1
CONNECTIONS=32
RESULTS=bench/results/compare.md

usage() {
    cat <<EOF
Usage: BASELINE=COMMIT [CANDIDATE=COMMIT] bench/compare.sh [--help]

Builds vireo (release) at BASELINE and at CANDIDATE (default: the checkout as it is), each
in a git worktree sharing target/, then runs ROUNDS rounds, each measuring both builds and
alternating which goes first: vireo serve on 127.0.0.1 with hello deployed (a fresh instance
per request, or instance_reuse=REUSE when REUSE is set), wrk -t$THREADS -c$CONNECTIONS -dDURATION s
--latency after a ${WARMUP}s warm-up, and the server's CPU time (user + system, from /proc)
over the measured run. Reports every run and the medians as Markdown, also written with the
machine details and the exact commands to $RESULTS.

Examples:
  BASELINE=17cd4b3 ROUNDS=3 bench/compare.sh        what metering costs (17cd4b3 is the
                                                    last commit before it)
  BASELINE=0821a2a CANDIDATE=05593d5 bench/compare.sh   mimalloc against glibc's malloc
  git apply bench/experiments/skip-record-writes.patch &&
    BASELINE=HEAD REUSE=100000 bench/compare.sh;
    git apply -R bench/experiments/skip-record-writes.patch
                                                    what storing records and log lines
                                                    costs requests to a reused instance

Options:
  -h, --help      show this help

Environment:
  BASELINE        the commit to compare against (required)
  CANDIDATE       the commit to compare (default: the checkout, uncommitted changes included)
  ROUNDS          rounds of both (default 4)
  DURATION        seconds per measurement (default 10)
  REUSE           deploy hello with instance_reuse=REUSE (default: unset, a fresh instance
                  per request)
  START_TIMEOUT   seconds to wait for a server to print its address (default 180)
EOF
}

# forget_workspace_builds : the worktrees and the checkout share target/ (so dependencies are
# built once), and their own crates have the same names there: without this, cargo may take
# one tree's build of a crate for another's.
forget_workspace_builds() {
    local packages=() dir
    for dir in "$ROOT"/crates/*/; do packages+=(-p "$(basename "$dir")"); done
    run cargo clean --release --quiet "${packages[@]}"
}

# build_at COMMIT DEST : the release vireo of COMMIT, copied to DEST; the checkout's own builds
# of the workspace crates are forgotten before and after.
build_at() {
    local commit=$1 dest=$2 tree=$WORK/tree-$1
    git rev-parse --verify --quiet "$commit^{commit}" >/dev/null || die "no commit $commit in this checkout"
    forget_workspace_builds
    run git worktree add --detach "$tree" "$commit"
    # The shared target directory keeps the dependencies built once.
    (cd "$tree" && run cargo build --release -p vireo-cli --target-dir "$ROOT/target")
    cp "$ROOT/target/release/vireo" "$dest"
    git worktree remove --force "$tree"
    # The checkout's next build must not take this commit's crates for its own.
    forget_workspace_builds
}

# measure NAME BINARY : one server, one wrk run; appends "RPS P50 P99 CPU_US" to
# $WORK/NAME.runs.
measure() {
    local name=$1 binary=$2
    if [[ -n $REUSE ]]; then
        start_server "$name" "$binary" serve --listen 127.0.0.1:0 --data "$WORK/$name-data"
        deploy_hello hello "{\"instance_reuse\":$REUSE}"
    else
        start_server "$name" "$binary" serve --listen 127.0.0.1:0 --data "$WORK/$name-data" \
            --deploy "hello=$HELLO_WASM"
    fi
    check_hello "$name" "http://$SERVER_ADDR/fn/default/hello/"
    run_wrk "$name" "http://$SERVER_ADDR/fn/default/hello/" "$DURATION"
    stop_server
    rm -rf "$WORK/$name-data"
    printf '%s %s %s %s\n' "$RPS" "$P50" "$P99" "$CPU_US" >>"$WORK/$name.runs"
}

# median FILE COLUMN : the median of a column of numbers.
median() { awk -v c="$2" '{print $c}' "$1" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

# row NAME LABEL : the report's line for one build.
row() {
    local runs=$WORK/$1.runs
    printf '| %s | %s | %s | %s |\n' "$2" \
        "$(awk '{printf "%s%.0f, %s, %s, %s µs", (NR > 1 ? "; " : ""), $1, $2, $3, $4}' "$runs")" \
        "$(fmt "$(median "$runs" 1)" 0)" "$(median "$runs" 4)"
}

main() {
    accept_options "" "" "$@"
    [[ -n $BASELINE ]] || {
        usage >&2
        die "set BASELINE to the commit to compare against"
    }
    [[ -z $VIREO_PREBUILT ]] || die "compare.sh builds both of its binaries; unset VIREO_BIN"
    require_whole ROUNDS rounds
    require_whole DURATION seconds
    require_whole START_TIMEOUT seconds
    [[ -z $REUSE ]] || require_whole REUSE requests

    init_work vireo-compare
    ensure_wrk
    ensure_wasip2_target

    build_at "$BASELINE" "$WORK/vireo-baseline"
    local candidate_label
    if [[ -n $CANDIDATE ]]; then
        build_at "$CANDIDATE" "$WORK/vireo-candidate"
        build_vireo_guests
        candidate_label=$CANDIDATE
    else
        forget_workspace_builds
        build_vireo
        cp "$VIREO_BIN" "$WORK/vireo-candidate"
        candidate_label="checkout $(git rev-parse --short=12 HEAD)"
        if [[ -n $(git status --porcelain) ]]; then candidate_label+=" (plus uncommitted changes)"; fi
    fi

    local round
    for ((round = 1; round <= ROUNDS; round++)); do
        if ((round % 2)); then
            measure baseline "$WORK/vireo-baseline"
            measure candidate "$WORK/vireo-candidate"
        else
            measure candidate "$WORK/vireo-candidate"
            measure baseline "$WORK/vireo-baseline"
        fi
    done

    local base candidate mode="fresh instance per request"
    [[ -z $REUSE ]] || mode="instance_reuse = $REUSE"
    base=$(median "$WORK/baseline.runs" 1)
    candidate=$(median "$WORK/candidate.runs" 1)
    {
        echo "# Two builds compared"
        echo
        echo "hello, $mode, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s after a ${WARMUP}s warm-up; $ROUNDS rounds alternating which build goes first. CPU is the server's user + system time per request over the measured run."
        echo
        echo "| build | runs (req/s, p50, p99, CPU per request) | median req/s | median CPU per request (µs) |"
        echo "|---|---|---:|---:|"
        row baseline "baseline ($BASELINE)"
        row candidate "candidate ($candidate_label)"
        echo
        echo "Change of the median throughput: $(awk -v a="$base" -v b="$candidate" 'BEGIN { printf "%+.1f %%", (b - a) / a * 100 }')"
        echo
        machine_section "$(wrk_version)"
        commands_section
    } | write_result "$RESULTS"
    cat "$RESULTS"
}

main "$@"
