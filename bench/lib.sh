# shellcheck shell=bash
# Helpers shared by the bench/ scripts: `source` this file, don't run it.
#
# Bookkeeping: every command that matters is recorded in COMMANDS for the report, every server
# started is in PIDS and stopped on exit, and WORK (a mktemp directory) is removed on exit.
# Scripts call init_work once, after parsing their arguments.
#
# Variables a script may read: ROOT, START_TIMEOUT, VIREO_BIN, HELLO_WASM, HELLO_BODY, WAIT_WASM, WORK,
# SERVER_ADDR and SERVER_PID (the server started last). run_wrk also reads THREADS,
# CONNECTIONS and WARMUP, which the calling script sets.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
START_TIMEOUT=${START_TIMEOUT:-180}
HELLO_BODY=$'Hello, Vireo!\n'

# Relative to ROOT, where init_work moves. A VIREO_BIN given in the environment (another
# build, to compare) is used as it is; otherwise the checkout's release build is made.
VIREO_PREBUILT=${VIREO_BIN:+1}
VIREO_BIN=${VIREO_BIN:-target/release/vireo}
HELLO_WASM=target/guests/wasm32-wasip2/release/hello.wasm
WAIT_WASM=target/guests/wasm32-wasip2/release/wait.wasm

log() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# require_whole NAME UNIT : the variable NAME must hold a whole number > 0.
require_whole() {
    [[ ${!1} =~ ^[1-9][0-9]*$ ]] || die "$1 must be a whole number of $2, not '${!1}'"
}

