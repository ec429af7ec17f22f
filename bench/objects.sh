#!/usr/bin/env bash
# What buckets cost: upload and download throughput against cp on the same disk, objects
# created per second with and without a notification, and the time from an upload to the
# notified function's start. Run `bench/objects.sh --help`.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-10}
WARMUP=2
THREADS=2
CONNECTIONS=${CONNECTIONS:-16}
SMALL_FILES=20
SPACED_UPLOADS=${SPACED_UPLOADS:-200}
RESULTS=bench/results/objects.md

usage() {
    cat <<EOF
Usage: bench/objects.sh [--help]

Builds Vireo (release) and the examples, starts vireo serve on 127.0.0.1 with its default SQLite
store (its data directory in \$TMPDIR, the disk cp is measured on), then:
  1. uploads and downloads one 100 MiB object and $SMALL_FILES objects of 1 MiB with curl (one
     process per object), against cp of the same files followed by sync;
  2. creates 1 KiB objects under distinct keys with wrk -t$THREADS -c$CONNECTIONS (a PUT per
     request) into a bucket without a notification, then into one whose notification invokes
     hello for every created object, and waits for the queue to deliver them all;
  3. uploads $SPACED_UPLOADS small objects one at a time, 20 ms apart, into a bucket notifying
     a function, and reads from each delivery's record the time from the object's arrival (its
     event is accepted in the same transaction) to the function's start: p50 and p99.
Prints the results as Markdown, also written with the machine details and the exact commands
to $RESULTS. Installs wrk, curl and jq (apt-get) and the wasm32-wasip2 target (rustup) when
missing.

Options:
  -h, --help        show this help

Environment:
  DURATION          seconds of each wrk measurement (default 10)
  CONNECTIONS       wrk connections (default 16)
  SPACED_UPLOADS    uploads timed one by one (default 200)
  VIREO_BIN         a prebuilt vireo binary to measure (default: build target/release/vireo)
EOF
}

accept_options "" "" "$@"
require_whole DURATION seconds
require_whole CONNECTIONS connections
require_whole SPACED_UPLOADS uploads
init_work vireo-objects
ensure_wrk
ensure_tool curl
ensure_tool jq
ensure_wasip2_target
build_vireo

start_vireo vireo "$WORK/data"
BASE=http://$SERVER_ADDR
API=$BASE/v1/namespaces/default
deploy_hello hello
check_hello vireo "$BASE/fn/default/hello/"

