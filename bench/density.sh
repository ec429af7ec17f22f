#!/usr/bin/env bash
# Measures how many functions one Vireo server holds: deploy rate, and memory per function
# idle (scaled to zero) and warm. Run `bench/density.sh --help` for usage.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COUNT=${COUNT:-10000}
WARM=${WARM:-1000}
PARALLEL=${PARALLEL:-2}
REQUEST_TIMEOUT=60 # seconds, per deploy or invocation
RESULTS=bench/results/density.md

usage() {
    cat <<EOF
Usage: bench/density.sh [--help]

Builds Vireo (release) and the example components, then, with vireo serve on 127.0.0.1
(default config) and a fresh data directory:
  1. measures the RSS (VmRSS of /proc/PID/status) of the empty server once it is ready;
  2. deploys hello.wasm as COUNT functions f0..f<COUNT-1> (POST .../functions/fI/versions,
     one curl with --parallel-max PARALLEL; the bytes are the same, so the compiled artifact
     is reused) and reports the total time and deploys/s;
  3. restarts the server on the same data directory, so nothing is loaded (all scaled to
     zero), and measures its RSS once ready: per-function idle cost =
     (RSS idle with COUNT functions - RSS empty) / COUNT;
  4. invokes f0..f<WARM-1> once each (GET /fn/default/fI/, --parallel-max PARALLEL), which
     makes them warm, and measures the RSS again.
Prints the results as Markdown, also written with the machine details and the exact
commands to $RESULTS.

Installs jq (apt-get) and the wasm32-wasip2 target (rustup) when missing.

Options:
  -h, --help     show this help

Environment:
  COUNT          functions deployed (default 10000)
  WARM           functions invoked after the restart (default 1000, at most COUNT)
  PARALLEL       requests in flight while deploying and invoking (default 2)
  VIREO_BIN      a vireo binary to run as it is, e.g. another build to compare
                 (default: builds target/release/vireo)
  START_TIMEOUT  seconds to wait for a server to print its address (default 180)
EOF
}

# ---------------------------------------------------------------------------
# Measuring

# memory LABEL : records the server's VmRSS, RssAnon, RssFile and Pss (KiB) under LABEL.
memory() {
    local field
    for field in VmRSS RssAnon RssFile; do
        MEMORY[$1.$field]=$(rss_kib "$SERVER_PID" "$field")
    done
    MEMORY[$1.Pss]=$(pss_kib "$SERVER_PID")
    log "$1: VmRSS ${MEMORY[$1.VmRSS]} KiB, Pss ${MEMORY[$1.Pss]} KiB"
    record "grep -E '^(VmRSS|RssAnon|RssFile):' /proc/\$SERVER_PID/status; grep '^Pss:' /proc/\$SERVER_PID/smaps_rollup  # $1"
}

# batch NAME FIRST LAST KIND : writes a curl config for functions fFIRST..fLAST to
# $WORK/NAME.curl: KIND deploy posts hello.wasm, KIND invoke gets /fn/default/fI/.
batch() {
    local name=$1 first=$2 last=$3 kind=$4 i base="http://$SERVER_ADDR"
    local component=$ROOT/$HELLO_WASM
    for ((i = first; i <= last; i++)); do
        if [[ $kind == deploy ]]; then
            printf 'url = "%s/v1/namespaces/default/functions/f%d/versions"\n' "$base" "$i"
            printf 'form = "settings={}"\nform = "component=@%s"\n' "$component"
            printf 'header = "Authorization: Bearer %s"\n' "$VIREO_ADMIN_KEY"
        else
            printf 'url = "%s/fn/default/f%d/"\n' "$base" "$i"
        fi
        printf 'output = "/dev/null"\nmax-time = %d\n' "$REQUEST_TIMEOUT"
        printf 'write-out = "%%{http_code} %%{size_download} %%{url_effective}\\n"\n'
        ((i == last)) || printf 'next\n'
    done >"$WORK/$name.curl"
}

# run_batch NAME EXPECTED-STATUS : runs $WORK/NAME.curl and checks every answer's status.
# Sets BATCH_SECONDS.
run_batch() {
    local name=$1 expected=$2 start lines bad
    start=$(now_us)
    run curl --no-progress-meter --parallel --parallel-max "$PARALLEL" -K "$WORK/$name.curl" >"$WORK/$name.out" ||
        log "$name: curl reported errors (checked below)"
    BATCH_SECONDS=$(seconds_since "$start")
    lines=$(wc -l <"$WORK/$name.out")
    bad=$(awk -v s="$expected" '$1 != s' "$WORK/$name.out" | wc -l)
    if ((bad > 0 || lines != $(grep -c '^url' "$WORK/$name.curl"))); then
        awk -v s="$expected" '$1 != s' "$WORK/$name.out" | head -n 5 >&2
        die "$name: $bad of $lines answers were not $expected"
    fi
}

# warm_versions FUNCTION : the function's warm_versions, as JSON.
warm_versions() {
    admin_curl -fsS --max-time 10 "http://$SERVER_ADDR/v1/namespaces/default/functions/$1" | jq -c .warm_versions
}

# expect_warm FUNCTION JSON : the function's warm_versions must be JSON.
expect_warm() {
    local got
    got=$(warm_versions "$1")
    [[ $got == "$2" ]] || die "$1: warm_versions is $got, expected $2"
}

