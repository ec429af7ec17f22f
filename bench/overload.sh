#!/usr/bin/env bash
# Measures how Vireo behaves at twice a function's capacity: latency of admitted requests, load
# shed, and time to recover. Run `bench/overload.sh --help` for usage.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WORKLOAD=${WORKLOAD:-wait}
WAIT_MS=${WAIT_MS:-20}
FUNCTION_CONCURRENCY=${FUNCTION_CONCURRENCY:-100}
DURATION=${DURATION:-30}
CAPACITY_DURATION=${CAPACITY_DURATION:-5}
RECOVERY_TIMEOUT=${RECOVERY_TIMEOUT:-60}
MAX_CONCURRENT=${MAX_CONCURRENT:-1000}
MAX_QUEUED=${MAX_QUEUED:-100}
QUEUE_TIMEOUT_MS=${QUEUE_TIMEOUT_MS:-5000}
OHA_CONNECTIONS=${OHA_CONNECTIONS:-$((2 * (MAX_CONCURRENT + MAX_QUEUED)))}
WARMUP=2
THREADS=1
PROBE_INTERVAL_MS=100
OHA_VERSION=1.16.0
RESULTS=bench/results/overload-$WORKLOAD.md

# wrk's connections for the capacity run: as many as the function's slots for wait, so that
# every slot is busy and none waits; for hello, enough to keep both cores busy.
if [[ $WORKLOAD == wait ]]; then CONNECTIONS=$FUNCTION_CONCURRENCY; else CONNECTIONS=32; fi