# create_bucket NAME [NOTIFIED-FUNCTION]
create_bucket() {
    run admin_curl -fsS -o /dev/null -H 'content-type: application/json' \
        -d "{\"name\":\"$1\"}" "$API/buckets"
    if (($# > 1)); then
        run admin_curl -fsS -o /dev/null -X PUT -H 'content-type: application/json' \
            -d '{"events":["created"]}' "$API/buckets/$1/notifications/$2"
    fi
}

# seconds_of CMD... : runs CMD, printing how long it took in seconds.
seconds_of() {
    local start
    start=$(now_us)
    "$@" >/dev/null
    seconds_since "$start"
}

mib_s() { awk -v mib="$1" -v s="$2" 'BEGIN { printf "%.0f", mib / s }'; }

# ---------------------------------------------------------------------------
# 1. Throughput against cp + sync

create_bucket files
FILES=$WORK/files COPIES=$WORK/copies DOWNLOADS=$WORK/downloads
mkdir -p "$FILES" "$COPIES" "$DOWNLOADS"
head -c $((100 << 20)) /dev/urandom >"$FILES/large"
for n in $(seq "$SMALL_FILES"); do head -c $((1 << 20)) /dev/urandom >"$FILES/small-$n"; done
record "# each upload: curl -fsS -T FILE -H 'Authorization: Bearer \$KEY' $API/buckets/files/objects/NAME"
record "# each download: curl -fsS -o FILE -H 'Authorization: Bearer \$KEY' $API/buckets/files/objects/NAME"
record "# the physical limit: cp FILE COPY && sync COPY (the $SMALL_FILES small copies synced together)"

object_url() { printf '%s' "$API/buckets/files/objects/$1"; }
upload() {
    local name
    for name in "$@"; do admin_curl -fsS -o /dev/null -T "$FILES/$name" "$(object_url "$name")"; done
}
download() {
    local name
    for name in "$@"; do admin_curl -fsS -o "$DOWNLOADS/$name" "$(object_url "$name")"; done
}
copy() {
    local name
    for name in "$@"; do cp "$FILES/$name" "$COPIES/$name"; done
    (cd "$COPIES" && sync "$@")
}
mapfile -t SMALL < <(for n in $(seq "$SMALL_FILES"); do echo "small-$n"; done)

sync
UP_LARGE=$(seconds_of upload large)
DOWN_LARGE=$(seconds_of download large)
CP_LARGE=$(seconds_of copy large)
UP_SMALL=$(seconds_of upload "${SMALL[@]}")
DOWN_SMALL=$(seconds_of download "${SMALL[@]}")
CP_SMALL=$(seconds_of copy "${SMALL[@]}")
for name in large "${SMALL[@]}"; do
    cmp -s "$FILES/$name" "$DOWNLOADS/$name" || die "the download of $name differs from its upload"
done
rm -rf "$FILES" "$COPIES" "$DOWNLOADS"

# ---------------------------------------------------------------------------
# 2. Objects created per second, without and with a notification

create_bucket plain
create_bucket notified hello
# Each wrk thread PUTs 1 KiB bodies under keys of its own: its number and the second it started
# (the warm-up and the measurement start seconds apart), then a counter.
WRK_SCRIPT=$WORK/put.lua
cat >"$WRK_SCRIPT" <<'LUA'
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("id", threads)
end
local counter = 0
wrk.method = "PUT"
wrk.body = string.rep("x", 1024)
function request()
    counter = counter + 1
    return wrk.format(nil, wrk.path .. id .. "-" .. os.time() .. "-" .. counter)
end
LUA
record "# put.lua: wrk.method = PUT, a 1 KiB body, the URL's path plus a key unique to the request"
record "# (the thread's number, the second its run started, a counter)"
AUTH="Authorization: Bearer $VIREO_ADMIN_KEY"
run_wrk plain "$API/buckets/plain/objects/o-" "$DURATION" "$AUTH"
((ERRORS == 0)) || die "plain: $ERRORS errors"
PLAIN_RPS=$RPS PLAIN_P50=$P50 PLAIN_P99=$P99
run_wrk notified "$API/buckets/notified/objects/o-" "$DURATION" "$AUTH"
((ERRORS == 0)) || die "notified: $ERRORS errors"
NOTIFIED_RPS=$RPS NOTIFIED_P50=$P50 NOTIFIED_P99=$P99
unset WRK_SCRIPT

# queue FUNCTION FIELD : the function's async queue count FIELD.
queue() { admin_curl -fsS "$API/functions/$1/queue" | jq -r ".$2"; }
drained() { (($(queue hello queued) + $(queue hello running) == 0)); }
DRAIN_START=$(now_us)
wait_for 600 0.2 drained || die "hello's queue did not drain within 600 s"
DRAIN_SECONDS=$(seconds_since "$DRAIN_START")
NOTIFIED_OBJECTS=$(admin_curl -fsS "$API/buckets" | jq -r '.buckets[] | select(.name == "notified") | .objects')
DELIVERED=$(queue hello succeeded)
((DELIVERED == NOTIFIED_OBJECTS)) ||
    die "$NOTIFIED_OBJECTS objects created but $DELIVERED deliveries succeeded"

# ---------------------------------------------------------------------------
# 3. From an upload to the notified function's start

deploy_hello timed
create_bucket spaced timed
record "# $SPACED_UPLOADS times, 20 ms apart: curl -fsS -X PUT --data-binary hello $API/buckets/spaced/objects/k-N"
for n in $(seq "$SPACED_UPLOADS"); do
    admin_curl -fsS -o /dev/null -X PUT --data-binary hello "$API/buckets/spaced/objects/k-$n"
    sleep 0.02
done
all_timed_delivered() { (($(queue timed succeeded) == SPACED_UPLOADS)); }
wait_for 120 0.2 all_timed_delivered || die "the spaced uploads were not all delivered within 120 s"
record "# each delivery: GET /v1/invocations/ID, execution.started_at_us - accepted_at_us"
: >"$WORK/start-ms"
cursor=""
while :; do
    page=$(admin_curl -fsS "$API/functions/timed/invocations?limit=1000${cursor:+&cursor=$cursor}")
    for id in $(jq -r '.invocations[].id' <<<"$page"); do
        admin_curl -fsS "$BASE/v1/invocations/$id" |
            jq -r '(.execution.started_at_us - .accepted_at_us) / 1000' >>"$WORK/start-ms"
    done
    cursor=$(jq -r '.next_cursor // empty' <<<"$page")
    [[ -n $cursor ]] || break
done
read -r START_N START_P50 START_P99 START_MAX < <(stats "$WORK/start-ms")
((START_N == SPACED_UPLOADS)) || die "read $START_N deliveries of $SPACED_UPLOADS"

report() {
    echo "# Buckets: transfers, notified writes, upload to function start (SQLite store)"
    echo
    machine_section "$(wrk_version)" "$(curl --version | head -n 1)"
    echo "## Results"
    echo
    echo "| transfer | Vireo | cp + sync | ratio |"
    echo "|---|---:|---:|---:|"
    echo "| upload 100 MiB | ${UP_LARGE} s ($(mib_s 100 "$UP_LARGE") MiB/s) | ${CP_LARGE} s ($(mib_s 100 "$CP_LARGE") MiB/s) | $(ratio "$CP_LARGE" "$UP_LARGE") |"
    echo "| download 100 MiB | ${DOWN_LARGE} s ($(mib_s 100 "$DOWN_LARGE") MiB/s) | ${CP_LARGE} s | $(ratio "$CP_LARGE" "$DOWN_LARGE") |"
    echo "| upload $SMALL_FILES × 1 MiB | ${UP_SMALL} s ($(mib_s "$SMALL_FILES" "$UP_SMALL") MiB/s) | ${CP_SMALL} s ($(mib_s "$SMALL_FILES" "$CP_SMALL") MiB/s) | $(ratio "$CP_SMALL" "$UP_SMALL") |"
    echo "| download $SMALL_FILES × 1 MiB | ${DOWN_SMALL} s ($(mib_s "$SMALL_FILES" "$DOWN_SMALL") MiB/s) | ${CP_SMALL} s | $(ratio "$CP_SMALL" "$DOWN_SMALL") |"
    echo
    echo "Objects of 1 KiB created under distinct keys, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s:"
    echo
    echo "| bucket | objects/s | p50 | p99 |"
    echo "|---|---:|---:|---:|"
    echo "| no notification | $PLAIN_RPS | $PLAIN_P50 | $PLAIN_P99 |"
    echo "| notifying hello of each | $NOTIFIED_RPS | $NOTIFIED_P50 | $NOTIFIED_P99 |"
    echo
    echo "- with a notification: $(ratio "$NOTIFIED_RPS" "$PLAIN_RPS") of the writes per second without one"
    echo "- the $NOTIFIED_OBJECTS notified objects were all delivered (succeeded) ${DRAIN_SECONDS} s after the load ended"
    echo "- upload to the function's start, $START_N uploads 20 ms apart: p50 $(fmt "$START_P50") ms, p99 $(fmt "$START_P99") ms, max $(fmt "$START_MAX") ms"
    echo
    commands_section
}
report | write_result "$RESULTS"
report