deploy_all() {
    log "deploying $COUNT functions"
    batch deploy 0 $((COUNT - 1)) deploy
    record "# deploy.curl: for I in 0..$((COUNT - 1)):"
    record "#   url = \"http://$SERVER_ADDR/v1/namespaces/default/functions/fI/versions\""
    record "#   form = \"settings={}\"  form = \"component=@$ROOT/$HELLO_WASM\"  header = \"Authorization: Bearer \$VIREO_ADMIN_KEY\"  output = \"/dev/null\"  next"
    run_batch deploy 201
    DEPLOY_SECONDS=$BATCH_SECONDS
    log "deployed $COUNT functions in $DEPLOY_SECONDS s"
}

invoke_warm() {
    log "invoking $WARM functions once each"
    batch invoke 0 $((WARM - 1)) invoke
    record "# invoke.curl: for I in 0..$((WARM - 1)): url = \"http://$SERVER_ADDR/fn/default/fI/\"  output = \"/dev/null\"  next"
    run_batch invoke 200
    INVOKE_SECONDS=$BATCH_SECONDS
    local size
    size=$(awk '{print $2}' "$WORK/invoke.out" | sort -u)
    [[ $size == "${#HELLO_BODY}" ]] || die "invoke: answers of $size bytes, expected ${#HELLO_BODY} (Hello, Vireo!)"
}

# ---------------------------------------------------------------------------
# Report

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

memory_row() {
    printf '| %s | %s | %s | %s | %s |\n' "$1" "$(mib "${MEMORY[$2.VmRSS]}")" \
        "$(mib "${MEMORY[$2.RssAnon]}")" "$(mib "${MEMORY[$2.RssFile]}")" "$(mib "${MEMORY[$2.Pss]}")"
}

# per KIB-AFTER KIB-BEFORE N : (after - before) / N, in KiB.
per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.1f", (a - b) / n }'; }

summary() {
    echo "| measure | value |"
    echo "|---|---:|"
    echo "| deploy $COUNT functions | $DEPLOY_SECONDS s |"
    echo "| deploys/s | $(awk -v n="$COUNT" -v s="$DEPLOY_SECONDS" 'BEGIN { printf "%.0f", n / s }') |"
    echo "| idle cost per function: (RSS idle with $COUNT − RSS empty) / $COUNT | $(per "${MEMORY[idle.VmRSS]}" "${MEMORY[empty.VmRSS]}" "$COUNT") KiB |"
    echo "| the same with Pss instead of VmRSS | $(per "${MEMORY[idle.Pss]}" "${MEMORY[empty.Pss]}" "$COUNT") KiB |"
    echo "| warm cost per function: (RSS with $WARM warm − RSS idle) / $WARM | $(per "${MEMORY[warm.VmRSS]}" "${MEMORY[idle.VmRSS]}" "$WARM") KiB |"
    echo "| the same with Pss instead of VmRSS | $(per "${MEMORY[warm.Pss]}" "${MEMORY[idle.Pss]}" "$WARM") KiB |"
    echo "| first invocation of $WARM functions (cold) | $INVOKE_SECONDS s ($(awk -v n="$WARM" -v s="$INVOKE_SECONDS" 'BEGIN { printf "%.0f", n / s }')/s) |"
    echo "| data directory after the deploys | $DATA_SIZE |"
    echo
    echo "| server state | VmRSS (MiB) | RssAnon (MiB) | RssFile (MiB) | Pss (MiB) |"
    echo "|---|---:|---:|---:|---:|"
    memory_row "empty, just started" empty
    memory_row "after deploying $COUNT (same process)" deployed
    memory_row "$COUNT deployed, restarted: all scaled to zero" idle
    memory_row "then $WARM of them invoked once (warm)" warm
}

report() {
    {
        echo "# Function density"
        echo
        echo "One \`vireo serve\` on 127.0.0.1 (default config: idle_ttl 5 min), hello.wasm deployed as $COUNT functions,"
        echo "$PARALLEL requests in flight (one curl process, \`--parallel\`). RSS is VmRSS of /proc/PID/status,"
        echo "read once the server printed its address (and, for the last rows, right after the requests)."
        echo "VmRSS counts a file page once per mapping of it; Pss (/proc/PID/smaps_rollup) counts it once."
        echo
        summary
        echo
        machine_section "$(curl --version | head -n 1)" "$(rustc --version)"
        commands_section
    } | write_result "$RESULTS"
    cat "$RESULTS"
}

# ---------------------------------------------------------------------------

main() {
    accept_options "" "" "$@"
    require_whole COUNT functions
    require_whole WARM functions
    require_whole PARALLEL requests
    require_whole START_TIMEOUT seconds
    if ((WARM > COUNT)); then WARM=$COUNT; fi

    init_work vireo-density
    ensure_tool jq
    ensure_wasip2_target
    build_vireo
    declare -gA MEMORY=()
    local data=$WORK/data last=f$((COUNT - 1))

    start_vireo vireo "$data"
    memory empty
    deploy_all
    memory deployed
    stop_server
    DATA_SIZE=$(du -sh "$data" | awk '{print $1}')
    record "du -sh DATA  # $DATA_SIZE"

    record "# stop it (SIGTERM, wait) and start it again: the same vireo serve command"
    start_vireo vireo "$data"
    memory idle
    expect_warm f0 '[]'
    expect_warm "$last" '[]'
    invoke_warm
    memory warm
    expect_warm f0 '[1]'
    expect_warm "f$((WARM - 1))" '[1]'
    if ((WARM < COUNT)); then expect_warm "$last" '[]'; fi
    stop_server

    report
}

main "$@"
