#!/usr/bin/env bash
# What the Python and JavaScript templates answer per second on fresh instances and with
# instance reuse, in one run. Run `bench/templates.sh --help`.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-2}
WARMUP=2
THREADS=2
CONNECTIONS=${CONNECTIONS:-16}
REUSE=${REUSE:-1000}
RESULTS=bench/results/templates.md
PYTHON_TOOLCHAIN=target/templates-python

usage() {
    cat <<EOF
Usage: bench/templates.sh [--help]

Writes the python and js templates with \`vireo new\`, builds each with its vireo.toml's build
command (Python with the toolchain scripts/test.sh installs in $PYTHON_TOOLCHAIN, JavaScript with
tests/js's node_modules), starts vireo serve on 127.0.0.1 and deploys each twice with its
manifest's settings: fresh (instance_reuse 1, an instance per request) and reuse
(instance_reuse $REUSE). Each request runs the whole template: a variable, an environment
variable and a read and a write of the default key-value store. Measures each with
wrk -t$THREADS -c$CONNECTIONS -d\${DURATION}s, ROUNDS times in turn, and reports each one's best
round and reuse's throughput as a ratio of fresh's, and how long each template took from
\`vireo new\` to its first answer. Needs scripts/test.sh's toolchains; installs
wrk, curl and jq (apt-get) when missing.

Options:
  -h, --help        show this help

Environment:
  DURATION          seconds of each measurement (default 10)
  ROUNDS            measurements of each way (default 2)
  CONNECTIONS       wrk connections (default 16)
  REUSE             instance_reuse of the reuse deployments (default 1000)
  VIREO_BIN         a prebuilt vireo binary to measure, with \`vireo new\` (default: build
                    target/release/vireo)
EOF
}

accept_options "" "" "$@"
require_whole DURATION seconds
require_whole ROUNDS rounds
require_whole CONNECTIONS connections
require_whole REUSE requests
init_work vireo-templates
ensure_wrk
ensure_tool curl
ensure_tool jq
if [[ -z $VIREO_PREBUILT ]]; then run cargo build --release -p vireo-cli; fi
[[ -x $PYTHON_TOOLCHAIN/bin/componentize-py ]] ||
    die "componentize-py is not in $PYTHON_TOOLCHAIN: run scripts/test.sh first"
[[ -d tests/js/node_modules/@bytecodealliance/componentize-js ]] ||
    die "componentize-js is not in tests/js/node_modules: run scripts/test.sh first"

# build_template LANGUAGE : writes the template into WORK/LANGUAGE and runs its build command;
# sets COMPONENT and SETTINGS (the manifest's [settings] as JSON).
build_template() {
    local language=$1 project=$WORK/$1
    run "$VIREO_BIN" new "$language" "$language" --dir "$project" >/dev/null
    if [[ $language == js ]]; then ln -s "$ROOT/tests/js/node_modules" "$project/node_modules"; fi
    local manifest
    manifest=$(python3 -c 'import json, sys, tomllib; print(json.dumps(tomllib.load(open(sys.argv[1], "rb"))))' \
        "$project/vireo.toml")
    local command
    command=$(jq -r .build.command <<<"$manifest")
    record "(cd $language && PATH=\$PWD/$PYTHON_TOOLCHAIN/bin:\$PATH sh -c $(quote "$command"))"
    (cd "$project" && PATH=$ROOT/$PYTHON_TOOLCHAIN/bin:$PATH sh -c "$command") >&2 ||
        die "building the $language template failed"
    COMPONENT=$project/$(jq -r .component <<<"$manifest")
    SETTINGS=$(jq -c .settings <<<"$manifest")
}

start_vireo vireo "$WORK/data"
BASE=http://$SERVER_ADDR
# greets WAY : WAY's function must answer its greeting.
greets() {
    record "$(quote curl -fsS "$BASE/fn/default/$1/")  # must answer Hello, world!"
    curl -fsS "$BASE/fn/default/$1/" | grep -q '^Hello, world!$' || die "$1 did not greet"
}

WAYS=()
declare -A SIZE READY
for language in python js; do
    started=$(now_us)
    build_template "$language"
    deploy_component "$language-fresh" "$COMPONENT" "$(jq -c '. + {instance_reuse: 1}' <<<"$SETTINGS")"
    greets "$language-fresh"
    # From `vireo new` to the first answer, with the toolchain installed and its caches warm.
    READY[$language]=$(seconds_since "$started")
    SIZE[$language]=$(stat -c %s "$COMPONENT")
    deploy_component "$language-reuse" "$COMPONENT" "$(jq -c --argjson n "$REUSE" '. + {instance_reuse: $n}' <<<"$SETTINGS")"
    greets "$language-reuse"
    WAYS+=("$language-fresh" "$language-reuse")
done

for ((round = 1; round <= ROUNDS; round++)); do
    log "round $round of $ROUNDS"
    for way in "${WAYS[@]}"; do
        measure_best "$way" "$BASE/fn/default/$way/"
    done
done
# Whether the server fell back to fresh instances for a reuse deployment (componentize-js).
FALLBACKS=$(admin_curl -fsS "$BASE/v1/namespaces/default/functions/js-reuse" | jq -c '.reuse_fallback_versions')

report() {
    echo "# The Python and JavaScript templates: fresh instances against instance reuse"
    echo
    machine_section "$(wrk_version)" "components: python ${SIZE[python]} bytes, js ${SIZE[js]} bytes"
    echo "## Results"
    echo
    echo "Each template as \`vireo new\` writes it (variable, environment, a key-value read and write per request); wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds in turn, best round of each."
    echo
    echo "| way | req/s | p50 | p99 | server CPU per request |"
    echo "|---|---|---|---|---|"
    local way
    for way in "${WAYS[@]}"; do
        echo "| $way | ${BEST_RPS[$way]} | ${BEST_P50[$way]} | ${BEST_P99[$way]} | ${BEST_CPU[$way]} us |"
    done
    echo
    echo "- python: reuse $(ratio "${BEST_RPS[python-reuse]}" "${BEST_RPS[python-fresh]}") of fresh"
    echo "- js: reuse $(ratio "${BEST_RPS[js-reuse]}" "${BEST_RPS[js-fresh]}") of fresh; versions of js-reuse that fell back to fresh instances: $FALLBACKS"
    echo "- from \`vireo new\` to the first answer (build, deploy, first request): python ${READY[python]} s, js ${READY[js]} s"
    echo
    commands_section
}
report | write_result "$RESULTS"
report