usage() {
    cat <<EOF
Usage: bench/overload.sh [--install-oha] [--help]

Builds Vireo (release) and the example components, starts vireo serve on 127.0.0.1 with
  [limits] max_concurrent_invocations = MAX_CONCURRENT, max_queued_per_function = MAX_QUEUED,
           queue_timeout_ms = QUEUE_TIMEOUT_MS
and deploys the WORKLOAD's function:
  wait   (default) the wait example as \`wait\` with max_concurrency = FUNCTION_CONCURRENCY,
         called as /fn/default/wait/?ms=WAIT_MS: each invocation waits WAIT_MS without using
         the CPU, so the function's capacity is FUNCTION_CONCURRENCY / WAIT_MS, set by
         admission control, and a load generator on the same machine can offer twice that;
  hello  hello as \`hello\`, no limit of its own: capacity is the CPU's, which a load
         generator sharing the machine's cores cannot offer twice (see "sent by oha").
Then:
  1. capacity: wrk -t$THREADS -cCONNECTIONS -d\${CAPACITY_DURATION}s --latency (after a ${WARMUP}s warm-up):
     2xx answers/s, and the uncontended p50 and p99. CONNECTIONS is FUNCTION_CONCURRENCY for
     wait (every slot busy, none waiting) and 32 for hello;
  2. overload: oha, open loop at a constant 2 × capacity req/s for DURATION seconds
     (-q RATE --latency-correction, up to OHA_CONNECTIONS requests in flight): p99 of the
     admitted (2xx) answers, share of answers shed (429 and 503), p99 of the shed answers;
  3. recovery: once oha stops, one GET every ${PROBE_INTERVAL_MS} ms (for at most RECOVERY_TIMEOUT s)
     until one answers 200 in under 2 × the uncontended p50; reports how long that took.
Prints the results as Markdown, also written with the machine details and the exact
commands to bench/results/overload-WORKLOAD.md.

At twice capacity a function's admission queue stays full, so an admitted request waits about
MAX_QUEUED / capacity = MAX_QUEUED / FUNCTION_CONCURRENCY × WAIT_MS before it runs: a queue no
longer than the function's concurrency (Vireo's default queue of 100 is as long as the
default FUNCTION_CONCURRENCY here) keeps admitted latency within about 2 × the uncontended one.

wrk only keeps a fixed number of connections busy (closed loop), which hides overload, so the
overload step needs oha: without an oha binary the script prints "skipped: needs oha" and
stops. Installs wrk and jq (apt-get) and the wasm32-wasip2 target (rustup) when missing.

Options:
  --install-oha       if no oha binary is found, run cargo install --locked oha@$OHA_VERSION
  -h, --help          show this help

Environment:
  WORKLOAD              wait (default) or hello, as above
  WAIT_MS               milliseconds each wait invocation waits (default 20)
  FUNCTION_CONCURRENCY  the wait function's max_concurrency (default 100)
  DURATION              seconds of overload (default 30)
  CAPACITY_DURATION     seconds of the capacity run (default 5)
  RECOVERY_TIMEOUT      seconds to wait for recovery (default 60)
  MAX_CONCURRENT        [limits] max_concurrent_invocations (default 1000, Vireo's default)
  MAX_QUEUED            [limits] max_queued_per_function (default 100, Vireo's default)
  QUEUE_TIMEOUT_MS      [limits] queue_timeout_ms (default 5000, Vireo's default)
  OHA_CONNECTIONS       oha -c: most requests in flight (default 2 × (MAX_CONCURRENT + MAX_QUEUED),
                        so that the client never caps the load before Vireo sheds it)
  OHA                   the oha binary to use (default: oha on PATH or in ~/.cargo/bin)
  VIREO_BIN             a vireo binary to run as it is, e.g. another build to compare
                        (default: builds target/release/vireo)
  START_TIMEOUT         seconds to wait for a server to print its address (default 180)
EOF
}

# ---------------------------------------------------------------------------
# Setup

# Sets OHA to an oha binary, or to "" when there is none.
find_oha() {
    if [[ -n ${OHA:-} ]]; then
        [[ -x $OHA ]] || OHA=$(command -v "$OHA" || true)
        [[ -n $OHA ]] || die "OHA is set but is not an executable"
        return 0
    fi
    OHA=$(command -v oha || true)
    if [[ -z $OHA && -x $HOME/.cargo/bin/oha ]]; then OHA=$HOME/.cargo/bin/oha; fi
    if [[ -z $OHA && $INSTALL_OHA == 1 ]]; then
        run cargo install --locked "oha@$OHA_VERSION"
        OHA=$HOME/.cargo/bin/oha
    fi
    return 0
}

# raise_file_limit : every connection of oha and of the server is a file descriptor.
raise_file_limit() {
    local need=$((OHA_CONNECTIONS + 1024)) soft hard
    soft=$(ulimit -Sn)
    [[ $soft == unlimited ]] && return 0
    ((soft >= need)) && return 0
    hard=$(ulimit -Hn)
    if [[ $hard != unlimited ]] && ((hard < need)); then
        die "OHA_CONNECTIONS=$OHA_CONNECTIONS needs $need open files, but the hard limit is $hard"
    fi
    ulimit -Sn "$need"
    log "raised the open-file limit from $soft to $need"
}

# ---------------------------------------------------------------------------
# Measuring

# capacity : sets CAPACITY, the 2xx answers per second of the capacity run (wrk's req/s
# counts every answer, shed ones too).
capacity() {
    local out=$WORK/capacity.wrk requests took bad
    requests=$(awk '$2 == "requests" && $3 == "in" {print $1}' "$out")
    took=$(awk '$2 == "requests" && $3 == "in" {sub(/,$/, "", $4); print $4}' "$out")
    bad=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
    [[ -n $requests && -n $took ]] || die "could not parse wrk's output (in $out)"
    CAPACITY=$(awk -v n="$requests" -v b="${bad:-0}" -v ms="$(wrk_ms "$took")" 'BEGIN { printf "%.2f", (n - b) * 1000 / ms }')
    if [[ -n $bad ]]; then log "capacity run: $bad answers were not 2xx; capacity counts 2xx only: $CAPACITY req/s"; fi
}

overload() {
    local url=$1
    RATE=$(awk -v r="$CAPACITY" 'BEGIN { printf "%.0f", 2 * r }')
    log "overload: $RATE req/s (2 × $CAPACITY) for ${DURATION}s, at most $OHA_CONNECTIONS in flight"
    OVERLOAD_START=$(now_us)
    run "$OHA" --no-tui -z "${DURATION}s" -q "$RATE" --latency-correction -c "$OHA_CONNECTIONS" \
        --stats-success-breakdown --output-format json -o "$WORK/overload.json" "$url"
    [[ -s $WORK/overload.json ]] || die "oha wrote no results"
}

# probe URL : one GET; sets PROBE_CODE and PROBE_MS.
probe() {
    local result seconds
    result=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code} %{time_total}' "$1" 2>/dev/null) ||
        result=${result:-000 10}
    read -r PROBE_CODE seconds <<<"$result"
    PROBE_MS=$(awk -v s="$seconds" 'BEGIN { printf "%.3f", s * 1000 }')
}

# recover URL : probes every PROBE_INTERVAL_MS until one answers 200 in under 2 × P50.
# Sets RECOVERY (seconds after the overload stopped, or "" when not within
# RECOVERY_TIMEOUT), PROBES and FIRST_PROBE (seconds after the overload stopped).
recover() {
    local url=$1 threshold ended deadline next i
    threshold=$(awk -v p="$(wrk_ms "$P50")" 'BEGIN { printf "%.3f", 2 * p }')
    ended=$((OVERLOAD_START + DURATION * 1000000))
    deadline=$(($(now_us) + RECOVERY_TIMEOUT * 1000000))
    record "# then every ${PROBE_INTERVAL_MS} ms, at most ${RECOVERY_TIMEOUT}s: until 200 in under 2 × p50 = $threshold ms"
    record "$(quote curl -sS -o /dev/null -w '%{http_code} %{time_total}' "$url")"
    log "recovery: probing until a request answers 200 in under $threshold ms"
    RECOVERY="" PROBES=0 RECOVERY_THRESHOLD=$threshold
    FIRST_PROBE=$(awk -v a="$ended" -v b="$(now_us)" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')
    next=$(now_us)
    for ((i = 0; i < RECOVERY_TIMEOUT * 1000 / PROBE_INTERVAL_MS; i++)); do
        probe "$url"
        PROBES=$((PROBES + 1))
        if [[ $PROBE_CODE == 200 ]] && awk -v a="$PROBE_MS" -v b="$threshold" 'BEGIN { exit !(a < b) }'; then
            RECOVERY=$(awk -v a="$ended" -v b="$(now_us)" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')
            log "recovered: 200 in $PROBE_MS ms, $RECOVERY s after the overload stopped"
            return 0
        fi
        (($(now_us) < deadline)) || break
        next=$((next + PROBE_INTERVAL_MS * 1000))
        local wait_us=$((next - $(now_us)))
        if ((wait_us > 0)); then sleep "$(awk -v u="$wait_us" 'BEGIN { printf "%.6f", u / 1e6 }')"; fi
    done
    log "not recovered within ${RECOVERY_TIMEOUT}s (last probe: $PROBE_CODE in $PROBE_MS ms)"
}

# ---------------------------------------------------------------------------
# Report

# oha_value JQ-FILTER : a value from oha's JSON report.
oha_value() { jq -r "$1" "$WORK/overload.json"; }

# ms SECONDS : seconds (from oha) in ms; n/a for null.
ms() {
    if [[ $1 == null || -z $1 ]]; then printf 'n/a'; else awk -v s="$1" 'BEGIN { printf "%.2f", s * 1000 }'; fi
}

share() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.1f %%", 100 * a / b }'; }

summary() {
    local codes answered ok s429 s503 other errors shed admitted_p99 shed_p99 p50 p99 recovery
    codes='.statusCodeDistribution'
    answered=$(oha_value "[${codes}[]] | add // 0")
    ok=$(oha_value "[$codes | to_entries[] | select(.key | startswith(\"2\")) | .value] | add // 0")
    s429=$(oha_value "${codes}[\"429\"] // 0")
    s503=$(oha_value "${codes}[\"503\"] // 0")
    other=$((answered - ok - s429 - s503))
    errors=$(oha_value '[.errorDistribution[]] | add // 0')
    shed=$((s429 + s503))
    admitted_p99=$(ms "$(oha_value '.latencyPercentilesSuccessful.p99')")
    shed_p99=$(ms "$(oha_value '.latencyPercentilesNotSuccessful.p99')")
    p50=$(wrk_ms "$P50")
    p99=$(wrk_ms "$P99")
    if [[ -n $RECOVERY ]]; then
        recovery="$RECOVERY s (probes: $PROBES, the first $FIRST_PROBE s after the overload stopped)"
    else
        recovery="not within ${RECOVERY_TIMEOUT}s (probes: $PROBES)"
    fi

    echo "| measure | value |"
    echo "|---|---:|"
    echo "| capacity: 2xx/s of wrk -t$THREADS -c$CONNECTIONS, ${CAPACITY_DURATION}s | $(fmt "$CAPACITY" 0) req/s (wrk: $(fmt "$RPS" 0) req/s, $ERRORS errors) |"
    echo "| uncontended p50 / p99 (capacity run) | $(fmt "$p50") / $(fmt "$p99") ms |"
    echo "| offered: oha -q, open loop, ${DURATION}s | $RATE req/s (2 × capacity) |"
    echo "| sent by oha: (answers + no answer) / ${DURATION}s | $(awk -v n="$((answered + errors))" -v d="$DURATION" 'BEGIN { printf "%.0f", n / d }') req/s |"
    echo "| admitted (2xx) | $ok ($(awk -v n="$ok" -v d="$DURATION" 'BEGIN { printf "%.0f", n / d }') req/s) |"
    echo "| admitted p99 (2xx) | $admitted_p99 ms ($(if [[ $admitted_p99 == n/a ]]; then echo n/a; else ratio "$admitted_p99" "$p99"; fi) the uncontended p99) |"
    echo "| shed: 429 + 503 | $s429 + $s503 = $(share "$shed" "$answered") of $answered answers |"
    if [[ $shed_p99 == n/a ]]; then shed_p99="n/a (none)"; else shed_p99+=" ms"; fi
    echo "| shed answers p99 (all non-2xx) | $shed_p99 |"
    echo "| other answers (not 2xx, 429, 503) | $other |"
    echo "| no answer (oha errors, incl. aborted at the deadline) | $errors |"
    echo "| time to recover | $recovery |"
}

report() {
    {
        if [[ $WORKLOAD == wait ]]; then
            echo "# Overload: wait ($WAIT_MS ms, max_concurrency $FUNCTION_CONCURRENCY) at 2 × capacity"
            echo
            echo "One \`vireo serve\` on 127.0.0.1, the wait example deployed as \`wait\` with max_concurrency"
            echo "$FUNCTION_CONCURRENCY, each call waiting $WAIT_MS ms: admission control, not the CPU, sets the capacity."
        else
            echo "# Overload: hello at 2 × capacity"
            echo
            echo "One \`vireo serve\` on 127.0.0.1, hello deployed as \`hello\`: the CPU sets the capacity."
        fi
        echo "The load generator runs on the same machine."
        echo "Capacity is the 2xx answers/s of wrk (closed loop, $CONNECTIONS connections); the overload is oha at a constant"
        echo "2 × capacity (open loop: \`-q\` with \`--latency-correction\`, so latencies count from each"
        echo "request's scheduled time; at most $OHA_CONNECTIONS in flight). Requests still in flight at"
        echo "the end are aborted by oha. *Recovered* is the first probe (one GET every ${PROBE_INTERVAL_MS} ms"
        echo "after oha exits) that answers 200 in under 2 × the uncontended p50 = $RECOVERY_THRESHOLD ms."
        echo "When *sent by oha* is below the offered rate, the load generator fell behind (it shares the"
        echo "machine); its backlog then counts in the latencies, which start at each request's scheduled time."
        echo
        summary
        echo
        echo "oha's status codes: \`$(oha_value '.statusCodeDistribution' | jq -c .)\`, errors: \`$(oha_value '.errorDistribution' | jq -c .)\`"
        echo
        machine_section "$(wrk_version)" "$("$OHA" --version)" "$(rustc --version)"
        echo "## Config"
        echo
        echo '```toml'
        cat "$CONFIG"
        echo '```'
        echo
        commands_section
        echo
        echo "## wrk output (capacity)"
        echo
        echo '```'
        cat "$WORK/capacity.wrk"
        echo '```'
        echo
        echo "## oha summary (overload)"
        echo
        echo '```json'
        oha_value '{summary, latencyPercentiles, latencyPercentilesSuccessful, latencyPercentilesNotSuccessful, statusCodeDistribution, errorDistribution}'
        echo '```'
    } | write_result "$RESULTS"
    cat "$RESULTS"
}