# accept_options FLAG VAR ARG... : -h/--help prints the script's usage and exits; FLAG (if not
# empty) sets the variable named VAR to 1; anything else is refused.
accept_options() {
    local flag=$1 var=$2
    shift 2
    while (($#)); do
        if [[ $1 == -h || $1 == --help ]]; then
            usage
            exit 0
        elif [[ -n $flag && $1 == "$flag" ]]; then
            printf -v "$var" 1
        else
            usage >&2
            die "unknown argument: $1"
        fi
        shift
    done
}

COMMANDS=()
PIDS=()
WORK=""

# quote CMD... : CMD as one shell-quoted line.
quote() {
    local line
    line=$(printf '%q ' "$@")
    printf '%s' "${line% }"
}

# record LINE : adds LINE (a command or a `# comment`) to the report's commands.
record() { COMMANDS+=("$1"); }

# run CMD... : records CMD for the report, then runs it.
run() {
    record "$(quote "$@")"
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
    # The servers first, while a database they use still answers (a node whose store is gone
    # waits out its shutdown grace), then the PostgreSQL start_postgres started (not a child of
    # this shell).
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid"
    done
    PIDS=()
    stop_postgres
    if [[ -n $WORK ]]; then rm -rf "$WORK"; fi
    exit "$status"
}

# init_work NAME : moves to ROOT, sets the traps and makes WORK ($TMPDIR/NAME.XXXXXX).
init_work() {
    cd "$ROOT" || die "cannot cd to $ROOT"
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
}

# now_us : wall-clock time in microseconds.
now_us() { printf '%s' "${EPOCHREALTIME//[!0-9]/}"; }

# seconds_since START_US : seconds elapsed since START_US, with 3 decimals.
seconds_since() { awk -v a="$1" -v b="$(now_us)" 'BEGIN { printf "%.3f", (b - a) / 1e6 }'; }

# wait_for SECONDS INTERVAL CMD... : runs CMD every INTERVAL seconds until it succeeds;
# returns 1 when it has not within SECONDS.
wait_for() {
    local limit=$1 interval=$2
    shift 2
    local deadline=$(($(now_us) + limit * 1000000))
    while true; do
        "$@" && return 0
        (($(now_us) < deadline)) || return 1
        sleep "$interval"
    done
}

# ---------------------------------------------------------------------------
# Setup

# ensure_tool COMMAND [DEBIAN-PACKAGE] : installs the package with apt-get when COMMAND is missing.
ensure_tool() {
    local tool=$1 package=${2:-$1}
    command -v "$tool" >/dev/null && return
    command -v apt-get >/dev/null || die "$tool is missing and there is no apt-get: install $package yourself"
    local sudo=()
    ((EUID == 0)) || sudo=(sudo)
    log "installing $package"
    export DEBIAN_FRONTEND=noninteractive
    # apt-get's chatter goes to stderr: stdout is for the results.
    "${sudo[@]}" apt-get install -y "$package" >&2 ||
        { "${sudo[@]}" apt-get update >&2 && "${sudo[@]}" apt-get install -y "$package" >&2; }
    command -v "$tool" >/dev/null || die "$tool is still missing after apt-get install $package"
}

ensure_wrk() { ensure_tool wrk; }

ensure_wasip2_target() {
    local installed
    installed=$(rustup target list --installed)
    grep -qx wasm32-wasip2 <<<"$installed" || run rustup target add wasm32-wasip2
}

# build_vireo : the release vireo binary and the example components.
build_vireo() {
    if [[ -z $VIREO_PREBUILT ]]; then run cargo build --release -p vireo-cli; fi
    [[ -e $VIREO_BIN ]] || die "the build did not produce $VIREO_BIN"
    build_vireo_guests
}

# build_vireo_guests : the example components alone.
build_vireo_guests() {
    local manifest wasm
    for manifest in examples/*/Cargo.toml; do
        run cargo build --manifest-path "$manifest" --target wasm32-wasip2 --release --target-dir target/guests
    done
    for wasm in "$HELLO_WASM" "$WAIT_WASM"; do
        [[ -e $wasm ]] || die "the build did not produce $wasm"
    done
}

# ---------------------------------------------------------------------------
# Servers

# start_broker NAME CMD... : CMD in the background as the broker NAME; sets BROKER_PID.
start_broker() {
    local name=$1
    shift
    record "$(quote "$@") &"
    "$@" >"$WORK/$name.log" 2>&1 </dev/null &
    BROKER_PID=$!
    PIDS+=("$BROKER_PID")
}

# start_broker_redis : redis-server on a free loopback port, without persistence; sets
# BROKER_PORT and BROKER_URL.
start_broker_redis() {
    BROKER_PORT=$(free_port)
    mkdir -p "$WORK/redis"
    start_broker redis redis-server --port "$BROKER_PORT" --bind 127.0.0.1 --save '' \
        --appendonly no --dir "$WORK/redis"
    wait_for 10 0.1 redis-cli -p "$BROKER_PORT" ping >/dev/null ||
        die "redis-server did not answer on 127.0.0.1:$BROKER_PORT: $(tail -n 5 "$WORK/redis.log")"
    BROKER_URL=redis://127.0.0.1:$BROKER_PORT
}

# free_port : a TCP port on 127.0.0.1 nothing listens on now (for servers that cannot take 0).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

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
    record "$(quote "$@") &"
    log "starting $name: $*"
    # Emptied here, not only by the child's redirections, which may run after the first look
    # below: a restarted server must not be found at its predecessor's address.
    : >"$out"
    : >"$err"
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

# stop_server : stops the server started last (SIGTERM, then waits for it).
stop_server() {
    stop_pid "$SERVER_PID"
    local pid kept=()
    for pid in "${PIDS[@]}"; do
        [[ $pid == "$SERVER_PID" ]] || kept+=("$pid")
    done
    PIDS=("${kept[@]}")
}

# The admin key every Vireo started here is given (through the environment), so the admin API
# calls below can authenticate; set VIREO_ADMIN_KEY to choose it.
VIREO_ADMIN_KEY=${VIREO_ADMIN_KEY:-bench-$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')}
export VIREO_ADMIN_KEY

# admin_curl ARG... : curl with the admin key, for /v1 and /metrics.
admin_curl() {
    curl -H "Authorization: Bearer $VIREO_ADMIN_KEY" "$@"
}

# start_vireo NAME DATA-DIR [ARG...] : vireo serve on a free 127.0.0.1 port.
start_vireo() {
    local name=$1 data=$2
    shift 2
    start_server "$name" "$VIREO_BIN" serve --listen 127.0.0.1:0 --data "$data" "$@"
}

# deploy_component FUNCTION WASM [SETTINGS-JSON] : deploys WASM as FUNCTION on the running server.
deploy_component() {
    local settings='{}'
    if (($# > 2)); then settings=$3; fi
    run admin_curl -fsS -o /dev/null -F "settings=$settings" -F "component=@$2" \
        "http://$SERVER_ADDR/v1/namespaces/default/functions/$1/versions"
}

# deploy_hello FUNCTION [SETTINGS-JSON] : deploys hello.wasm as FUNCTION on the running server.
deploy_hello() { deploy_component "$1" "$HELLO_WASM" "${2:-"{}"}"; }

# check_answer NAME URL BODY : one request must answer 200 with exactly BODY.
check_answer() {
    local name=$1 url=$2 expected=$3 body=$WORK/$1.body
    record "$(quote curl -fsS "$url")  # must print exactly: ${expected%$'\n'}"
    if ! curl -fsS --max-time 30 -o "$body" "$url"; then
        show_logs "$name"
        die "$name: GET $url failed"
    fi
    if ! printf '%s' "$expected" | cmp -s - "$body"; then
        die "$name: GET $url answered $(head -c 200 "$body" | od -c | head -n 3) instead of $(printf '%q' "$expected")"
    fi
}

# check_hello NAME URL : one request must answer 200 with exactly the hello body.
check_hello() { check_answer "$1" "$2" "$HELLO_BODY"; }

# rss_kib PID [FIELD] : FIELD (default VmRSS) of /proc/PID/status, in KiB.
rss_kib() {
    local value
    value=$(awk -v f="${2:-VmRSS}:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null)
    [[ -n $value ]] || die "cannot read ${2:-VmRSS} of pid $1"
    printf '%s' "$value"
}

# pss_kib PID : proportional set size (Pss of /proc/PID/smaps_rollup), in KiB. Unlike VmRSS it
# counts a page mapped several times (e.g. one file mapped per loaded version) once.
pss_kib() {
    local value
    value=$(awk '$1 == "Pss:" {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null)
    [[ -n $value ]] || die "cannot read the Pss of pid $1"
    printf '%s' "$value"
}

# ---------------------------------------------------------------------------
# Load

# cpu_ticks PID : user + system CPU time of PID so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run_wrk NAME URL SECONDS [HEADER] : warms up for WARMUP s, then measures for SECONDS with
# wrk -tTHREADS -cCONNECTIONS (and -H HEADER, -s WRK_SCRIPT when set). Sets RPS, P50, P99 (as wrk prints them, e.g. 11.60ms), ERRORS,
# CPU_US (the server's CPU time per request during the measurement, in µs: user + system of
# SERVER_PID from /proc), EXTRA_CPU_US (the same for the ticks the command EXTRA_TICKS prints,
# when set: another process's CPU, such as a database's) and leaves wrk's output in
# $WORK/NAME.wrk.
run_wrk() {
    local name=$1 url=$2 seconds=$3 out=$WORK/$1.wrk ticks_before ticks_after
    local header=()
    if [[ -n ${4:-} ]]; then header=(-H "$4"); fi
    if [[ -n ${WRK_SCRIPT:-} ]]; then header+=(-s "$WRK_SCRIPT"); fi
    log "$name: warming up for ${WARMUP}s"
    run wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" "${header[@]}" "$url" >/dev/null
    ticks_before=$(cpu_ticks "$SERVER_PID")
    local extra_before=0 extra_after=0
    if [[ -n ${EXTRA_TICKS:-} ]]; then extra_before=$($EXTRA_TICKS); fi
    run wrk -t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" --latency "${header[@]}" "$url" >"$out"
    ticks_after=$(cpu_ticks "$SERVER_PID")
    if [[ -n ${EXTRA_TICKS:-} ]]; then extra_after=$($EXTRA_TICKS); fi
    # shellcheck disable=SC2034 # read by the callers that set EXTRA_TICKS
    EXTRA_CPU_US=$(awk -v t=$((extra_after - extra_before)) -v hz="$(getconf CLK_TCK)" \
        '/requests in/ {printf "%.1f", t * 1e6 / hz / $1}' "$out")
    cat "$out" >&2
    # shellcheck disable=SC2034 # read by the callers
    CPU_US=$(awk -v t=$((ticks_after - ticks_before)) -v hz="$(getconf CLK_TCK)" \
        '/requests in/ {printf "%.1f", t * 1e6 / hz / $1}' "$out")

    RPS=$(awk '$1 == "Requests/sec:" {print $2}' "$out")
    P50=$(awk '/Latency Distribution/ {d = 1} d && $1 == "50%" {print $2; exit}' "$out")
    P99=$(awk '/Latency Distribution/ {d = 1} d && $1 == "99%" {print $2; exit}' "$out")
    # "Non-2xx or 3xx responses: N" and "Socket errors: connect A, read B, write C, timeout D"
    # shellcheck disable=SC2034 # read by the callers
    ERRORS=$(awk '
        /Non-2xx or 3xx responses:/ {n += $NF}
        /Socket errors:/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10}
        END {print n + 0}' "$out")
    [[ -n $RPS && -n $P50 && -n $P99 ]] || die "$name: could not parse wrk's output (in $out)"
    return 0
}

# measure_best WAY URL [HEADER] : run_wrk for DURATION seconds (no errors allowed), keeping
# WAY's best round so far (by throughput) in BEST_RPS, BEST_P50, BEST_P99 and BEST_CPU.
declare -A BEST_RPS BEST_P50 BEST_P99 BEST_CPU
measure_best() {
    local way=$1 url=$2 header=${3:-}
    run_wrk "$way" "$url" "$DURATION" "$header"
    ((ERRORS == 0)) || die "$way: $ERRORS errors"
    if [[ -z ${BEST_RPS[$way]:-} ]] || awk -v a="$RPS" -v b="${BEST_RPS[$way]}" 'BEGIN { exit !(a > b) }'; then
        BEST_RPS[$way]=$RPS BEST_P50[$way]=$P50 BEST_P99[$way]=$P99 BEST_CPU[$way]=$CPU_US
    fi
}

# wrk_ms DURATION : a duration as wrk prints it (850.00us, 11.60ms, 1.20s, 2.00m) in ms.
wrk_ms() {
    awk -v d="$1" 'BEGIN {
        if (match(d, /^[0-9.]+/) == 0) exit 1
        n = substr(d, 1, RLENGTH); u = substr(d, RLENGTH + 1)
        if (u == "us") f = 0.001; else if (u == "ms") f = 1; else if (u == "s") f = 1000
        else if (u == "m") f = 60000; else if (u == "h") f = 3600000; else exit 1
        printf "%.3f", n * f
    }' || die "cannot read wrk's duration '$1'"
}

# ---------------------------------------------------------------------------
# Statistics and report

# stats FILE : "COUNT P50 P99 MAX" of the numbers in FILE, one per line (nearest-rank
# percentiles); "0 n/a n/a n/a" when FILE is empty.
stats() {
    sort -g "$1" | awk '
        { v[++n] = $1 }
        function rank(p,  r) { r = int(p * n / 100); if (r < p * n / 100) r++; if (r < 1) r = 1; return v[r] }
        END {
            if (n == 0) { print "0 n/a n/a n/a"; exit }
            print n, rank(50), rank(99), v[n]
        }'
}

# fmt NUMBER [DECIMALS] : NUMBER with DECIMALS (default 2) decimals; n/a stays n/a.
fmt() {
    if [[ $1 == n/a || -z $1 ]]; then
        printf 'n/a'
    else
        awk -v x="$1" -v d="${2:-2}" 'BEGIN { printf "%.*f", d, x }'
    fi
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", a / b }'; }

# machine_section [ITEM...] : the "## Machine" section: the machine, the checkout, then each
# ITEM (a tool's version) as one more list item.
machine_section() {
    local commit cpu item
    commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
    if [[ -n $(git status --porcelain 2>/dev/null) ]]; then commit+=" (plus uncommitted changes)"; fi
    cpu=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
    echo "## Machine"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "- nproc: $(nproc)"
    echo "- CPU: ${cpu:-unknown}"
    echo "- kernel: $(uname -r)"
    echo "- vireo commit: $commit"
    for item in "$@"; do echo "- $item"; done
    echo
}

# wrk_version : wrk's first line of version output (wrk exits non-zero after printing it).
wrk_version() { wrk -v 2>&1 | head -n 1 || true; }

# commands_section : the "## Commands" section listing COMMANDS (repeats shown once).
commands_section() {
    echo "## Commands"
    echo
    echo "Run from the repository root; \`&\` marks servers (port 0, address read from their output)."
    echo
    echo '```sh'
    printf '%s\n' "${COMMANDS[@]}" | awk '!seen[$0]++'
    echo '```'
}

# write_result FILE : writes stdin to FILE (creating its directory) and logs it.
write_result() {
    mkdir -p "$(dirname "$1")"
    cat >"$1"
    log "wrote $1"
}

# A throwaway PostgreSQL (cluster.sh: the store; sources.sh: a source's database).
PG_ROOT=""
PG_PORT=""

# as_postgres CMD... : CMD as the postgres user when root (initdb refuses root).
as_postgres() {
    if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi
}

# start_postgres : initdb into WORK/pg and start it on a free loopback port, trusting the user
# vireo; sets PG_BIN, PG_ROOT and PG_PORT.
start_postgres() {
    ensure_tool pg_ctlcluster postgresql
    PG_BIN=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d | sort -V | tail -n 1)
    [[ -x $PG_BIN/initdb ]] || die "no initdb under /usr/lib/postgresql"
    PG_ROOT=$WORK/pg
    mkdir -p "$PG_ROOT"
    if ((EUID == 0)); then
        # The postgres user must reach its directory inside WORK (mode 0700 from mktemp).
        chmod o+x "$WORK"
        chown postgres: "$PG_ROOT"
    fi
    run as_postgres "$PG_BIN/initdb" --pgdata "$PG_ROOT/data" --username vireo --auth trust \
        --encoding UTF8 --locale C >/dev/null
    PG_PORT=$(free_port)
    run as_postgres "$PG_BIN/pg_ctl" --pgdata "$PG_ROOT/data" --log "$PG_ROOT/log" --wait \
        --options "-p $PG_PORT -k $PG_ROOT -c listen_addresses=127.0.0.1 -c max_connections=200" \
        start >/dev/null
}

# stop_postgres : stops the server start_postgres started, if any.
stop_postgres() {
    if [[ -n $PG_ROOT && -d $PG_ROOT/data ]]; then
        as_postgres "$PG_BIN/pg_ctl" --pgdata "$PG_ROOT/data" --mode fast --wait stop >/dev/null 2>&1 || true
    fi
}

# fresh_database : creates an empty database and prints its URL (a name of its own: this runs
# in a command substitution, whose counters the caller never sees).
fresh_database() {
    local name=bench_$(now_us)
    "$PG_BIN/createdb" --host 127.0.0.1 --port "$PG_PORT" --username vireo "$name" >&2
    printf 'postgres://vireo@127.0.0.1:%s/%s' "$PG_PORT" "$name"
}

# postgres_ticks : user + system CPU ticks of every process of the postgres user so far (this
# script's PostgreSQL is the only one running while it measures).
postgres_ticks() {
    local pid total=0
    for pid in $(pgrep -u postgres); do
        total=$((total + $(cpu_ticks "$pid" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

# Cold starts (cold-start.sh, languages.sh): a function's first request after scale to zero.
RECORD_TIMEOUT=10 # seconds to wait for an invocation record to be written

# function_api FUNCTION : the admin API URL of FUNCTION of the default namespace.
function_api() { printf 'http://%s/v1/namespaces/default/functions/%s' "$SERVER_ADDR" "$1"; }

# scaled_to_zero FUNCTION : FUNCTION has no warm version.
scaled_to_zero() {
    admin_curl -fsS --max-time 5 "$(function_api "$1")" | jq -e '.warm_versions == []' >/dev/null
}

# fetch_record ID : writes the invocation record ID to $WORK/record.json once it exists.
fetch_record() {
    admin_curl -fsS --max-time 5 -o "$WORK/record.json" "http://$SERVER_ADDR/v1/invocations/$1" 2>/dev/null
}

# timed_cold_request SCENARIO FUNCTION BODY : one GET of /fn/default/FUNCTION/, timed by curl,
# which must answer BODY. Appends curl's time_total (ms) to $WORK/SCENARIO.total and the
# record's init_us to $WORK/SCENARIO.init; counts records that are not cold in
# ANOMALIES[SCENARIO].
timed_cold_request() {
    local scenario=$1 url="http://$SERVER_ADDR/fn/default/$2/" expected=$3
    local headers=$WORK/request.headers body=$WORK/request.body result code total id cold init
    result=$(curl -sS --max-time 30 -D "$headers" -o "$body" -w '%{http_code} %{time_total}' "$url") ||
        die "$scenario: GET $url failed"
    read -r code total <<<"$result"
    [[ $code == 200 ]] || die "$scenario: GET $url answered $code: $(head -c 300 "$body")"
    printf '%s' "$expected" | cmp -s - "$body" || die "$scenario: GET $url answered an unexpected body"
    id=$(awk -F': *' 'tolower($1) == "x-vireo-invocation-id" {sub(/\r$/, "", $2); print $2}' "$headers")
    [[ -n $id ]] || die "$scenario: no x-vireo-invocation-id header"

    wait_for "$RECORD_TIMEOUT" 0.02 fetch_record "$id" ||
        die "$scenario: invocation $id was not recorded within ${RECORD_TIMEOUT}s"
    read -r cold init < <(jq -r '"\(.cold) \(.init_us)"' "$WORK/record.json")
    [[ $init =~ ^[0-9]+$ ]] || die "$scenario: record $id has no init_us: $(cat "$WORK/record.json")"
    if [[ $cold != true ]]; then
        ANOMALIES[$scenario]=$((ANOMALIES[$scenario] + 1))
        log "$scenario: invocation $id was not a cold start: $(cat "$WORK/record.json")"
    fi
    awk -v t="$total" 'BEGIN { printf "%.3f\n", t * 1000 }' >>"$WORK/$scenario.total"
    printf '%s\n' "$init" >>"$WORK/$scenario.init"
}

# cold_row LABEL SCENARIO : a table row of SCENARIO's timed_cold_request samples: count, not
# cold, client p50/p99/max (ms), init p50/p99/max (ms).
cold_row() {
    local n p50 p99 max n_init i50 i99 imax
    read -r n p50 p99 max < <(stats "$WORK/$2.total")
    read -r n_init i50 i99 imax < <(stats "$WORK/$2.init")
    ((n == n_init)) || die "$2: $n timings but $n_init records"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$n" "${ANOMALIES[$2]}" \
        "$(fmt "$p50")" "$(fmt "$p99")" "$(fmt "$max")" \
        "$(fmt "$(awk -v x="$i50" 'BEGIN { print x / 1000 }')" 3)" \
        "$(fmt "$(awk -v x="$i99" 'BEGIN { print x / 1000 }')" 3)" \
        "$(fmt "$(awk -v x="$imax" 'BEGIN { print x / 1000 }')" 3)"
}

# wasmtime serve, the peer that run.sh and languages.sh compare with (cargo install'd when
# INSTALL_WASMTIME is 1).
WASMTIME_VERSION=48.0.8
INSTALL_WASMTIME=${INSTALL_WASMTIME:-0}

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
