#!/usr/bin/env bash
# What the gateway costs a request: hello through a route, through a weighted alias and behind
# JWT auth, against hello at /fn/... directly, in one run. Run `bench/gateway.sh --help`.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-2}
PAIRS=${PAIRS:-30}
WARMUP=2
THREADS=2
CONNECTIONS=${CONNECTIONS:-16}
RESULTS=bench/results/gateway.md
ISSUER=https://id.example.test

usage() {
    cat <<EOF
Usage: bench/gateway.sh [--help]

Builds Vireo (release) and the example components, starts vireo serve on 127.0.0.1 with its
default SQLite store and deploys hello four ways, each with instance reuse (so the gateway's
share of a request is as large as it gets):
  direct  hello at /fn/default/hello/;
  route   the same function through the route /hello (matched in memory);
  split   /fn/default/split@prod/, an alias splitting 50/50 over two versions, sticky on a
          header that every request carries with its own value (a wrk Lua script sets it, so
          direct-script, hello directly with the same script, is what split compares with);
  jwt     /fn/default/secure/, invoke_auth = a JWT issuer with one Ed25519 key inline, called
          with a valid token (signed here by openssl), so each request verifies a signature.
Then measures each with wrk -t$THREADS -c$CONNECTIONS -d\${DURATION}s, ROUNDS times in turn
(direct, route, split, jwt, direct, …) so that drift of the machine hits all alike, and reports
each one's best round and its throughput as a ratio of direct's best. Then, because a shared
machine drifts by more than the costs measured here between rounds of seconds, PAIRS paired
1-second windows back to back (route against direct, split against direct-script, the order
alternating), reporting the median of the paired ratios and their interquartile range.

The targets (issue "API gateway"): routing and the split cost <= 2 % of throughput; JWT
validation's cost per request with a cached key is reported.
Installs wrk, curl and openssl (apt-get) and the wasm32-wasip2 target (rustup) when missing.

Options:
  -h, --help        show this help

Environment:
  DURATION          seconds of each measurement (default 10)
  ROUNDS            measurements of each way (default 2)
  PAIRS             paired 1-second windows per comparison (default 30)
  CONNECTIONS       wrk connections (default 16)
  VIREO_BIN         a prebuilt vireo binary to measure (default: build target/release/vireo)
EOF
}

accept_options "" "" "$@"
require_whole DURATION seconds
require_whole ROUNDS rounds
require_whole PAIRS pairs
require_whole CONNECTIONS connections
init_work vireo-gateway
ensure_wrk
ensure_tool curl
ensure_tool openssl
ensure_wasip2_target
build_vireo
build_vireo_guests

# b64url : stdin as base64url without padding.
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }

# An Ed25519 key, its public half as a JWK, and a token valid for an hour.
openssl genpkey -algorithm ED25519 -out "$WORK/key.pem" 2>/dev/null
PUBLIC_X=$(openssl pkey -in "$WORK/key.pem" -pubout -outform DER | tail -c 32 | b64url)
JWK="{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"alg\":\"EdDSA\",\"kid\":\"bench\",\"x\":\"$PUBLIC_X\"}"
NOW=$(date +%s)
HEADER=$(printf '{"alg":"EdDSA","typ":"JWT","kid":"bench"}' | b64url)
CLAIMS=$(printf '{"iss":"%s","aud":"bench","sub":"user-1","iat":%d,"exp":%d}' \
    "$ISSUER" "$NOW" $((NOW + 3600)) | b64url)
printf '%s.%s' "$HEADER" "$CLAIMS" >"$WORK/signed"
SIGNATURE=$(openssl pkeyutl -sign -rawin -inkey "$WORK/key.pem" -in "$WORK/signed" | b64url)
TOKEN="$HEADER.$CLAIMS.$SIGNATURE"
record "openssl genpkey -algorithm ED25519; a token signed with openssl pkeyutl -sign -rawin"

REUSE='"instance_reuse":1000'
start_vireo vireo "$WORK/data"
BASE=http://$SERVER_ADDR
deploy_hello hello "{$REUSE}"
deploy_hello split "{$REUSE}"
deploy_hello split "{$REUSE,\"env\":{\"RELEASE\":\"2\"}}"
deploy_hello secure "{$REUSE,\"invoke_auth\":{\"jwt\":{\"issuer\":\"$ISSUER\",\"audiences\":[\"bench\"],\"keys\":[$JWK]}}}"
run admin_curl -fsS -o /dev/null -X PUT -H 'content-type: application/json' \
    -d '{"versions":[{"version":1,"weight":50},{"version":2,"weight":50}],"sticky":{"header":"x-user"}}' \
    "$BASE/v1/namespaces/default/functions/split/aliases/prod"
run admin_curl -fsS -o /dev/null -H 'content-type: application/json' \
    -d '{"route":"/hello","function":"hello"}' "$BASE/v1/namespaces/default/routes"