# ---------------------------------------------------------------------------

main() {
    INSTALL_OHA=0
    accept_options --install-oha INSTALL_OHA "$@"
    local name
    for name in DURATION CAPACITY_DURATION RECOVERY_TIMEOUT START_TIMEOUT; do require_whole "$name" seconds; done
    require_whole MAX_CONCURRENT invocations
    require_whole MAX_QUEUED invocations
    require_whole QUEUE_TIMEOUT_MS milliseconds
    require_whole WAIT_MS milliseconds
    require_whole FUNCTION_CONCURRENCY invocations
    [[ $WORKLOAD == wait || $WORKLOAD == hello ]] || die "WORKLOAD must be wait or hello, not '$WORKLOAD'"
    require_whole OHA_CONNECTIONS connections

    init_work vireo-overload
    find_oha
    if [[ -z $OHA ]]; then
        echo "skipped: needs oha (install with cargo install --locked oha@$OHA_VERSION, or pass --install-oha)"
        return 0
    fi
    raise_file_limit
    ensure_wrk
    ensure_tool jq
    ensure_wasip2_target
    build_vireo

    CONFIG=$WORK/vireo-server.toml
    printf '[limits]\nmax_concurrent_invocations = %s\nmax_queued_per_function = %s\nqueue_timeout_ms = %s\n' \
        "$MAX_CONCURRENT" "$MAX_QUEUED" "$QUEUE_TIMEOUT_MS" >"$CONFIG"
    start_vireo vireo "$WORK/data" --config "$CONFIG"
    local url
    if [[ $WORKLOAD == wait ]]; then
        deploy_component wait "$WAIT_WASM" "{\"max_concurrency\":$FUNCTION_CONCURRENCY}"
        url="http://$SERVER_ADDR/fn/default/wait/?ms=$WAIT_MS"
        check_answer vireo "$url" "waited $WAIT_MS ms"$'\n'
    else
        deploy_hello hello
        url="http://$SERVER_ADDR/fn/default/hello/"
        check_hello vireo "$url"
    fi

    run_wrk capacity "$url" "$CAPACITY_DURATION"
    capacity
    overload "$url"
    recover "$url"
    stop_server

    report
}

main "$@"
