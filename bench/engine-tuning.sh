#!/usr/bin/env bash
# Measures fresh-instance hello throughput under different [engine] memory-reset settings: the
# measurement behind the defaults in crates/vireo-runtime/src/engine.rs.
# Run `bench/engine-tuning.sh --help` for usage.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-6}
THREADS=1
CONNECTIONS=32
WARMUP=2
RESULTS=bench/results/engine-tuning.md
KEEP='linear_memory_keep_resident_kib = 1024\ntable_keep_resident_kib = 64\nasync_stack_keep_resident_kib = 64'

# name|[engine] body ("\n"-separated); every variant spells out the settings it tests, so the
# comparison does not depend on Vireo's current defaults.
VARIANTS=(
    "no reset tuning (wasmtime's defaults)|pagemap_scan = false\nmemory_init_cow = true\nlinear_memory_keep_resident_kib = 0\ntable_keep_resident_kib = 0\nasync_stack_keep_resident_kib = 0"
    "no copy-on-write|pagemap_scan = false\nmemory_init_cow = false\nlinear_memory_keep_resident_kib = 0\ntable_keep_resident_kib = 0\nasync_stack_keep_resident_kib = 0"
    "keep resident|pagemap_scan = false\nmemory_init_cow = true\n$KEEP"
    "keep resident, no copy-on-write|pagemap_scan = false\nmemory_init_cow = false\n$KEEP"
    "pagemap scan only|pagemap_scan = true\nmemory_init_cow = true\nlinear_memory_keep_resident_kib = 0\ntable_keep_resident_kib = 0\nasync_stack_keep_resident_kib = 0"
    "pagemap scan + keep resident (default)|pagemap_scan = true\nmemory_init_cow = true\n$KEEP"
    "pagemap scan + keep resident, no copy-on-write|pagemap_scan = true\nmemory_init_cow = false\n$KEEP"
    "pagemap scan + keep 4 MiB, batch 32|pagemap_scan = true\nmemory_init_cow = true\nlinear_memory_keep_resident_kib = 4096\ntable_keep_resident_kib = 256\nasync_stack_keep_resident_kib = 256\ndecommit_batch_size = 32"
)

usage() {
    cat <<EOF
Usage: bench/engine-tuning.sh [--help]

Builds Vireo (release) and the hello example, then for each [engine] variant starts
vireo serve with that config on 127.0.0.1, deploys hello (a fresh instance per request) and runs
  wrk -t$THREADS -c$CONNECTIONS -d\${DURATION}s --latency
after a ${WARMUP}s warm-up. Prints a Markdown table, also written with the machine details and
the exact commands to $RESULTS.

Environment:
  DURATION   seconds per variant (default 6)
  VIREO_BIN  a vireo binary to run as it is, e.g. another build to compare
             (default: builds target/release/vireo)
EOF
}

main() {
    accept_options "" "" "$@"
    require_whole DURATION seconds
    init_work vireo-engine-tuning
    ensure_wrk
    ensure_wasip2_target
    build_vireo

    local rows=() variant name body config i=0
    for variant in "${VARIANTS[@]}"; do
        name=${variant%%|*}
        body=${variant#*|}
        i=$((i + 1))
        config=$WORK/engine-$i.toml
        printf '[engine]\n%b\n' "$body" >"$config"
        record "# $name: $(tr '\n' ' ' <"$config")"
        start_vireo "variant-$i" "$WORK/data-$i" --config "$config"
        deploy_hello hello
        check_hello "variant-$i" "http://$SERVER_ADDR/fn/default/hello/"
        run_wrk "variant-$i" "http://$SERVER_ADDR/fn/default/hello/" "$DURATION"
        stop_server
        rows+=("$(printf '| %s | %.0f | %s | %s | %s |' "$name" "$RPS" "$P50" "$P99" "$ERRORS")")
    done

    {
        echo "# Engine memory-reset settings: fresh-instance hello throughput"
        echo
        echo "wrk -t$THREADS -c$CONNECTIONS, ${WARMUP}s warm-up then ${DURATION}s measured, one server at a time on 127.0.0.1."
        echo
        echo "| [engine] variant | req/s | p50 | p99 | errors |"
        echo "|---|---:|---:|---:|---:|"
        printf '%s\n' "${rows[@]}"
        echo
        machine_section
        commands_section
    } | write_result "$RESULTS"
    cat "$RESULTS"
}

main "$@"