check_hello direct "$BASE/fn/default/hello/"
check_hello route "$BASE/hello"
check_hello split "$BASE/fn/default/split@prod/"
record "$(quote curl -fsS -H "Authorization: Bearer \$TOKEN" "$BASE/fn/default/secure/")"
[[ $(curl -fsS -H "Authorization: Bearer $TOKEN" "$BASE/fn/default/secure/") == "${HELLO_BODY%$'\n'}" ]] ||
    die "the token was refused"
[[ $(curl -s -o /dev/null -w '%{http_code}' "$BASE/fn/default/secure/") == 401 ]] ||
    die "secure answered without a token"

# wrk sends the same header on every request; the split's sticky header must vary, so a Lua
# script gives each request its own user.
cat >"$WORK/users.lua" <<'LUA'
local n = 0
request = function()
    n = n + 1
    return wrk.format(nil, nil, { ["x-user"] = "user-" .. n })
end
LUA

for ((round = 1; round <= ROUNDS; round++)); do
    log "round $round of $ROUNDS"
    measure_best direct "$BASE/fn/default/hello/"
    measure_best route "$BASE/hello"
    WRK_SCRIPT=$WORK/users.lua measure_best direct-script "$BASE/fn/default/hello/"
    WRK_SCRIPT=$WORK/users.lua measure_best split "$BASE/fn/default/split@prod/"
    measure_best jwt "$BASE/fn/default/secure/" "Authorization: Bearer $TOKEN"
done

# window_rps URL [SCRIPT] : requests/s of one 1-second wrk window.
window_rps() {
    local extra=()
    if [[ -n ${2:-} ]]; then extra=(-s "$2"); fi
    wrk -t"$THREADS" -c"$CONNECTIONS" -d1s "${extra[@]}" "$1" | awk '$1 == "Requests/sec:" {print $2}'
}

# paired NAME BASE-URL OTHER-URL [SCRIPT] : PAIRS ratios OTHER/BASE of back-to-back 1-second
# windows, alternating which goes first; sets PAIRED[NAME] to "median (q1–q3)".
declare -A PAIRED
paired() {
    local name=$1 base=$2 other=$3 script=${4:-} i a b ratios=()
    record "$(quote wrk -t"$THREADS" -c"$CONNECTIONS" -d1s "$base") and $(quote wrk -t"$THREADS" -c"$CONNECTIONS" -d1s "$other") back to back, $PAIRS times${script:+ (-s the Lua script)}"
    log "$name: $PAIRS paired 1-second windows"
    for ((i = 0; i < PAIRS; i++)); do
        if ((i % 2 == 0)); then
            a=$(window_rps "$base" "$script")
            b=$(window_rps "$other" "$script")
        else
            b=$(window_rps "$other" "$script")
            a=$(window_rps "$base" "$script")
        fi
        [[ -n $a && -n $b ]] || die "$name: could not read wrk's throughput"
        ratios+=("$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.4f", b / a }')")
    done
    PAIRED[$name]=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ r[NR] = $1 } END {
        m = (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2
        printf "%.3f× (%.3f–%.3f)", m, r[int(NR / 4) + 1], r[int(3 * NR / 4) + 1] }')
}
paired route "$BASE/fn/default/hello/" "$BASE/hello"
paired split "$BASE/fn/default/hello/" "$BASE/fn/default/split@prod/" "$WORK/users.lua"

report() {
    echo "# What the gateway costs a request"
    echo
    machine_section "$(wrk_version)"
    echo "## Results"
    echo
    echo "hello with instance reuse; wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds in turn, best round of each."
    echo
    echo "| way | req/s | vs direct | p50 | p99 | server CPU per request |"
    echo "|---|---|---|---|---|---|"
    local way
    for way in direct route direct-script split jwt; do
        echo "| $way | ${BEST_RPS[$way]} | $(ratio "${BEST_RPS[$way]}" "${BEST_RPS[direct]}") | ${BEST_P50[$way]} | ${BEST_P99[$way]} | ${BEST_CPU[$way]} us |"
    done
    echo
    echo "- target: route >= 0.98x of direct: $(ratio "${BEST_RPS[route]}" "${BEST_RPS[direct]}");"
    echo "  split >= 0.98x of direct with the same wrk script (its Lua costs the shared CPU too): $(ratio "${BEST_RPS[split]}" "${BEST_RPS[direct-script]}")"
    echo
    echo "Paired 1-second windows, $PAIRS per comparison: median ratio (interquartile range)."
    echo
    echo "- route vs direct: ${PAIRED[route]}"
    echo "- split vs direct-script: ${PAIRED[split]}"
    echo "- JWT verification (Ed25519, key inline): $(awk -v a="${BEST_CPU[jwt]}" -v b="${BEST_CPU[direct]}" 'BEGIN { printf "%.1f", a - b }') us of server CPU per request over direct"
    echo
    commands_section
}
report | write_result "$RESULTS"
report
